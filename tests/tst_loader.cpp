// The batch loader: every sample once per epoch, seeded shuffling, drop-last, prompt stop.
#include "core/data/loader.h"
#include "core/errors.h"

#include <QtTest>

#include <set>

using namespace vitlab;

namespace {

/// `count` grey 8x8 images whose pixels all equal their index (mod 256).
ImageCache numberedCache(std::int64_t count, std::int64_t side = 8)
{
    IdxImages images;
    images.count = count;
    images.rows = images.cols = side;
    for (std::int64_t i = 0; i < count; ++i)
        images.pixels.insert(images.pixels.end(), static_cast<std::size_t>(side * side), static_cast<std::uint8_t>(i % 256));
    ImageCacheOptions options;
    options.side = side;
    options.channels = 1;
    return ImageCache::fromIdx(images, options);
}

std::vector<std::size_t> range(std::size_t count)
{
    std::vector<std::size_t> values(count);
    std::iota(values.begin(), values.end(), 0);
    return values;
}

LoaderOptions evaluationOptions(std::int64_t batchSize)
{
    LoaderOptions options;
    options.batchSize = batchSize;
    options.training = false;
    options.augment.outputSize = 8;
    options.augment.mean = {0.0, 0.0, 0.0};
    options.augment.std = {1.0, 1.0, 1.0};
    return options;
}

std::vector<std::size_t> epochOrder(BatchLoader& loader, std::int64_t epoch)
{
    std::vector<std::size_t> order;
    loader.startEpoch(epoch);
    while (auto batch = loader.next())
        order.insert(order.end(), batch->samples.begin(), batch->samples.end());
    return order;
}

} // namespace

