// Decode once: images land in the uint8 store at the right size, in RGB order, centre-cropped,
// in memory or spilled to a file; failures are listed, not fatal.
#include "core/data/image_cache.h"

#include <QTemporaryDir>
#include <QtTest>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>

using namespace vitlab;
namespace fs = std::filesystem;

namespace {

/// An image of three vertical bands, given in RGB.
cv::Mat threeBands(int width, int height, cv::Vec3b left, cv::Vec3b middle, cv::Vec3b right)
{
    cv::Mat bgr(height, width, CV_8UC3);
    for (int x = 0; x < width; ++x) {
        const cv::Vec3b rgb = x < width / 3 ? left : (x < 2 * width / 3 ? middle : right);
        bgr.col(x).setTo(cv::Scalar(rgb[2], rgb[1], rgb[0]));
    }
    return bgr;
}

ImageFile fileAt(const fs::path& path, const cv::Mat& image)
{
    fs::create_directories(path.parent_path());
    cv::imwrite(path.string(), image);
    ImageFile file;
    file.path = path;
    file.width = image.cols;
    file.height = image.rows;
    return file;
}

int maxDeviation(const std::uint8_t* pixels, std::size_t count, std::int64_t channels, cv::Vec3b rgb)
{
    int worst = 0;
    for (std::size_t i = 0; i < count; ++i)
        for (std::int64_t c = 0; c < channels; ++c)
            worst = std::max(worst, std::abs(int(pixels[i * channels + c]) - int(rgb[c])));
    return worst;
}

} // namespace

