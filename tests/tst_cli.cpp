// vitlab-cli end to end: the real binary on the timm fixtures and on bad input.
#include "core/io/safetensors.h"
#include "core/models/registry.h"
#include "cli_runner.h"
#include "test_support.h"

#include <QProcess>
#include <opencv2/imgcodecs.hpp>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <map>

using namespace vitlab;
using test::runCli;

namespace {


QString fixturePath(const QString& file)
{
    return QString::fromStdString((test::timmFixturesDir() / file.toStdString()).string());
}

/// Writes the fixture's config to a JSON file, as a user would.
QString writeConfig(const QTemporaryDir& dir, const QString& name)
{
    std::ifstream in(test::timmFixturesDir() / "index.json");
    const auto config = nlohmann::json::parse(in)[name.toStdString()]["config"];
    const QString path = dir.filePath(name + QStringLiteral(".json"));
    std::ofstream(path.toStdString()) << config.dump(2);
    return path;
}

} // namespace

class TestCli : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void benchInferReportsLatencyAndThroughput()
    {
        const auto result = runCli({QStringLiteral("bench"), QStringLiteral("infer"), QStringLiteral("--model"),
                                    QStringLiteral("vit_micro_patch4_28"), QStringLiteral("--batch"), QStringLiteral("4"),
                                    QStringLiteral("--precision"), QStringLiteral("fp32"), QStringLiteral("--iterations"),
                                    QStringLiteral("3"), QStringLiteral("--json")});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        const auto json = nlohmann::json::parse(result.out.toStdString());
        QCOMPARE(json["model"].get<std::string>(), std::string("vit_micro_patch4_28"));
        QCOMPARE(json["batch"].get<int>(), 4);
        QCOMPARE(json["precision"].get<std::string>(), std::string("fp32"));
        const double ms = json["ms_per_batch"].get<double>();
        QVERIFY(ms > 0.0);
        // The two figures describe the same timing.
        QVERIFY(std::abs(json["images_per_s"].get<double>() - 4.0 * 1000.0 / ms) < 1e-6 * json["images_per_s"].get<double>());
        const auto unknown = runCli({QStringLiteral("bench"), QStringLiteral("infer"), QStringLiteral("--model"),
                                     QStringLiteral("vit_micro_patch4_2")});
        QCOMPARE(unknown.exitCode, 2);
        QVERIFY(unknown.err.contains(QStringLiteral("did you mean")));
    }

    void initTestCase() { QVERIFY2(!qEnvironmentVariable("VITLAB_CLI").isEmpty(), "VITLAB_CLI is not set"); }

    void forwardWritesTimmsOutputs_data()
    {
        QTest::addColumn<QString>("name");
        QTest::newRow("vit") << QStringLiteral("vit");
        QTest::newRow("vit_gap") << QStringLiteral("vit_gap");
        QTest::newRow("deit_distilled") << QStringLiteral("deit_distilled");
    }
    void forwardWritesTimmsOutputs()
    {
        QFETCH(QString, name);
        QTemporaryDir dir;
        const QString output = dir.filePath(QStringLiteral("out.safetensors"));
        const auto result = runCli({QStringLiteral("forward"), QStringLiteral("--model"), writeConfig(dir, name),
                                    QStringLiteral("--weights"), fixturePath(name + QStringLiteral(".safetensors")),
                                    QStringLiteral("--input"), fixturePath(name + QStringLiteral(".io.safetensors")),
                                    QStringLiteral("--output"), output, QStringLiteral("--attention")});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        const auto ours = safetensors::load(output.toStdString()).tensors;
        const auto timm = safetensors::load(fixturePath(name + QStringLiteral(".io.safetensors")).toStdString()).tensors;
        const auto& logits = timm.at("logits");
        QVERIFY(test::maxAbsDifference(ours.at("logits"), logits)
                <= 1e-4 * std::max(1.0, logits.abs().max().item<double>()));
        for (const auto& [key, expected] : timm) {
            if (key.rfind("attn.", 0) == 0 || key == "rollout") {
                QVERIFY2(ours.count(key), key.c_str());
                QVERIFY2(test::maxAbsDifference(ours.at(key), expected) <= 1e-4, key.c_str());
            }
        }
    }

    void missingWeightsFileFailsWithOneLine()
    {
        QTemporaryDir dir;
        const auto result = runCli({QStringLiteral("forward"), QStringLiteral("--model"), writeConfig(dir, QStringLiteral("vit")),
                                    QStringLiteral("--weights"), dir.filePath(QStringLiteral("none.safetensors")),
                                    QStringLiteral("--input"), fixturePath(QStringLiteral("vit.io.safetensors")),
                                    QStringLiteral("--output"), dir.filePath(QStringLiteral("out.safetensors"))});
        QCOMPARE(result.exitCode, 1);
        QVERIFY(result.err.startsWith(QStringLiteral("error: ")));
        QCOMPARE(result.err.count(QLatin1Char('\n')), 1);
        QVERIFY(!QFile::exists(dir.filePath(QStringLiteral("out.safetensors"))));
    }

    void malformedOrMismatchedFilesAreRefused()
    {
        QTemporaryDir dir;
        const QString garbage = dir.filePath(QStringLiteral("garbage.safetensors"));
        std::ofstream(garbage.toStdString()) << "this is not a safetensors file at all";
        const QString config = writeConfig(dir, QStringLiteral("vit"));
        const QString input = fixturePath(QStringLiteral("vit.io.safetensors"));
        const QString output = dir.filePath(QStringLiteral("out.safetensors"));

        auto result = runCli({QStringLiteral("forward"), QStringLiteral("--model"), config, QStringLiteral("--weights"),
                              garbage, QStringLiteral("--input"), input, QStringLiteral("--output"), output});
        QCOMPARE(result.exitCode, 1);
        QVERIFY2(result.err.contains(QStringLiteral("garbage.safetensors")), qPrintable(result.err));

        // Weights of the distilled model do not fit a plain ViT: the keys are named.
        result = runCli({QStringLiteral("forward"), QStringLiteral("--model"), config, QStringLiteral("--weights"),
                         fixturePath(QStringLiteral("deit_distilled.safetensors")), QStringLiteral("--input"), input,
                         QStringLiteral("--output"), output});
        QCOMPARE(result.exitCode, 1);
        QVERIFY2(result.err.contains(QStringLiteral("dist_token")), qPrintable(result.err));

        // An input file without "input".
        result = runCli({QStringLiteral("forward"), QStringLiteral("--model"), config, QStringLiteral("--weights"),
                         fixturePath(QStringLiteral("vit.safetensors")), QStringLiteral("--input"),
                         fixturePath(QStringLiteral("vit.safetensors")), QStringLiteral("--output"), output});
        QCOMPARE(result.exitCode, 1);
        QVERIFY2(result.err.contains(QStringLiteral("\"input\"")), qPrintable(result.err));
        QVERIFY(!QFile::exists(output));
    }

    void unknownModelIsAUsageError()
    {
        QTemporaryDir dir;
        const auto result = runCli({QStringLiteral("forward"), QStringLiteral("--model"), QStringLiteral("vit_tiny_patch16_22"),
                                    QStringLiteral("--weights"), fixturePath(QStringLiteral("vit.safetensors")),
                                    QStringLiteral("--input"), fixturePath(QStringLiteral("vit.io.safetensors")),
                                    QStringLiteral("--output"), dir.filePath(QStringLiteral("out.safetensors"))});
        QCOMPARE(result.exitCode, 2);
        QVERIFY2(result.err.contains(QStringLiteral("vit_tiny_patch16_224")), qPrintable(result.err));
    }

    void dataInspectReportsClassesAndProblemsAsJson()
    {
        QTemporaryDir dir;
        const std::filesystem::path root = dir.path().toStdString();
        for (const char* name : {"ants", "bees"}) {
            std::filesystem::create_directories(root / name);
            for (int i = 0; i < 3; ++i) {
                cv::Mat image(12, 10, CV_8UC3, cv::Scalar(40 * i, 20, std::string(name) == "ants" ? 0 : 200));
                QVERIFY(cv::imwrite((root / name / (std::to_string(i) + ".png")).string(), image));
            }
        }
        std::ofstream(root / "bees" / "broken.jpg") << "not a jpeg";
        const auto result = runCli({QStringLiteral("data"), QStringLiteral("inspect"), QStringLiteral("--data"),
                                    dir.path(), QStringLiteral("--json")});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        const auto report = nlohmann::json::parse(result.out.toStdString());
        QCOMPARE(report["classes"].size(), std::size_t{2});
        QCOMPARE(report["classes"][1]["name"].get<std::string>(), std::string("bees"));
        QCOMPARE(report["classes"][1]["count"].get<int>(), 3);
        QCOMPARE(report["skipped"].size(), std::size_t{1});
        QVERIFY(QString::fromStdString(report["skipped"][0]["path"].get<std::string>()).endsWith(QStringLiteral("broken.jpg")));
        QVERIFY(!report["skipped"][0]["reason"].get<std::string>().empty());
        QCOMPARE(report["image_size"]["max_width"].get<int>(), 10);
    }

    void dataInspectCountsImagesOnceWhenAClassLinksToTheRoot()
    {
        // The case that once relabelled 41 images: a class folder holding a link to the root.
        QTemporaryDir dir;
        const std::filesystem::path root = dir.path().toStdString();
        const std::map<std::string, int> counts{{"ants", 2}, {"bees", 3}, {"wasps", 4}};
        for (const auto& [name, count] : counts) {
            std::filesystem::create_directories(root / name);
            for (int i = 0; i < count; ++i) {
                cv::Mat image(8, 8, CV_8UC3, cv::Scalar(30 * i, name.size() * 20, name[0]));
                QVERIFY(cv::imwrite((root / name / (std::to_string(i) + ".png")).string(), image));
            }
        }
        std::filesystem::create_directory_symlink(root, root / "bees" / "all of it");
        const auto result = runCli({QStringLiteral("data"), QStringLiteral("inspect"), QStringLiteral("--data"),
                                    dir.path(), QStringLiteral("--json")});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        const auto report = nlohmann::json::parse(result.out.toStdString());
        QCOMPARE(report["classes"].size(), counts.size());
        for (const auto& entry : report["classes"])
            QCOMPARE(entry["count"].get<int>(), counts.at(entry["name"].get<std::string>()));
        QCOMPARE(report["skipped"].size(), std::size_t{1});
        QCOMPARE(report["skipped"][0]["path"].get<std::string>(), (root / "bees" / "all of it").string());
        QVERIFY(report["skipped"][0]["link"].get<bool>());
        QVERIFY(QString::fromStdString(report["skipped"][0]["reason"].get<std::string>()).contains(QStringLiteral("own folder")));
    }

    void modelsListsTheRegistryAsJson()
    {
        const auto result = runCli({QStringLiteral("models"), QStringLiteral("--json")});
        QCOMPARE(result.exitCode, 0);
        const auto list = nlohmann::json::parse(result.out.toStdString());
        const auto registered = ModelRegistry::instance().models();
        QCOMPARE(list.size(), registered.size());
        for (std::size_t i = 0; i < registered.size(); ++i) {
            QCOMPARE(list[i]["name"].get<std::string>(), registered[i].name);
            QCOMPARE(list[i]["params"].get<std::int64_t>(), parameterCount(registered[i]));
            QCOMPARE(list[i]["flops_per_image"].get<std::int64_t>(), 2 * macsPerImage(registered[i]));
            QVERIFY(list[i]["mean"].size() == 3 && list[i]["img_size"].size() == 2);
        }
        const auto filtered = runCli({QStringLiteral("models"), QStringLiteral("deit_*distilled*"), QStringLiteral("--json")});
        QVERIFY(nlohmann::json::parse(filtered.out.toStdString()).size() >= 2);
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
