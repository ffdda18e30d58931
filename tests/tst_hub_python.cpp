// The cache is Python's, both ways: what huggingface_hub downloads from the (fake) Hub, ViTLab finds
// offline; what ViTLab downloads, huggingface_hub loads with HF_HUB_OFFLINE=1. huggingface_hub
// comes from the test's own virtual environment (tests/hub/python_env.sh); without it, this skips.
#include "core/hub/hf_cache.h"
#include "core/hub/hub_client.h"

#include "fake_hub.h"

#include <QProcessEnvironment>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace vitlab::hub;
using vitlab::test::FakeHub;
using vitlab::test::readFile;
namespace fs = std::filesystem;

namespace {

const std::string kRepository = "timm/python_test.tag";

} // namespace

class TestHubPython : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    fs::path m_root;
    QString m_python;
    std::string m_weights = std::string(300'000, 'w') + "end";
    std::string m_config = R"({"architecture": "python_test"})";

    /// Python's hf_hub_download of `file` into `cache`: its printed path, or empty (with the error logged).
    QString pythonDownload(const FakeHub& hub, const fs::path& cache, const std::string& file, bool offline)
    {
        QProcess process;
        auto environment = QProcessEnvironment::systemEnvironment();
        environment.insert("HF_ENDPOINT", QString::fromStdString(hub.endpoint()));
        environment.insert("HF_HUB_CACHE", QString::fromStdString(cache.string()));
        environment.insert("HF_HUB_DISABLE_TELEMETRY", "1");
        environment.remove("HF_TOKEN");
        if (offline)
            environment.insert("HF_HUB_OFFLINE", "1");
        else
            environment.remove("HF_HUB_OFFLINE");
        process.setProcessEnvironment(environment);
        process.start(m_python, {QStringLiteral(VITLAB_HUB_TEST_DIR "/hf_download.py"),
                                 QString::fromStdString(kRepository), QString::fromStdString(file)});
        if (!process.waitForFinished(60000) || process.exitCode() != 0) {
            qWarning("huggingface_hub failed: %s", process.readAllStandardError().constData());
            return {};
        }
        return QString::fromUtf8(process.readAllStandardOutput()).trimmed();
    }

private Q_SLOTS:
    void initTestCase()
    {
        const QString env = qEnvironmentVariable("VITLAB_HUB_PYTHON_ENV");
        QFile unavailable(env + "/unavailable.txt");
        if (env.isEmpty() || unavailable.open(QIODevice::ReadOnly))
            QSKIP(qPrintable("no huggingface_hub to test against: " + QString::fromUtf8(unavailable.readAll())));
        m_python = env + "/bin/python";
        QVERIFY(m_dir.isValid());
        m_root = fs::path(m_dir.path().toStdString()) / "hub";
        vitlab::test::writeHubFile(m_root, kRepository, "model.safetensors", m_weights);
        vitlab::test::writeHubFile(m_root, kRepository, "config.json", m_config);
    }

    void pythonsDownloadIsFoundOffline()
    {
        FakeHub hub(m_root, "normal", m_dir.filePath("python.log").toStdString());
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        const auto cache = fs::path(m_dir.path().toStdString()) / "python_cache";
        const auto pythonPath = pythonDownload(hub, cache, "model.safetensors", false);
        QVERIFY(!pythonPath.isEmpty());
        QVERIFY(!pythonDownload(hub, cache, "config.json", false).isEmpty());

        HubSettings settings;
        settings.cache = cache;
        settings.offline = true;
        const auto path = HubClient(settings).download(kRepository, "model.safetensors");
        QCOMPARE(QString::fromStdString(path.string()), pythonPath);
        QCOMPARE(readFile(path), m_weights);
        QCOMPARE(readFile(HubClient(settings).download(kRepository, "config.json")), m_config);
    }

    void vitlabsDownloadLoadsInPythonOffline()
    {
        FakeHub hub(m_root, "normal", m_dir.filePath("vitlab.log").toStdString());
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        const auto cache = fs::path(m_dir.path().toStdString()) / "vitlab_cache";
        HubSettings settings;
        settings.endpoint = hub.endpoint();
        settings.cache = cache;
        const auto path = HubClient(settings).download(kRepository, "model.safetensors");
        HubClient(settings).download(kRepository, "config.json");
        const auto before = hub.requests().size();
        QCOMPARE(pythonDownload(hub, cache, "model.safetensors", true), QString::fromStdString(path.string()));
        QCOMPARE(pythonDownload(hub, cache, "config.json", true).isEmpty(), false);
        QCOMPARE(hub.requests().size(), before); // offline means offline
    }
};

QTEST_GUILESS_MAIN(TestHubPython)
#include "tst_hub_python.moc"
