// Scanning messy image folders: every good image found, every bad file reported with its reason.
#include "core/data/image_cache.h"
#include "core/data/image_decode.h"
#include "core/data/image_folder.h"
#include "core/errors.h"

#include <QTemporaryDir>
#include <QtTest>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <zlib.h>

#include <fstream>
#include <map>
#include <set>

using namespace vitlab;
namespace fs = std::filesystem;

namespace {

cv::Mat pattern(int width, int height, int channels, int seed)
{
    cv::Mat image(height, width, CV_8UC(channels));
    cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
    cv::circle(image, {width / 2, height / 2}, std::min(width, height) / 3, cv::Scalar::all(seed * 40 % 255), -1);
    return image;
}

void write(const fs::path& path, const cv::Mat& image)
{
    fs::create_directories(path.parent_path());
    QVERIFY2(cv::imwrite(path.string(), image), path.c_str());
}

void writeBytes(const fs::path& path, const std::string& bytes)
{
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
}

std::string readBytes(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string bigEndian(std::uint32_t v)
{
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
}

/// A PNG built chunk by chunk: `header` is IHDR's 13 bytes, `palette` a PLTE chunk's data (or
/// empty), `scanlines` the filtered rows before compression.
std::string pngBytes(const std::string& header, const std::string& palette, const std::string& scanlines)
{
    auto chunk = [](const std::string& type, const std::string& data) {
        const std::string body = type + data;
        const auto crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
        return bigEndian(static_cast<std::uint32_t>(data.size())) + body + bigEndian(static_cast<std::uint32_t>(crc));
    };
    uLongf packedSize = compressBound(static_cast<uLong>(scanlines.size()));
    std::string packed(packedSize, '\0');
    compress(reinterpret_cast<Bytef*>(packed.data()), &packedSize, reinterpret_cast<const Bytef*>(scanlines.data()),
             static_cast<uLong>(scanlines.size()));
    packed.resize(packedSize);
    return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", header) + (palette.empty() ? "" : chunk("PLTE", palette))
        + chunk("IDAT", packed) + chunk("IEND", "");
}

/// A PNG whose header claims 50000 x 50000 pixels: a decompression bomb's calling card.
std::string bombPng()
{
    return pngBytes(bigEndian(50000) + bigEndian(50000) + std::string{8, 0, 0, 0, 0}, {}, std::string(256, '\0'));
}

/// An 8 x 8 palette (colour type 3) PNG: the left half palette entry 0 (pure red), the right
/// half entry 1 (pure blue). OpenCV cannot write these; users' folders have them.
std::string palettePng()
{
    std::string rows;
    for (int y = 0; y < 8; ++y)
        rows += std::string(1, '\0') + std::string(4, '\0') + std::string(4, '\1');
    return pngBytes(bigEndian(8) + bigEndian(8) + std::string{8, 3, 0, 0, 0}, std::string("\xff\0\0\0\0\xff", 6), rows);
}

QString reasonFor(const ScanReport& report, const std::string& fileName)
{
    for (const auto& skipped : report.skipped) {
        if (fs::path(skipped.path).filename() == fileName)
            return QString::fromStdString(skipped.reason);
    }
    return {};
}

bool found(const ScanReport& report, const std::string& fileName)
{
    return std::any_of(report.files.begin(), report.files.end(),
                       [&](const ImageFile& file) { return file.path.filename() == fileName; });
}

const SkippedFile* skippedEntry(const ScanReport& report, const fs::path& path)
{
    for (const auto& skipped : report.skipped) {
        if (skipped.path == path.string())
            return &skipped;
    }
    return nullptr;
}

/// Every image counted per class name, and whether a real file was counted twice.
std::map<std::string, std::vector<std::string>> countedByClass(const ScanReport& report, bool& someFileTwice)
{
    std::map<std::string, std::vector<std::string>> byClass;
    std::set<fs::path> real;
    someFileTwice = false;
    for (const auto& file : report.files) {
        byClass[report.classes[static_cast<std::size_t>(file.label)].name].push_back(file.path.filename().string());
        someFileTwice |= !real.insert(fs::canonical(file.path)).second;
    }
    for (auto& [name, files] : byClass)
        std::sort(files.begin(), files.end());
    return byClass;
}

} // namespace

class TestImageFolder : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void reportsEveryBadFileAndLoadsEveryGoodOne()
    {
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        // Good images of every kind, at any depth, with odd names.
        write(root / "cats" / "plain.jpg", pattern(64, 48, 3, 1));
        write(root / "cats" / "UPPER.JPEG", pattern(40, 40, 3, 2));
        write(root / "cats" / "deep" / "er" / "grey.png", pattern(30, 20, 1, 3));
        write(root / "cats" / "with alpha.png", pattern(32, 32, 4, 4));
        cv::Mat sixteen(24, 24, CV_16UC3);
        cv::randu(sixteen, cv::Scalar::all(0), cv::Scalar::all(65535));
        write(root / "cats" / "sixteen bit.png", sixteen);
        writeBytes(root / "cats" / "palette.png", palettePng());
        write(root / "dogs" / "chien été.bmp", pattern(50, 50, 3, 5));
        write(root / "dogs" / "photo.webp", pattern(33, 31, 3, 6));
        write(root / "dogs" / "scan.tiff", pattern(20, 28, 3, 7));
        write(root / "dogs" / "scan2.TIF", pattern(21, 22, 1, 8));
        // Bad files.
        const auto goodJpeg = readBytes(root / "cats" / "plain.jpg");
        writeBytes(root / "dogs" / "truncated.jpg", goodJpeg.substr(0, goodJpeg.size() / 2));
        const auto goodPng = readBytes(root / "cats" / "with alpha.png");
        writeBytes(root / "dogs" / "truncated.png", goodPng.substr(0, goodPng.size() - 20));
        writeBytes(root / "dogs" / "corrupt.png", "\x89PNG\r\n\x1a\n this is not really a png IEND");
        writeBytes(root / "dogs" / "text.jpg", std::string(300, 'x') + "\xFF\xD9");
        writeBytes(root / "dogs" / "empty.png", "");
        writeBytes(root / "dogs" / "notes.txt", "a note");
        writeBytes(root / "dogs" / "bomb.png", bombPng());
        // 134 bytes with DICOM's magic at offset 128 (found by fuzz_image): OpenCV would hand them
        // to Debian's DICOM reader, which aborts the whole process on them.
        writeBytes(root / "dogs" / "dicom in disguise.png",
                   std::string("\x89PN\xF0", 4) + std::string(124, '\xFF') + "DICM`\x82");
        writeBytes(root / "loose.jpg", goodJpeg);
        fs::create_symlink(root / "dogs" / "missing.jpg", root / "dogs" / "dangling.jpg");
        // Harmless: hidden and system files, a link loop, an empty class.
        writeBytes(root / "cats" / ".DS_Store", "junk");
        writeBytes(root / "cats" / "Thumbs.db", "junk");
        fs::create_directory_symlink(root / "cats", root / "cats" / "deep" / "loop");
        fs::create_directories(root / "empty class");