class TestImageCache : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void storesTheCentreSquareInRgbOrder()
    {
        QTemporaryDir dir;
        const cv::Vec3b red{220, 20, 10}, green{10, 200, 30}, blue{5, 40, 210};
        // 90 x 30: the shorter side is already 30, so the centre square is exactly the green band.
        const auto file = fileAt(fs::path(dir.path().toStdString()) / "bands.png", threeBands(90, 30, red, green, blue));
        ImageCacheOptions options;
        options.side = 30;
        const auto cache = ImageCache::fromFiles({file}, options);
        QCOMPARE(cache.size(), std::size_t{1});
        QVERIFY(cache.failures().empty());
        QVERIFY(!cache.spilled());
        QCOMPARE(maxDeviation(cache.image(0), 30 * 30, 3, green), 0);
    }

    void exifOrientationIsApplied()
    {
        // 40 x 20, red left half and blue right half, tagged "rotate 90 degrees clockwise"
        // (EXIF orientation 6): upright it is 20 x 40 with red on top.
        cv::Mat bgr(20, 40, CV_8UC3, cv::Scalar(255, 0, 0));
        bgr(cv::Rect(0, 0, 20, 20)).setTo(cv::Scalar(0, 0, 255));
        std::vector<std::uint8_t> jpeg;
        QVERIFY(cv::imencode(".jpg", bgr, jpeg, {cv::IMWRITE_JPEG_QUALITY, 95}));
        const std::vector<std::uint8_t> app1{
            0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0,          // APP1, 34 bytes, "Exif"
            'I', 'I', 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00,             // little-endian TIFF, IFD at 8
            0x01, 0x00,                                               // one entry
            0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, // Orientation = 6
            0x00, 0x00, 0x00, 0x00};                                  // no next IFD
        jpeg.insert(jpeg.begin() + 2, app1.begin(), app1.end());
        QTemporaryDir dir;
        ImageFile file;
        file.path = fs::path(dir.path().toStdString()) / "rotated.jpg";
        std::ofstream(file.path, std::ios::binary).write(reinterpret_cast<const char*>(jpeg.data()), jpeg.size());
        ImageCacheOptions options;
        options.side = 20; // the upright image's shorter side: its centre square holds both colours
        const auto cache = ImageCache::fromFiles({file}, options);
        QVERIFY(cache.failures().empty());
        const std::uint8_t* pixels = cache.image(0);
        const auto at = [&](int x, int y) { return cv::Vec3b(pixels[(y * 20 + x) * 3], pixels[(y * 20 + x) * 3 + 1], pixels[(y * 20 + x) * 3 + 2]); };
        QVERIFY2(at(10, 1)[0] > 200 && at(10, 1)[2] < 60, "the top must be red");
        QVERIFY2(at(10, 18)[2] > 200 && at(10, 18)[0] < 60, "the bottom must be blue");
    }

    void resizesAndConvertsToGrey()
    {
        QTemporaryDir dir;
        const cv::Vec3b grey{128, 128, 128};
        const auto file = fileAt(fs::path(dir.path().toStdString()) / "g.png", threeBands(40, 60, grey, grey, grey));
        ImageCacheOptions options;
        options.side = 16;
        options.channels = 1;
        const auto cache = ImageCache::fromFiles({file}, options);
        QCOMPARE(cache.bytesPerImage(), std::size_t{16 * 16});
        QCOMPARE(maxDeviation(cache.image(0), 16 * 16, 1, grey), 0);
    }

    void largeJpegsDecodeAtReducedSize()
    {
        QTemporaryDir dir;
        const cv::Vec3b orange{240, 140, 20};
        const auto file = fileAt(fs::path(dir.path().toStdString()) / "big.jpg", threeBands(1200, 900, orange, orange, orange));
        ImageCacheOptions options;
        options.side = 64;
        const auto cache = ImageCache::fromFiles({file}, options);
        QVERIFY(cache.failures().empty());
        QVERIFY(maxDeviation(cache.image(0), 64 * 64, 3, orange) <= 6); // JPEG is lossy
    }

    void failuresAreListedAndLeaveBlackSlots()
    {
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        const cv::Vec3b white{255, 255, 255};
        const auto good = fileAt(root / "good.png", threeBands(8, 8, white, white, white));
        ImageFile broken;
        broken.path = root / "broken.jpg";
        std::ofstream(broken.path) << "definitely not a jpeg";
        ImageFile missing;
        missing.path = root / "missing.png";
        ImageCacheOptions options;
        options.side = 8;
        const auto cache = ImageCache::fromFiles({broken, good, missing}, options);
        QCOMPARE(cache.size(), std::size_t{3});
        QCOMPARE(cache.failures().size(), std::size_t{2});
        QCOMPARE(maxDeviation(cache.image(0), 64, 3, {0, 0, 0}), 0);
        QCOMPARE(maxDeviation(cache.image(1), 64, 3, white), 0);
    }

    void spillsToAnUnlinkedFileAboveTheCap()
    {
        QTemporaryDir dir;
        QTemporaryDir spill;
        const cv::Vec3b teal{0, 128, 128};
        std::vector<ImageFile> files;
        for (int i = 0; i < 5; ++i)
            files.push_back(fileAt(fs::path(dir.path().toStdString()) / (std::to_string(i) + ".png"),
                                   threeBands(20, 20, teal, teal, teal)));
        ImageCacheOptions options;
        options.side = 20;
        options.memoryCapBytes = 100;
        options.spillDirectory = spill.path().toStdString();
        auto cache = ImageCache::fromFiles(files, options);
        QVERIFY(cache.spilled());
        QCOMPARE(maxDeviation(cache.image(4), 400, 3, teal), 0);
        QVERIFY(fs::is_empty(spill.path().toStdString())); // unlinked at once: nothing left behind
        ImageCache moved = std::move(cache);
        QCOMPARE(maxDeviation(moved.image(2), 400, 3, teal), 0);
    }

    void idxImagesFillTheStore()
    {
        IdxImages images;
        images.count = 2;
        images.rows = 2;
        images.cols = 2;
        images.pixels = {10, 10, 10, 10, 200, 200, 200, 200};
        ImageCacheOptions options;
        options.side = 4;
        const auto rgb = ImageCache::fromIdx(images, options);
        QCOMPARE(maxDeviation(rgb.image(0), 16, 3, {10, 10, 10}), 0);
        QCOMPARE(maxDeviation(rgb.image(1), 16, 3, {200, 200, 200}), 0);
        options.channels = 1;
        QCOMPARE(maxDeviation(ImageCache::fromIdx(images, options).image(1), 16, 1, {200, 0, 0}), 0);
    }

    void progressCancels()
    {
        IdxImages images;
        images.count = 500;
        images.rows = images.cols = 28;
        images.pixels.assign(500 * 28 * 28, 7);
        ImageCacheOptions options;
        options.side = 32;
        std::size_t calls = 0;
        options.progress = [&](std::size_t, std::size_t) { return ++calls < 1; };
        const auto cache = ImageCache::fromIdx(images, options);
        QVERIFY(cache.cancelled());
        QCOMPARE(calls, std::size_t{1});
    }

    void progressIsReportedSparingly()
    {
        // One report per image cost the app's UI thread more than the decoding (70 000 events for
        // Fashion-MNIST): reports come every 50 ms, and always at the end.
        IdxImages images;
        images.count = 20000;
        images.rows = images.cols = 28;
        images.pixels.assign(static_cast<std::size_t>(images.count) * 28 * 28, 7);
        ImageCacheOptions options;
        options.side = 32;
        std::size_t calls = 0, lastDone = 0;
        options.progress = [&](std::size_t done, std::size_t total) {
            ++calls;
            lastDone = done;
            return total == 20000;
        };
        QElapsedTimer timer;
        timer.start();
        const auto cache = ImageCache::fromIdx(images, options);
        QVERIFY(!cache.cancelled());
        QCOMPARE(lastDone, std::size_t{20000});
        QVERIFY2(calls <= 2 + static_cast<std::size_t>(timer.elapsed() / 50), qPrintable(QString::number(calls)));
    }
};

QTEST_GUILESS_MAIN(TestImageCache)
#include "tst_image_cache.moc"
