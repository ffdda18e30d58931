// Augmentation on cached uint8 images: shapes, ranges, reproducibility, and batch mixing.
#include "core/data/augment.h"

#include <QtTest>

using namespace vitlab;

namespace {

/// A side x side image whose left half is `left` and right half `right` (every channel).
std::vector<std::uint8_t> halves(std::int64_t side, std::int64_t channels, std::uint8_t left, std::uint8_t right)
{
    std::vector<std::uint8_t> image(static_cast<std::size_t>(side * side * channels));
    for (std::int64_t y = 0; y < side; ++y)
        for (std::int64_t x = 0; x < side; ++x)
            for (std::int64_t c = 0; c < channels; ++c)
                image[static_cast<std::size_t>((y * side + x) * channels + c)] = x < side / 2 ? left : right;
    return image;
}

} // namespace

class TestAugment : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void trainingViewHasTheShapeAndRange_data()
    {
        QTest::addColumn<int>("channels");
        QTest::addColumn<int>("randAugmentOps");
        QTest::newRow("rgb") << 3 << 0;
        QTest::newRow("grey") << 1 << 0;
        QTest::newRow("rgb randaugment") << 3 << 3;
        QTest::newRow("grey randaugment") << 1 << 3;
    }
    void trainingViewHasTheShapeAndRange()
    {
        QFETCH(int, channels);
        QFETCH(int, randAugmentOps);
        const auto image = halves(40, channels, 10, 240);
        AugmentOptions options;
        options.outputSize = 32;
        options.randAugmentOps = randAugmentOps;
        options.mean = {0.5, 0.4, 0.3};
        options.std = {0.25, 0.25, 0.25};
        for (std::size_t sample = 0; sample < 300; ++sample) {
            auto generator = sampleGenerator(1, 0, sample);
            const auto view = augmentForTraining(image.data(), 40, channels, options, generator);
            QCOMPARE(view.sizes(), (c10::IntArrayRef{channels, 32, 32}));
            QVERIFY(view.min().item<double>() >= (0.0 - 0.5) / 0.25 - 1e-5);
            QVERIFY(view.max().item<double>() <= (1.0 - 0.3) / 0.25 + 1e-5);
        }
    }

    void sameSampleSameView()
    {
        const auto image = halves(48, 3, 0, 255);
        AugmentOptions options;
        options.outputSize = 24;
        options.randAugmentOps = 2;
        auto first = sampleGenerator(7, 3, 11);
        auto again = sampleGenerator(7, 3, 11);
        auto other = sampleGenerator(7, 4, 11);
        const auto a = augmentForTraining(image.data(), 48, 3, options, first);
        QVERIFY(torch::equal(a, augmentForTraining(image.data(), 48, 3, options, again)));
        QVERIFY(!torch::equal(a, augmentForTraining(image.data(), 48, 3, options, other)));
    }

    void fullCropIsTheImageOrItsMirror()
    {
        const auto image = halves(16, 1, 0, 255);
        AugmentOptions options;
        options.outputSize = 16;
        options.scaleMin = options.scaleMax = 1.0;
        options.ratioMin = options.ratioMax = 1.0;
        options.mean = {0.0, 0.0, 0.0};
        options.std = {1.0, 1.0, 1.0};
        int flipped = 0;
        for (std::size_t sample = 0; sample < 64; ++sample) {
            auto generator = sampleGenerator(0, 0, sample);
            const auto view = augmentForTraining(image.data(), 16, 1, options, generator);
            const double left = view[0][8][0].item<double>();
            const double right = view[0][8][15].item<double>();
            QVERIFY((left == 0.0 && right == 1.0) || (left == 1.0 && right == 0.0));
            flipped += left == 1.0;
        }
        QVERIFY(flipped > 10 && flipped < 54); // about half
    }

    void evaluationCropsTheCentre()
    {
        // Three bands of 20 px; resized to 30 / cropPct = 60, the centre 30 px hold only the middle band.
        std::vector<std::uint8_t> image(60 * 60);
        for (int y = 0; y < 60; ++y)
            for (int x = 0; x < 60; ++x)
                image[static_cast<std::size_t>(y * 60 + x)] = x < 20 ? 0 : (x < 40 ? 100 : 255);
        AugmentOptions options;
        options.outputSize = 18;
        options.cropPct = 0.3;
        options.mean = {0.0, 0.0, 0.0};
        options.std = {1.0, 1.0, 1.0};
        const auto view = prepareForEvaluation(image.data(), 60, 1, options);
        QCOMPARE(view.sizes(), (c10::IntArrayRef{1, 18, 18}));
        QVERIFY((view - 100.0 / 255.0).abs().max().item<double>() < 1e-6);
    }

    void labelSmoothingAlone()
    {
        auto images = torch::zeros({2, 1, 4, 4});
        std::mt19937_64 generator(1);
        const auto targets = mixBatch(images, torch::tensor({0, 2}), 4, 0.0, 0.0, 0.0, 0.1, generator);
        QVERIFY(torch::equal(images, torch::zeros({2, 1, 4, 4})));
        QVERIFY(torch::allclose(targets[0], torch::tensor({0.925f, 0.025f, 0.025f, 0.025f})));
        QVERIFY(torch::allclose(targets.sum(1), torch::ones({2})));
    }

    void mixupBlendsImagesAndTargetsAlike()
    {
        auto images = torch::stack({torch::zeros({1, 4, 4}), torch::ones({1, 4, 4})});
        std::mt19937_64 generator(3);
        const auto targets = mixBatch(images, torch::tensor({0, 1}), 2, 0.8, 0.0, 0.0, 0.0, generator);
        const double lambda = targets[0][0].item<double>();
        QVERIFY(lambda > 0.0 && lambda < 1.0);
        // Sample 0 became lambda * zeros + (1 - lambda) * ones.
        QVERIFY(std::abs(images[0].mean().item<double>() - (1.0 - lambda)) < 1e-6);
        QVERIFY(torch::allclose(targets.sum(1), torch::ones({2})));
    }

    void cutmixTargetsFollowThePastedArea()
    {
        for (std::uint64_t seed = 0; seed < 20; ++seed) {
            auto images = torch::stack({torch::zeros({1, 16, 16}), torch::ones({1, 16, 16})});
            std::mt19937_64 generator(seed);
            const auto targets = mixBatch(images, torch::tensor({0, 1}), 2, 0.0, 1.0, 1.0, 0.0, generator);
            const double pastedShare = images[0].mean().item<double>();
            QVERIFY(std::abs(targets[0][1].item<double>() - pastedShare) < 1e-6);
        }
    }
};

QTEST_GUILESS_MAIN(TestAugment)
#include "tst_augment.moc"