        const auto report = scanImageFolder(root);
        QCOMPARE(report.classNames(), (std::vector<std::string>{"cats", "dogs", "empty class"}));
        for (const char* name : {"plain.jpg", "UPPER.JPEG", "grey.png", "with alpha.png", "sixteen bit.png",
                                 "palette.png", "chien été.bmp", "photo.webp", "scan.tiff", "scan2.TIF"})
            QVERIFY2(found(report, name), name);
        QCOMPARE(report.files.size(), std::size_t{10});
        QCOMPARE(report.classes[0].train + report.classes[0].validation, std::int64_t{6});
        QVERIFY(reasonFor(report, "truncated.jpg").contains(QStringLiteral("truncated")));
        QVERIFY(reasonFor(report, "truncated.png").contains(QStringLiteral("truncated")));
        QVERIFY(reasonFor(report, "corrupt.png").contains(QStringLiteral("corrupt")));
        QVERIFY(reasonFor(report, "text.jpg").contains(QStringLiteral("not an image")));
        QCOMPARE(reasonFor(report, "empty.png"), QStringLiteral("zero bytes"));
        QVERIFY(reasonFor(report, "notes.txt").contains(QStringLiteral("not an image")));
        QVERIFY2(reasonFor(report, "bomb.png").contains(QStringLiteral("too many pixels")),
                 qPrintable(reasonFor(report, "bomb.png")));
        QCOMPARE(reasonFor(report, "loose.jpg"), QStringLiteral("not inside a class folder"));
        QVERIFY(reasonFor(report, "dicom in disguise.png").contains(QStringLiteral("not an image of a supported kind")));
        QVERIFY(reasonFor(report, "dangling.jpg").contains(QStringLiteral("link")));
        QVERIFY(reasonFor(report, ".DS_Store").isEmpty() && reasonFor(report, "Thumbs.db").isEmpty());
        QCOMPARE(report.emptyClasses, (std::vector<std::string>{"empty class"}));
        QCOMPARE(report.maxWidth, std::int64_t{64});
        QCOMPARE(report.minHeight, std::int64_t{8}); // the palette PNG
        QCOMPARE(report.imbalanceRatio, 6.0 / 4.0);
    }

