// vitlab-cli with timm's weights from a Hub (the fake one on 127.0.0.1): weights list and pull,
// two pulls at once, --weights hub for forward and train, offline use of the cache.
#include "core/hub/hf_cache.h"
#include "core/io/safetensors.h"
#include "core/models/pretrained.h"
#include "core/models/registry.h"
#include "core/models/weights.h"

#include "cli_runner.h"
#include "fake_hub.h"
#include "synthetic_images.h"
#include "test_support.h"

#include <QJsonArray>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <nlohmann/json.hpp>

using namespace vitlab;
using vitlab::test::FakeHub;
using vitlab::test::readFile;
using vitlab::test::runCli;
namespace fs = std::filesystem;

namespace {

const std::string kName = "deit_tiny_patch16_224.fb_in1k";
const std::string kRepository = "timm/" + kName;
// Not ImageNet's: proves that the run takes the weights' own normalisation from config.json.
const std::array<double, 3> kConfigMean{0.25, 0.5, 0.75};

std::size_t countCdnGets(const FakeHub& hub)
{
    std::size_t count = 0;
    for (const auto& request : hub.requests())
        count += request.port == hub.cdnPort() && request.method == QStringLiteral("GET");
    return count;
}

} // namespace

class TestCliWeights : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    fs::path m_root;
    fs::path m_cache;
    fs::path m_weightsFile;
    int m_cacheCount = 0;

    void useCache(const FakeHub* hub)
    {
        m_cache = fs::path(m_dir.path().toStdString()) / ("cache" + std::to_string(++m_cacheCount));
        qputenv("HF_HUB_CACHE", QByteArray::fromStdString(m_cache.string()));
        qunsetenv("HF_HUB_OFFLINE");
        if (hub)
            qputenv("HF_ENDPOINT", QByteArray::fromStdString(hub->endpoint()));
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_root = fs::path(m_dir.path().toStdString()) / "hub";
        // A DeiT-Ti in timm's layout, freshly initialised: as the Hub's file, at its real size.
        auto spec = withNumClasses(ModelRegistry::instance().model("deit_tiny_patch16_224"), 1000);
        torch::manual_seed(3);
        const auto model = createModel(spec);
        m_weightsFile = m_root / kRepository / "model.safetensors";
        fs::create_directories(m_weightsFile.parent_path());
        saveWeights(*model, m_weightsFile);
        const nlohmann::json config = {
            {"architecture", "deit_tiny_patch16_224"},
            {"num_classes", 1000},
            {"pretrained_cfg",
             {{"tag", "fb_in1k"}, {"input_size", {3, 224, 224}}, {"interpolation", "bicubic"}, {"crop_pct", 0.875},
              {"mean", kConfigMean}, {"std", {0.5, 0.5, 0.5}}, {"num_classes", 1000}}}};
        std::ofstream(m_root / kRepository / "config.json") << config.dump();
    }
    void cleanupTestCase()
    {
        for (const char* name : {"HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT"})
            qunsetenv(name);
    }

    void pullPrintsTheCachedPathThenWorksOffline()
    {
        FakeHub hub(m_root, "normal", m_dir.filePath("pull.log").toStdString());
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        useCache(&hub);
        auto listed = runCli({"weights", "list", "deit_tiny_patch16_224"});
        QCOMPARE(listed.exitCode, 0);
        QVERIFY2(listed.out.contains(QRegularExpression(
                     QStringLiteral("deit_tiny_patch16_224.fb_in1k +1000 +~2[0-9].[0-9] MB +no +ImageNet-1k \\(default\\)"))),
                 qPrintable(listed.out));

        const auto pulled = runCli({"weights", "pull", QString::fromStdString(kName)});
        QVERIFY2(pulled.exitCode == 0, qPrintable(pulled.err));
        const fs::path path = pulled.out.trimmed().toStdString();
        const auto cached = hub::findCachedFile(m_cache, kRepository, "model.safetensors");
        QCOMPARE(cached.state, hub::CachedFile::State::Present);
        QCOMPARE(path, cached.path);
        QCOMPARE(readFile(path), readFile(m_weightsFile));
        QVERIFY(pulled.err.contains("100%")); // the progress, a line per tenth off a terminal

        listed = runCli({"weights", "list", "deit_tiny_patch16_224", "--json"});
        const auto rows = QJsonDocument::fromJson(listed.out.toUtf8()).array();
        QCOMPARE(rows.size(), 1);
        const auto row = rows[0].toObject();
        QCOMPARE(row["cached"].toString().toStdString(), path.string());
        QVERIFY(row["bytes_exact"].toBool());
        QCOMPARE(static_cast<qint64>(row["bytes"].toDouble()), static_cast<qint64>(fs::file_size(m_weightsFile)));

        // Offline: the same path, and the Hub never asked.
        const auto before = hub.requests().size();
        qputenv("HF_HUB_OFFLINE", "1");
        const auto again = runCli({"weights", "pull", QString::fromStdString(kName)});
        QCOMPARE(again.exitCode, 0);
        QCOMPARE(again.out.trimmed().toStdString(), path.string());
        QCOMPARE(hub.requests().size(), before);
        const auto absent = runCli({"weights", "pull", "vit_tiny_patch16_224"});
        QCOMPARE(absent.exitCode, 1);
        QVERIFY2(absent.err.contains("HF_HUB_OFFLINE is set"), qPrintable(absent.err));
        qunsetenv("HF_HUB_OFFLINE");
    }

    void twoPullsAtOnceLeaveOneGoodBlob()
    {
        FakeHub hub(m_root, "slow", m_dir.filePath("parallel.log").toStdString());
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        useCache(&hub);
        QProcess first, second;
        for (auto* process : {&first, &second})
            process->start(qEnvironmentVariable("VITLAB_CLI"), {"weights", "pull", QString::fromStdString(kName)});
        for (auto* process : {&first, &second}) {
            QVERIFY(process->waitForFinished(120000));
            QVERIFY2(process->exitCode() == 0, process->readAllStandardError().constData());
        }
        QCOMPARE(first.readAllStandardOutput(), second.readAllStandardOutput());
        std::vector<std::string> blobs;
        for (const auto& entry : fs::directory_iterator(m_cache / hub::repositoryFolderName(kRepository) / "blobs"))
            blobs.push_back(entry.path().filename().string());
        // The weights' blob (and config.json's), nothing half-written.
        const auto weightsBlob = vitlab::test::sha256Hex(readFile(m_weightsFile));
        QCOMPARE(blobs.size(), std::size_t{2});
        QVERIFY(std::find(blobs.begin(), blobs.end(), weightsBlob) != blobs.end());
        QCOMPARE(readFile(m_cache / hub::repositoryFolderName(kRepository) / "blobs" / weightsBlob), readFile(m_weightsFile));
        QCOMPARE(countCdnGets(hub), std::size_t{1}); // the second waited on the lock, then found the blob
    }

    void forwardWithHubWeightsMatchesTheFile()
    {
        FakeHub hub(m_root, "normal", m_dir.filePath("forward.log").toStdString());
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        useCache(&hub);
        const auto input = fs::path(m_dir.path().toStdString()) / "input.safetensors";
        torch::manual_seed(1);
        safetensors::save(input, {{"input", torch::randn({1, 3, 224, 224})}});
        const auto viaHub = fs::path(m_dir.path().toStdString()) / "hub_logits.safetensors";
        const auto viaFile = fs::path(m_dir.path().toStdString()) / "file_logits.safetensors";
        auto result = runCli({"forward", "--model", "deit_tiny_patch16_224", "--weights", "hub", "--input",
                              QString::fromStdString(input.string()), "--output", QString::fromStdString(viaHub.string())});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        result = runCli({"forward", "--model", "deit_tiny_patch16_224", "--weights",
                         QString::fromStdString(m_weightsFile.string()), "--input", QString::fromStdString(input.string()),
                         "--output", QString::fromStdString(viaFile.string())});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        const auto a = safetensors::load(viaHub).tensors.at("logits");
        const auto b = safetensors::load(viaFile).tensors.at("logits");
        QCOMPARE(a.size(1), 1000);
        QVERIFY(torch::equal(a, b));

        // explain takes them too: hub:NAME.TAG names the model, offline from the cache.
        qputenv("HF_HUB_OFFLINE", "1");
        const auto image = fs::path(m_dir.path().toStdString()) / "photo.png";
        std::mt19937 random(5);
        QVERIFY(cv::imwrite(image.string(), vitlab::test::patternImage(1, 64, random)));
        const auto overlay = fs::path(m_dir.path().toStdString()) / "overlay.png";
        result = runCli({"explain", "--weights", QString::fromStdString("hub:" + kName),
                         QString::fromStdString(image.string()), "--out", QString::fromStdString(overlay.string())});
        qunsetenv("HF_HUB_OFFLINE");
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        QVERIFY(fs::file_size(overlay) > 1000);

        const auto mismatch = runCli({"forward", "--model", "vit_tiny_patch16_224", "--weights",
                                      QString::fromStdString("hub:" + kName), "--input",
                                      QString::fromStdString(input.string()), "--output", QString::fromStdString(viaHub.string())});
        QCOMPARE(mismatch.exitCode, 2);
        QVERIFY2(mismatch.err.contains("are for deit_tiny_patch16_224, not for the model vit_tiny_patch16_224"),
                 qPrintable(mismatch.err));
    }

    void trainFineTunesHubWeightsWithTheirNormalisation()
    {
        FakeHub hub(m_root, "normal", m_dir.filePath("train.log").toStdString());
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        useCache(&hub);
        const auto data = fs::path(m_dir.path().toStdString()) / "photos";
        QVERIFY(vitlab::test::writePatternFolder(data, 2, 6, 40));
        const auto runs = fs::path(m_dir.path().toStdString()) / "runs";
        // At 32 px and 2 classes: the position embedding resized, a fresh head.
        const auto result = runCli({"train", "--data", QString::fromStdString(data.string()), "--weights",
                                    QString::fromStdString("hub:" + kName), "--img-size", "32", "--epochs", "1",
                                    "--batch", "4", "--freeze", "head", "--out", QString::fromStdString(runs.string()),
                                    "--name", "hub_run", "--quiet"});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        std::ifstream in(runs / "hub_run" / "config.json");
        const auto config = nlohmann::json::parse(in);
        QCOMPARE(config["train"]["weights"].get<std::string>(), "hub:" + kName);
        QCOMPARE(config["train"]["model"].get<std::string>(), std::string("deit_tiny_patch16_224"));
        const auto mean = config["model"]["mean"].get<std::array<double, 3>>();
        QVERIFY(mean == kConfigMean);
        QCOMPARE(config["model"]["crop_pct"].get<double>(), 0.875);
        QCOMPARE(config["model"]["interpolation"].get<std::string>(), std::string("bicubic"));
    }

    void namesThatCannotBePulledSayWhy()
    {
        FakeHub hub(m_root, "normal", m_dir.filePath("errors.log").toStdString());
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        useCache(&hub);
        auto result = runCli({"weights", "pull", "vit_micro_patch4_28"});
        QCOMPARE(result.exitCode, 2);
        QVERIFY2(result.err.contains("timm publishes no weights for vit_micro_patch4_28"), qPrintable(result.err));
        result = runCli({"weights", "pull", "deit_tiny_patch16_224.no_such_tag"});
        QCOMPARE(result.exitCode, 1);
        QVERIFY2(result.err.contains("the Hub has no repository timm/deit_tiny_patch16_224.no_such_tag"),
                 qPrintable(result.err));
        result = runCli({"weights", "pull", "deit_tiny_patch16_22"});
        QCOMPARE(result.exitCode, 2);
        QVERIFY2(result.err.contains("did you mean"), qPrintable(result.err));
    }
};

QTEST_GUILESS_MAIN(TestCliWeights)
#include "tst_cli_weights.moc"
