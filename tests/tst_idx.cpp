// IDX parsing against the real Fashion-MNIST files, and refusal of malformed ones.
#include "core/data/dataset_location.h"
#include "core/data/idx.h"
#include "core/errors.h"

#include <QTemporaryDir>
#include <QtTest>

#include <zlib.h>

#include <fstream>

using namespace vitlab;

namespace {

std::vector<std::uint8_t> bigEndian(std::initializer_list<std::uint32_t> words)
{
    std::vector<std::uint8_t> bytes;
    for (const auto word : words)
        for (int shift = 24; shift >= 0; shift -= 8)
            bytes.push_back(static_cast<std::uint8_t>(word >> shift));
    return bytes;
}

void writeFile(const std::string& path, const std::vector<std::uint8_t>& bytes)
{
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

void writeGzip(const std::string& path, const std::vector<std::uint8_t>& bytes)
{
    gzFile file = gzopen(path.c_str(), "wb");
    gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(file);
}

/// A tiny IDX folder: `count` images of 2x3 pixels, labels 0..classes-1 in turn.
void writeTinyIdxFolder(const QString& dir, std::uint32_t count, std::uint32_t classes, bool gzip)
{
    for (const std::string split : {"train", "t10k"}) {
        auto images = bigEndian({0x803, count, 2, 3});
        for (std::uint32_t i = 0; i < count * 6; ++i)
            images.push_back(static_cast<std::uint8_t>(i));
        auto labels = bigEndian({0x801, count});
        for (std::uint32_t i = 0; i < count; ++i)
            labels.push_back(static_cast<std::uint8_t>(i % classes));
        const auto base = dir.toStdString() + "/" + split;
        if (gzip) {
            writeGzip(base + "-images-idx3-ubyte.gz", images);
            writeGzip(base + "-labels-idx1-ubyte.gz", labels);
        } else {
            writeFile(base + "-images-idx3-ubyte", images);
            writeFile(base + "-labels-idx1-ubyte", labels);
        }
    }
}

} // namespace

class TestIdx : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void readsFashionMnist()
    {
        const auto folder = fashionMnistDirectory();
        QVERIFY(isIdxFolder(folder));
        const auto data = loadIdxFolder(folder, true);
        QCOMPARE(data.trainImages.count, std::int64_t{60000});
        QCOMPARE(data.testImages.count, std::int64_t{10000});
        QCOMPARE(data.trainImages.rows, std::int64_t{28});
        QCOMPARE(data.trainImages.cols, std::int64_t{28});
        QCOMPARE(data.trainLabels.size(), std::size_t{60000});
        QCOMPARE(data.classNames.size(), std::size_t{10});
        QCOMPARE(data.classNames[9], std::string("Ankle boot"));
        // The first labels, as Python's gzip reads them from the same files.
        const std::vector<std::uint8_t> firstTrain{9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
        const std::vector<std::uint8_t> firstTest{9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
        QVERIFY(std::equal(firstTrain.begin(), firstTrain.end(), data.trainLabels.begin()));
        QVERIFY(std::equal(firstTest.begin(), firstTest.end(), data.testLabels.begin()));
        std::int64_t firstImageSum = 0;
        for (int i = 0; i < 28 * 28; ++i)
            firstImageSum += data.trainImages.pixels[static_cast<std::size_t>(i)];
        QCOMPARE(firstImageSum, std::int64_t{76247});
        // Every class appears 6000 times in training.
        std::vector<int> counts(10, 0);
        for (const auto label : data.trainLabels)
            ++counts[label];
        for (const int count : counts)
            QCOMPARE(count, 6000);
    }

    void readsPlainAndGzippedFolders_data()
    {
        QTest::addColumn<bool>("gzip");
        QTest::newRow("gzip") << true;
        QTest::newRow("plain") << false;
    }
    void readsPlainAndGzippedFolders()
    {
        QFETCH(bool, gzip);
        QTemporaryDir dir;
        writeTinyIdxFolder(dir.path(), 5, 3, gzip);
        const auto data = loadIdxFolder(dir.path().toStdString());
        QCOMPARE(data.trainImages.count, std::int64_t{5});
        QCOMPARE(data.trainImages.pixels[7], std::uint8_t{7});
        QCOMPARE(data.classNames, (std::vector<std::string>{"0", "1", "2"}));
    }

    void classNamesComeFromClassesTxt()
    {
        QTemporaryDir dir;
        writeTinyIdxFolder(dir.path(), 4, 2, true);
        std::ofstream(dir.filePath(QStringLiteral("classes.txt")).toStdString()) << "cat\r\ndog\n\n";
        QCOMPARE(loadIdxFolder(dir.path().toStdString()).classNames, (std::vector<std::string>{"cat", "dog"}));
        std::ofstream(dir.filePath(QStringLiteral("classes.txt")).toStdString()) << "cat\n";
        QVERIFY_THROWS_EXCEPTION(FormatError, loadIdxFolder(dir.path().toStdString()));
    }

    void refusesMalformedFiles()
    {
        QTemporaryDir dir;
        const auto path = dir.filePath(QStringLiteral("bad")).toStdString();
        writeFile(path, bigEndian({0x801, 3}));                       // labels magic in an image file
        QVERIFY_THROWS_EXCEPTION(FormatError, readIdxImages(path));
        writeFile(path, bigEndian({0x803, 2, 28}));                   // header cut short
        QVERIFY_THROWS_EXCEPTION(FormatError, readIdxImages(path));
        writeFile(path, bigEndian({0x803, 2, 2, 2, 0x01020304}));     // fewer pixels than declared
        QVERIFY_THROWS_EXCEPTION(FormatError, readIdxImages(path));
        writeFile(path, bigEndian({0x803, 0xFFFFFFFF, 0xFFFF, 0xFFFF})); // absurd dimensions
        QVERIFY_THROWS_EXCEPTION(FormatError, readIdxImages(path));
        writeFile(path, bigEndian({0x801, 10, 0}));                   // fewer labels than declared
        QVERIFY_THROWS_EXCEPTION(FormatError, readIdxLabels(path));
        QVERIFY_THROWS_EXCEPTION(IoError, readIdxLabels(dir.filePath(QStringLiteral("missing")).toStdString()));

        // A label file that does not match its images.
        writeTinyIdxFolder(dir.path(), 4, 2, false);
        writeFile(dir.filePath(QStringLiteral("t10k-labels-idx1-ubyte")).toStdString(), bigEndian({0x801, 0}));
        QVERIFY_THROWS_EXCEPTION(FormatError, loadIdxFolder(dir.path().toStdString()));
        QVERIFY(!isIdxFolder(dir.filePath(QStringLiteral("nowhere")).toStdString()));
    }

    void shortFilesThatDeclareHugeSetsFailAtTheirEnd()
    {
        // 20 million 28x28 images (15.7 GB) declared by a 20-byte file, and 4 billion labels by
        // an 8-byte one: within the format's limits, so the reader must fail where the data
        // ends instead of first allocating what the header declares (which exhausts memory).
        QTemporaryDir dir;
        const auto path = dir.filePath(QStringLiteral("huge")).toStdString();
        writeFile(path, bigEndian({0x803, 20'000'000, 28, 28, 0x01020304}));
        try {
            readIdxImages(path);
            QFAIL("a file with 4 pixels read as 20 million images");
        } catch (const FormatError& error) {
            QVERIFY2(QString::fromUtf8(error.what()).contains(QStringLiteral("ends before its pixels")), error.what());
        }
        writeFile(path, bigEndian({0x801, 0xFFFFFFFF}));
        QVERIFY_THROWS_EXCEPTION(FormatError, readIdxLabels(path));
    }
};

QTEST_GUILESS_MAIN(TestIdx)
#include "tst_idx.moc"