    void headersGiveTheDecodedSizeAndGuardBeforeDecoding()
    {
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        // Every kind we read, as OpenCV writes it, at a size that tells width from height.
        std::vector<fs::path> files;
        for (const char* name : {"a.jpg", "a.png", "a.bmp", "a.webp", "a.tiff", "grey.png", "grey.jpg", "grey.tif"}) {
            const bool grey = std::string(name).rfind("grey", 0) == 0;
            files.push_back(root / name);
            write(files.back(), pattern(37, 23, grey ? 1 : 3, 3));
        }
        files.push_back(root / "palette.png");
        writeBytes(files.back(), palettePng());
        for (const auto& file : files) {
            std::string problem;
            auto bytes = readFileBytes(file, problem);
            const auto header = readImageHeader(bytes);
            QVERIFY2(header, file.c_str());
            const auto image = decodeImageBytes(bytes, cv::IMREAD_UNCHANGED, 1000000, problem);
            QVERIFY2(!image.empty(), problem.c_str());
            QCOMPARE(header->width, std::int64_t{image.cols});
            QCOMPARE(header->height, std::int64_t{image.rows});
            // The guard follows the caller's limit, and refuses from the header.
            QVERIFY(decodeImageBytes(bytes, cv::IMREAD_UNCHANGED, image.cols * image.rows - 1, problem).empty());
            QVERIFY2(QString::fromStdString(problem).startsWith(QStringLiteral("too many pixels")), problem.c_str());
        }
        // 50 bytes of BMP that declare 65543 x 12800 pixels (found by fuzz_image): OpenCV's own
        // limit (2^30, fixed when it loads) would let it allocate 2.5 GB first.
        std::vector<char> bomb{'B', 'M', '\xC6', 0, 0, 0, 0, 0, 0, 0, '8', 0, 0, 0, '(', 0, 0, 0, 7, 0, 1, 0, 0, '2', 0, 0,
                               6, 0, 24, 0, 0, 0, 0, 0, 0, 0, '\xAD', 0, 0, 0, '\xD2', '\x8B', '\xC6', '\xCF', '\xD3', '\xB5',
                               ',', '\xA2', '\xC5', '\xC4'};
        const auto header = readImageHeader(bomb);
        QVERIFY(header);
        QCOMPARE(header->width * header->height, std::int64_t{65543} * 12800);
        std::string problem;
        QVERIFY(decodeImageBytes(bomb, cv::IMREAD_COLOR, std::int64_t{100} * 1000 * 1000, problem).empty());
        QVERIFY2(QString::fromStdString(problem).startsWith(QStringLiteral("too many pixels")), problem.c_str());
        // Other kinds OpenCV knows are not ours to decode.
        std::vector<char> gif{'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0};
        QVERIFY(!readImageHeader(gif));
    }

    void paletteImagesAreConvertedToRgb()
    {
        QTemporaryDir dir;
        const fs::path file = fs::path(dir.path().toStdString()) / "palette.png";
        writeBytes(file, palettePng());
        std::vector<std::uint8_t> square(8 * 8 * 3);
        std::string problem;
        QVERIFY2(decodeFileToSquare(file, 8, 3, 1000, square.data(), problem), problem.c_str());
        // RGB order: the left half red, the right half blue.
        QCOMPARE((std::vector<int>{square[0], square[1], square[2]}), (std::vector<int>{255, 0, 0}));
        const std::size_t right = 7 * 3;
        QCOMPARE((std::vector<int>{square[right], square[right + 1], square[right + 2]}), (std::vector<int>{0, 0, 255}));
    }

    void splitIsStratifiedAndRepeatable()
    {
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        for (int i = 0; i < 20; ++i)
            write(root / "a" / ("a" + std::to_string(i) + ".png"), pattern(8, 8, 1, i));
        for (int i = 0; i < 10; ++i)
            write(root / "b" / ("b" + std::to_string(i) + ".png"), pattern(8, 8, 3, i));
        ScanOptions options;
        options.validationFraction = 0.2;
        options.seed = 7;
        const auto first = scanImageFolder(root, options);
        QCOMPARE(first.classes[0].validation, std::int64_t{4});
        QCOMPARE(first.classes[1].validation, std::int64_t{2});
        const auto again = scanImageFolder(root, options);
        auto validationOf = [](const ScanReport& report) {
            std::vector<std::string> paths;
            for (const auto& file : report.files)
                if (file.split == Split::Validation)
                    paths.push_back(file.path.string());
            return paths;
        };
        QCOMPARE(validationOf(again), validationOf(first));
        options.seed = 8;
        QVERIFY(validationOf(scanImageFolder(root, options)) != validationOf(first));
    }

    void explicitSplitsDuplicatesAndLeakage()
    {
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        const auto shared = pattern(16, 16, 3, 9);
        write(root / "train" / "x" / "one.png", shared);
        write(root / "train" / "x" / "copy.png", shared);
        write(root / "train" / "y" / "two.png", pattern(16, 16, 3, 10));
        write(root / "val" / "x" / "leak.png", shared);
        write(root / "val" / "y" / "three.png", pattern(16, 16, 3, 11));
        write(root / "val" / "z" / "stray.png", pattern(16, 16, 3, 12));
        const auto report = scanImageFolder(root);
        QVERIFY(report.explicitSplits);
        QCOMPARE(report.classNames(), (std::vector<std::string>{"x", "y"}));
        QCOMPARE(report.classes[0].train, std::int64_t{2});
        QCOMPARE(report.classes[0].validation, std::int64_t{1});
        QCOMPARE(report.duplicateGroups.size(), std::size_t{1});
        QCOMPARE(report.duplicateGroups[0].size(), std::size_t{3});
        QCOMPARE(report.leakage.size(), std::size_t{1});
        QVERIFY(fs::path(report.leakage[0].second).filename() == "leak.png");
        QVERIFY(reasonFor(report, "z").contains(QStringLiteral("not in")));
    }

    void refusesFoldersWithoutTwoClasses()
    {
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        QVERIFY_THROWS_EXCEPTION(IoError, scanImageFolder(root / "missing"));
        write(root / "only" / "one.png", pattern(8, 8, 3, 1));
        fs::create_directories(root / "hollow");
        try {
            scanImageFolder(root);
            QFAIL("one class must be refused");
        } catch (const ConfigError& error) {
            QVERIFY(QString::fromUtf8(error.what()).contains(QStringLiteral("at least two")));
        }
    }

    void linksNeverRelabelOrDoubleCountImages()
    {
        QTemporaryDir dir;
        const fs::path top = dir.path().toStdString();
        const fs::path root = top / "data";
        const fs::path outside = top / "outside";
        int seed = 0;
        const auto image = [&](const fs::path& path) { write(path, pattern(12, 12, 3, ++seed)); };
        for (const char* name : {"c1.png", "c2.png"})
            image(root / "cats" / name);
        for (const char* name : {"d1.png", "d2.png", "d3.png"})
            image(root / "dogs" / name);
        image(root / "birds" / "b1.png");
        image(outside / "extra" / "e1.png");
        image(outside / "extra" / "more" / "e2.png");
        image(outside / "A" / "a1.png");
        image(outside / "B" / "bb1.png");
        image(outside / "chain target" / "t1.png");
        image(outside / "fish" / "f1.png");
        image(outside / "lone.png");
        fs::create_directories(root / "cats" / "sub");

        // Links back into the dataset: never followed, each reported.
        fs::create_directory_symlink(root, root / "cats" / "to root");
        fs::create_directory_symlink(root / "cats", root / "cats" / "sub" / "to parent");
        fs::create_directory_symlink(root / "cats", root / "dogs" / "to cats");
        fs::create_directory_symlink(top, root / "birds" / "to above");
        fs::create_directory_symlink(root / "cats", root / "kittens"); // a class folder that is another class
        // Outside folders: followed once, under the class where the link sits.
        fs::create_directory_symlink(outside / "extra", root / "dogs" / "to outside");
        fs::create_directory_symlink(outside / "extra", root / "dogs" / "zz extra again");
        fs::create_directory_symlink(outside / "fish", root / "fish"); // a class folder kept elsewhere
        // A cycle between two outside folders, reached from birds.
        fs::create_directory_symlink(outside / "B", outside / "A" / "to B");
        fs::create_directory_symlink(outside / "A", outside / "B" / "to A");
        fs::create_directory_symlink(outside / "A", root / "birds" / "cycle");
        // A chain of links, a broken link and a link to itself.
        fs::create_directory_symlink(outside / "chain target", outside / "chain middle");
        fs::create_directory_symlink(outside / "chain middle", root / "birds" / "chain");
        fs::create_symlink(outside / "missing", root / "birds" / "dangling");
        fs::create_symlink(root / "birds" / "self", root / "birds" / "self");
        // File links: an outside file counts once (classes are walked in name order); a file the
        // dataset already holds is a duplicate.
        fs::create_symlink(outside / "lone.png", root / "birds" / "lone link.png");
        fs::create_symlink(outside / "lone.png", root / "cats" / "lone again.png");
        fs::create_symlink(root / "cats" / "c1.png", root / "dogs" / "c1 link.png");

        const auto report = scanImageFolder(root, {});
        QCOMPARE(report.classNames(), (std::vector<std::string>{"birds", "cats", "dogs", "fish"}));
        bool someFileTwice = true;
        const auto counted = countedByClass(report, someFileTwice);
        QVERIFY(!someFileTwice);
        QCOMPARE(counted.at("cats"), (std::vector<std::string>{"c1.png", "c2.png"}));
        QCOMPARE(counted.at("dogs"), (std::vector<std::string>{"d1.png", "d2.png", "d3.png", "e1.png", "e2.png"}));
        QCOMPARE(counted.at("birds"),
                 (std::vector<std::string>{"a1.png", "b1.png", "bb1.png", "lone link.png", "t1.png"}));
        QCOMPARE(counted.at("fish"), (std::vector<std::string>{"f1.png"}));
        QCOMPARE(report.files.size(), std::size_t{13});

        const std::vector<std::pair<fs::path, QString>> expected{
            {root / "cats" / "to root", QStringLiteral("the dataset's own folder")},
            {root / "cats" / "sub" / "to parent", QStringLiteral("a folder above the link")},
            {root / "dogs" / "to cats", QStringLiteral("the class cats")},
            {root / "birds" / "to above", QStringLiteral("holds the whole dataset")},
            {root / "kittens", QStringLiteral("the class cats")},
            {root / "dogs" / "zz extra again", QStringLiteral("already counted")},
            {outside / "B" / "to A", QStringLiteral("a cycle")},
            {root / "birds" / "dangling", QStringLiteral("broken link")},
            {root / "birds" / "self", QStringLiteral("link loop")},
            {root / "cats" / "lone again.png", QStringLiteral("duplicate")},
            {root / "dogs" / "c1 link.png", QStringLiteral("duplicate")},
        };
        for (const auto& [path, reason] : expected) {
            // Links met inside a followed folder are named by the path they were reached on.
            const auto reached = path.parent_path() == outside / "B"
                ? root / "birds" / "cycle" / "to B" / path.filename()
                : path;
            const auto* entry = skippedEntry(report, reached);
            QVERIFY2(entry, reached.c_str());
            QVERIFY2(QString::fromStdString(entry->reason).contains(reason), entry->reason.c_str());
            QVERIFY(entry->link);
        }
        QCOMPARE(report.skipped.size(), expected.size());
    }

    void progressCanCancel()
    {
        QTemporaryDir dir;
        const fs::path root = dir.path().toStdString();
        for (int i = 0; i < 200; ++i)
            write(root / (i % 2 ? "p" : "q") / (std::to_string(i) + ".png"), pattern(64, 64, 3, i));
        ScanOptions options;
        std::size_t calls = 0;
        // Reports come every 50 ms (and at the end): cancelling at the first one stops the scan.
        options.progress = [&](std::size_t, std::size_t) { return ++calls < 1; };
        const auto report = scanImageFolder(root, options);
        QVERIFY(report.cancelled);
        QVERIFY(report.files.empty());
        QCOMPARE(calls, std::size_t{1});
    }
};

QTEST_GUILESS_MAIN(TestImageFolder)
#include "tst_image_folder.moc"