class TestLoader : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void everySampleOncePerEpochWithItsLabelAndPixels()
    {
        const auto cache = numberedCache(50);
        std::vector<std::int64_t> labels(50);
        for (std::size_t i = 0; i < 50; ++i)
            labels[i] = static_cast<std::int64_t>(i % 7);
        auto options = evaluationOptions(8);
        BatchLoader loader(cache, labels, range(50), options);
        QCOMPARE(loader.batchesPerEpoch(), std::size_t{7});
        loader.startEpoch(0);
        std::set<std::size_t> seen;
        std::size_t batches = 0;
        while (auto batch = loader.next()) {
            ++batches;
            QCOMPARE(batch->images.size(0), static_cast<std::int64_t>(batch->samples.size()));
            for (std::size_t i = 0; i < batch->samples.size(); ++i) {
                const auto sample = batch->samples[i];
                QVERIFY(seen.insert(sample).second);
                QCOMPARE(batch->labels[static_cast<std::int64_t>(i)].item<std::int64_t>(), labels[sample]);
                const double expected = static_cast<double>(sample) / 255.0;
                QVERIFY(std::abs(batch->images[static_cast<std::int64_t>(i)].mean().item<double>() - expected) < 1e-6);
            }
        }
        QCOMPARE(batches, std::size_t{7});
        QCOMPARE(seen.size(), std::size_t{50});
    }

    void shufflingIsSeededPerEpoch()
    {
        const auto cache = numberedCache(40);
        auto options = evaluationOptions(6);
        options.shuffle = true;
        options.seed = 5;
        BatchLoader first(cache, std::vector<std::int64_t>(40, 0), range(40), options);
        BatchLoader second(cache, std::vector<std::int64_t>(40, 0), range(40), options);
        const auto epoch0 = epochOrder(first, 0);
        QCOMPARE(epoch0, epochOrder(second, 0));
        QVERIFY(epoch0 != epochOrder(first, 1));
        QVERIFY(epoch0 != range(40));
        auto sorted = epoch0;
        std::sort(sorted.begin(), sorted.end());
        QCOMPARE(sorted, range(40));
    }

    void dropLastAndSubsets()
    {
        const auto cache = numberedCache(30);
        auto options = evaluationOptions(4);
        options.dropLast = true;
        std::vector<std::size_t> subset{1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21};
        BatchLoader loader(cache, std::vector<std::int64_t>(30, 1), subset, options);
        QCOMPARE(loader.batchesPerEpoch(), std::size_t{2});
        const auto order = epochOrder(loader, 0);
        QCOMPARE(order.size(), std::size_t{8});
        for (const auto sample : order)
            QVERIFY(sample % 2 == 1);
    }

    void trainingViewsAreTheSameForTheSameSeed()
    {
        const auto cache = numberedCache(12, 16);
        LoaderOptions options;
        options.batchSize = 4;
        options.augment.outputSize = 12;
        options.workers = 2;
        BatchLoader a(cache, std::vector<std::int64_t>(12, 0), range(12), options);
        options.workers = 1;
        BatchLoader b(cache, std::vector<std::int64_t>(12, 0), range(12), options);
        a.startEpoch(3);
        b.startEpoch(3);
        while (auto batchA = a.next()) {
            auto batchB = b.next();
            QVERIFY(batchB.has_value());
            QVERIFY(torch::equal(batchA->images, batchB->images));
        }
    }

    void pinnedMemoryWhereCudaIsAndPlainElsewhere()
    {
        const auto cache = numberedCache(10);
        auto options = evaluationOptions(4);
        options.pinMemory = true;
        BatchLoader loader(cache, std::vector<std::int64_t>(10, 0), range(10), options);
        loader.startEpoch(0);
        const auto batch = loader.next();
        QVERIFY(batch.has_value());
        QCOMPARE(batch->images.is_pinned(), torch::cuda::is_available());
        QCOMPARE(batch->images[3].mean().item<float>(), batch->images[3][0][0][0].item<float>());
    }

    void resumesInTheMiddleOfAnEpoch()
    {
        const auto cache = numberedCache(20);
        auto options = evaluationOptions(4);
        options.shuffle = true;
        options.seed = 5;
        BatchLoader whole(cache, std::vector<std::int64_t>(20, 0), range(20), options);
        BatchLoader rest(cache, std::vector<std::int64_t>(20, 0), range(20), options);
        whole.startEpoch(3);
        rest.startEpoch(3, 2);
        std::vector<std::vector<std::size_t>> all, tail;
        while (auto batch = whole.next())
            all.push_back(batch->samples);
        while (auto batch = rest.next())
            tail.push_back(batch->samples);
        QCOMPARE(all.size(), std::size_t(5));
        QCOMPARE(tail, std::vector<std::vector<std::size_t>>(all.begin() + 2, all.end()));
    }

    void stopEndsTheEpochMidway()
    {
        const auto cache = numberedCache(4000, 64);
        LoaderOptions options;
        options.batchSize = 256;
        options.augment.outputSize = 224;
        options.augment.randAugmentOps = 2;
        BatchLoader loader(cache, std::vector<std::int64_t>(4000, 0), range(4000), options);
        loader.startEpoch(0);
        QVERIFY(loader.next().has_value());
        // Stopping mid-epoch returns (the workers finish only the image in hand) and ends the
        // epoch; how fast is a benchmark's question, not a test's.
        loader.stop();
        QVERIFY(!loader.next().has_value());
    }

    void refusesInconsistentInput()
    {
        const auto cache = numberedCache(5);
        const auto make = [&](std::size_t labels, std::vector<std::size_t> samples, std::int64_t batchSize) {
            BatchLoader loader(cache, std::vector<std::int64_t>(labels, 0), std::move(samples), evaluationOptions(batchSize));
        };
        QVERIFY_THROWS_EXCEPTION(ShapeError, make(4, range(5), 2));
        QVERIFY_THROWS_EXCEPTION(ShapeError, make(5, {7}, 2));
        QVERIFY_THROWS_EXCEPTION(ConfigError, make(5, range(5), 0));
    }
};

QTEST_GUILESS_MAIN(TestLoader)
#include "tst_loader.moc"
