// The Hub client against a local fake Hub (tests/hub/fake_hub.py): the cache it fills is
// huggingface_hub's, downloads resume, bad bytes are refused, and each failure says what it is.
#include "core/hub/hf_cache.h"
#include "core/hub/hub_client.h"

#include "fake_hub.h"

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>
#include <random>

using namespace vitlab::hub;
using vitlab::test::FakeHub;
using vitlab::test::randomBytes;
using vitlab::test::readFile;
namespace fs = std::filesystem;

namespace {

const std::string kRepository = "timm/tiny_test.tag";

} // namespace

class TestHubClient : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    fs::path m_root;  // the fake Hub's repositories
    fs::path m_cache; // ViTLab's cache for one test
    std::string m_weights = randomBytes(3 << 20, 7);
    std::string m_config = R"({"architecture": "tiny_test", "num_classes": 10})";

    HubSettings settingsFor(const FakeHub& hub) const
    {
        HubSettings settings;
        settings.endpoint = hub.endpoint();
        settings.cache = m_cache;
        settings.connectTimeoutSeconds = 5;
        settings.stallTimeoutSeconds = 5;
        return settings;
    }

    fs::path repositoryFolder() const { return m_cache / repositoryFolderName(kRepository); }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_root = fs::path(m_dir.path().toStdString()) / "hub";
        vitlab::test::writeHubFile(m_root, kRepository, "model.safetensors", m_weights);
        vitlab::test::writeHubFile(m_root, kRepository, "config.json", m_config);
        vitlab::test::writeHubFile(m_root, "timm/gated_model.tag", "model.safetensors", m_weights.substr(0, 1000));
    }
    void init()
    {
        static int count = 0;
        m_cache = fs::path(m_dir.path().toStdString()) / ("cache" + std::to_string(++count));
    }

    void firstDownloadFillsTheCacheAsHuggingfaceHub()
    {
        FakeHub hub(m_root, "normal", m_cache.string() + ".log");
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        auto settings = settingsFor(hub);
        settings.token = "secret-token";
        const HubClient client(settings);
        const auto path = client.download(kRepository, "model.safetensors");
        const auto configPath = client.download(kRepository, "config.json");

        const auto commit = vitlab::test::fakeHubCommit(kRepository);
        const auto etag = vitlab::test::sha256Hex(m_weights);
        QCOMPARE(readFile(repositoryFolder() / "refs" / "main"), commit); // no newline, as Python writes it
        QCOMPARE(path, repositoryFolder() / "snapshots" / commit / "model.safetensors");
        QVERIFY(fs::is_symlink(path));
        QCOMPARE(fs::read_symlink(path), fs::path("../../blobs") / etag);
        QCOMPARE(readFile(repositoryFolder() / "blobs" / etag), m_weights);
        QCOMPARE(readFile(configPath), m_config);
        QVERIFY(fs::exists(m_cache / ".locks" / repositoryFolderName(kRepository) / (etag + ".lock")));
        const auto found = findCachedFile(m_cache, kRepository, "model.safetensors");
        QCOMPARE(found.state, CachedFile::State::Present);
        QCOMPARE(found.commit, commit);

        // The token goes to the Hub, never to the CDN on another port.
        bool sawCdn = false;
        for (const auto& request : hub.requests()) {
            if (request.port == hub.cdnPort()) {
                sawCdn = true;
                QVERIFY2(request.authorization.isEmpty(), "the token was sent to the CDN");
            } else {
                QCOMPARE(request.authorization, QStringLiteral("Bearer secret-token"));
            }
        }
        QVERIFY(sawCdn);
    }

    void cachedFileNeedsNoNetwork()
    {
        {
            FakeHub hub(m_root, "normal", m_cache.string() + ".log");
            if (!hub.problem().isEmpty())
                QSKIP(qPrintable(hub.problem()));
            HubClient(settingsFor(hub)).download(kRepository, "model.safetensors");
            // A commit revision that is cached is answered from the cache alone.
            const auto before = hub.requests().size();
            HubClient(settingsFor(hub)).download(kRepository, "model.safetensors", vitlab::test::fakeHubCommit(kRepository));
            QCOMPARE(hub.requests().size(), before);
        }
        // The Hub gone: "main" falls back on the cache, as huggingface_hub does.
        HubSettings gone;
        gone.endpoint = "http://127.0.0.1:9"; // the discard port: nothing listens
        gone.cache = m_cache;
        gone.connectTimeoutSeconds = 2;
        const auto path = HubClient(gone).download(kRepository, "model.safetensors");
        QCOMPARE(readFile(path), m_weights);
        // HF_HUB_OFFLINE: the cache only; a file it lacks is an offline error, without trying.
        gone.offline = true;
        QCOMPARE(HubClient(gone).download(kRepository, "model.safetensors"), path);
        try {
            HubClient(gone).download(kRepository, "missing.bin");
            QFAIL("an uncached file was found offline");
        } catch (const HubError& error) {
            QCOMPARE(error.kind(), HubError::Kind::Offline);
            QVERIFY2(QString(error.what()).contains("HF_HUB_OFFLINE"), error.what());
        }
    }

    void environmentGivesEndpointCacheTokenAndOffline()
    {
        qputenv("HF_ENDPOINT", "http://127.0.0.1:1234/");
        qputenv("HF_HUB_CACHE", QByteArray::fromStdString(m_cache.string()));
        qputenv("HF_HUB_OFFLINE", "True");
        const auto home = fs::path(m_dir.path().toStdString()) / "hf_home";
        fs::create_directories(home);
        std::ofstream(home / "token") << "hf_from_file\n";
        qputenv("HF_HOME", QByteArray::fromStdString(home.string()));
        qunsetenv("HF_TOKEN");
        auto settings = HubSettings::fromEnvironment();
        QCOMPARE(settings.endpoint, std::string("http://127.0.0.1:1234"));
        QCOMPARE(settings.cache, m_cache);
        QVERIFY(settings.offline);
        QCOMPARE(settings.token, std::string("hf_from_file"));
        qputenv("HF_TOKEN", "hf_from_variable");
        QCOMPARE(HubSettings::fromEnvironment().token, std::string("hf_from_variable"));
        for (const char* name : {"HF_ENDPOINT", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_HOME", "HF_TOKEN"})
            qunsetenv(name);
    }

    void cutDownloadResumes()
    {
        FakeHub hub(m_root, "cut-once", m_cache.string() + ".log");
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        const auto path = HubClient(settingsFor(hub)).download(kRepository, "model.safetensors");
        QCOMPARE(readFile(path), m_weights);
        QStringList ranges;
        for (const auto& request : hub.requests()) {
            if (request.port == hub.cdnPort())
                ranges << request.range;
        }
        // The first GET was cut half-way; the second asked for the rest only.
        QCOMPARE(ranges.size(), 2);
        QVERIFY(ranges[0].isEmpty());
        QCOMPARE(ranges[1], QStringLiteral("bytes=%1-").arg(m_weights.size() / 2));
    }

    void cancelKeepsThePartAndTheNextDownloadResumes()
    {
        FakeHub hub(m_root, "slow", m_cache.string() + ".log");
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        const HubClient client(settingsFor(hub));
        std::int64_t lastTotal = 0;
        try {
            client.download(kRepository, "model.safetensors", "main", [&](std::int64_t received, std::int64_t total) {
                lastTotal = total;
                return received < 200'000;
            });
            QFAIL("the download was not cancelled");
        } catch (const HubError& error) {
            QCOMPARE(error.kind(), HubError::Kind::Cancelled);
        }
        QCOMPARE(lastTotal, static_cast<std::int64_t>(m_weights.size()));
        const auto incomplete = repositoryFolder() / "blobs" / (vitlab::test::sha256Hex(m_weights) + ".incomplete");
        QVERIFY(fs::exists(incomplete));
        const auto kept = fs::file_size(incomplete);
        QVERIFY(kept >= 200'000 && kept < m_weights.size());
        QVERIFY(!fs::exists(repositoryFolder() / "snapshots"));

        const auto path = client.download(kRepository, "model.safetensors");
        QCOMPARE(readFile(path), m_weights);
        QCOMPARE(hub.requests().back().range, QStringLiteral("bytes=%1-").arg(kept));
    }

    void serverIgnoringRangeRestarts()
    {
        FakeHub hub(m_root, "ignore-range", m_cache.string() + ".log");
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        const auto blobs = repositoryFolder() / "blobs";
        fs::create_directories(blobs);
        std::ofstream(blobs / (vitlab::test::sha256Hex(m_weights) + ".incomplete"), std::ios::binary) << "not a prefix";
        const auto path = HubClient(settingsFor(hub)).download(kRepository, "model.safetensors");
        QCOMPARE(readFile(path), m_weights);
        QCOMPARE(hub.requests().back().range, QStringLiteral("bytes=12-"));
    }

    void bytesNotMatchingTheEtagAreRefused()
    {
        FakeHub hub(m_root, "corrupt", m_cache.string() + ".log");
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        try {
            HubClient(settingsFor(hub)).download(kRepository, "model.safetensors");
            QFAIL("corrupt bytes were accepted");
        } catch (const HubError& error) {
            QCOMPARE(error.kind(), HubError::Kind::Corrupt);
            QVERIFY2(QString(error.what()).contains("checksum"), error.what());
        }
        // Nothing cached: no blob, no partial file, no snapshot.
        for (const auto& entry : fs::directory_iterator(repositoryFolder() / "blobs"))
            QFAIL(qPrintable("left in blobs/: " + QString::fromStdString(entry.path().filename().string())));
        QCOMPARE(findCachedFile(m_cache, kRepository, "model.safetensors").state, CachedFile::State::Unknown);
    }

    void failuresSayWhatTheyAre_data()
    {
        QTest::addColumn<QString>("mode");
        QTest::addColumn<QString>("repository");
        QTest::addColumn<QString>("file");
        QTest::addColumn<int>("kind");
        QTest::addColumn<QString>("says");
        QTest::newRow("no such tag") << "normal" << "timm/tiny_test.other" << "model.safetensors"
                                     << int(HubError::Kind::NotFound) << "weights list";
        QTest::newRow("no such file") << "normal" << QString::fromStdString(kRepository) << "pytorch_model.bin"
                                      << int(HubError::Kind::NotFound) << "has no file pytorch_model.bin";
        QTest::newRow("gated") << "normal" << "timm/gated_model.tag" << "model.safetensors"
                               << int(HubError::Kind::Unauthorized) << "HF_TOKEN";
        QTest::newRow("captive portal") << "captive" << QString::fromStdString(kRepository) << "model.safetensors"
                                        << int(HubError::Kind::NotTheHub) << "captive portal";
    }
    void failuresSayWhatTheyAre()
    {
        QFETCH(QString, mode);
        QFETCH(QString, repository);
        QFETCH(QString, file);
        QFETCH(int, kind);
        QFETCH(QString, says);
        FakeHub hub(m_root, mode, m_cache.string() + ".log");
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        try {
            HubClient(settingsFor(hub)).download(repository.toStdString(), file.toStdString());
            QFAIL("the download did not fail");
        } catch (const HubError& error) {
            QVERIFY2(QString(error.what()).contains(says), error.what());
            QCOMPARE(int(error.kind()), kind);
        }
        QCOMPARE(findCachedFile(m_cache, repository.toStdString(), file.toStdString()).state,
                 CachedFile::State::Unknown);
    }

    void gatedRepositoryWithItsTokenDownloads()
    {
        FakeHub hub(m_root, "normal", m_cache.string() + ".log");
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        auto settings = settingsFor(hub);
        settings.token = "good-token";
        QCOMPARE(readFile(HubClient(settings).download("timm/gated_model.tag", "model.safetensors")),
                 m_weights.substr(0, 1000));
    }

    void unreachableHubSaysOffline()
    {
        HubSettings settings;
        settings.endpoint = "http://127.0.0.1:9";
        settings.cache = m_cache;
        settings.connectTimeoutSeconds = 2;
        try {
            HubClient(settings).download(kRepository, "model.safetensors");
            QFAIL("nothing listens, yet it downloaded");
        } catch (const HubError& error) {
            QCOMPARE(error.kind(), HubError::Kind::Offline);
            QVERIFY2(QString(error.what()).contains("cannot reach"), error.what());
        }
    }

    void proxyFromTheEnvironment()
    {
        FakeHub hub(m_root, "normal", m_cache.string() + ".log");
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        // The Hub's name does not resolve: only the proxy (the fake Hub, answering absolute URLs) can.
        qputenv("http_proxy", QByteArray::fromStdString(hub.endpoint()));
        auto settings = settingsFor(hub);
        settings.endpoint = "http://hub.invalid";
        const auto path = HubClient(settings).download(kRepository, "config.json");
        qunsetenv("http_proxy");
        QCOMPARE(readFile(path), m_config);
        QVERIFY(!hub.requests().empty());
        for (const auto& request : hub.requests()) {
            QVERIFY(request.proxied);
            QCOMPARE(request.host, QStringLiteral("hub.invalid"));
        }
    }

    void fullDiskKeepsNothingAndSaysSo()
    {
        FakeHub hub(m_root, "normal", m_cache.string() + ".log");
        if (!hub.problem().isEmpty())
            QSKIP(qPrintable(hub.problem()));
        if (!fs::exists("/dev/full"))
            QSKIP("no /dev/full to stand for a full disk");
        // The partial file is a link to /dev/full, so that every write fails with ENOSPC.
        const auto blobs = repositoryFolder() / "blobs";
        fs::create_directories(blobs);
        fs::create_symlink("/dev/full", blobs / (vitlab::test::sha256Hex(m_weights) + ".incomplete"));
        try {
            HubClient(settingsFor(hub)).download(kRepository, "model.safetensors");
            QFAIL("a full disk went unnoticed");
        } catch (const HubError& error) {
            QCOMPARE(error.kind(), HubError::Kind::DiskFull);
            QVERIFY2(QString(error.what()).contains("is full"), error.what());
        }
        QVERIFY(!fs::exists(blobs / vitlab::test::sha256Hex(m_weights)));
        QCOMPARE(findCachedFile(m_cache, kRepository, "model.safetensors").state, CachedFile::State::Unknown);
    }

    void sha256OfAFile()
    {
        const auto path = fs::path(m_dir.path().toStdString()) / "abc";
        std::ofstream(path) << "abc";
        QCOMPARE(sha256OfFile(path), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    }
};

QTEST_GUILESS_MAIN(TestHubClient)
#include "tst_hub_client.moc"
