#include "core/data/dataset_location.h"
#include "core/errors.h"

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace vitlab;

class TestDatasetLocation : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void cleanup() { qunsetenv("VITLAB_FASHION_MNIST_DIR"); }

    void fashionMnistIsThePackagedFolder()
    {
        const DatasetLocation location = resolveDatasetLocation("fashion-mnist");
        QVERIFY(location.builtin);
        QCOMPARE(location.directory.string(), std::string("/usr/share/datasets/fashion-mnist"));
        QCOMPARE(location.displayName, std::string("Fashion-MNIST"));
        QVERIFY(std::filesystem::exists(location.directory / "train-images-idx3-ubyte.gz")
                || std::filesystem::exists(location.directory / "train-images-idx3-ubyte"));
    }

    void missingDemoNamesThePackage()
    {
        qputenv("VITLAB_FASHION_MNIST_DIR", "/nonexistent/fashion");
        try {
            resolveDatasetLocation("fashion-mnist");
            QFAIL("a missing demo folder must be refused");
        } catch (const IoError& error) {
            QVERIFY(QString::fromUtf8(error.what()).contains(QStringLiteral("dataset-fashion-mnist")));
        }
    }

    void folderResolvesToItsAbsolutePathAndName()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::filesystem::path folder = std::filesystem::path(dir.path().toStdString()) / "my pictures ü";
        std::filesystem::create_directory(folder);
        const DatasetLocation location = resolveDatasetLocation(folder.string() + "/");
        QVERIFY(!location.builtin);
        QVERIFY(location.directory.is_absolute());
        QCOMPARE(location.displayName, std::string("my pictures ü"));
    }

    void refusesWhatIsNotAFolder()
    {
        QTemporaryDir dir;
        const std::string file = dir.filePath(QStringLiteral("image.png")).toStdString();
        std::ofstream(file) << "not a folder";
        QVERIFY_THROWS_EXCEPTION(IoError, resolveDatasetLocation(file));
        QVERIFY_THROWS_EXCEPTION(IoError, resolveDatasetLocation(dir.filePath(QStringLiteral("missing")).toStdString()));
        QVERIFY_THROWS_EXCEPTION(IoError, resolveDatasetLocation(""));
    }
};

QTEST_GUILESS_MAIN(TestDatasetLocation)
#include "tst_dataset_location.moc"
