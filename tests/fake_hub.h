#pragma once

// The tests' Hugging Face Hub: tests/hub/fake_hub.py on 127.0.0.1 (a Hub port and a CDN port),
// started per test and stopped with it (it also stops by itself after its lifetime).
#include <QByteArray>
#include <QCryptographicHash>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QStandardPaths>
#include <QString>
#include <QStringList>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace vitlab::test {

/// One request the fake Hub saw.
struct HubRequest {
    int port = 0;
    QString method, path, host, range, authorization;
    bool proxied = false;
};

class FakeHub {
public:
    /// Serves the repositories under `root` ({org}/{name}/{file}); `mode` as fake_hub.py's --mode.
    FakeHub(const std::filesystem::path& root, const QString& mode, const std::filesystem::path& log)
        : m_log(log)
    {
        std::filesystem::remove(log);
        const auto python = QStandardPaths::findExecutable(QStringLiteral("python3"));
        if (python.isEmpty()) {
            m_problem = QStringLiteral("python3 is not installed: the fake Hub cannot start");
            return;
        }
        m_process.setProcessChannelMode(QProcess::ForwardedErrorChannel);
        m_process.start(python, {QString::fromLocal8Bit(VITLAB_FAKE_HUB_SCRIPT), QStringLiteral("--root"),
                                 QString::fromStdString(root.string()), QStringLiteral("--mode"), mode,
                                 QStringLiteral("--log"), QString::fromStdString(log.string()),
                                 QStringLiteral("--lifetime"), QStringLiteral("240")});
        if (!m_process.waitForStarted(10000) || !m_process.waitForReadyRead(20000)) {
            m_problem = QStringLiteral("the fake Hub did not start: ") + m_process.errorString();
            return;
        }
        const auto words = QString::fromUtf8(m_process.readLine()).split(' ');
        if (words.size() != 4) {
            m_problem = QStringLiteral("the fake Hub said: ") + words.join(' ');
            return;
        }
        m_hubPort = words[1].toInt();
        m_cdnPort = words[3].trimmed().toInt();
    }
    ~FakeHub()
    {
        m_process.closeWriteChannel(); // it exits when its stdin closes
        if (!m_process.waitForFinished(5000))
            m_process.kill();
        m_process.waitForFinished(2000);
    }
    FakeHub(const FakeHub&) = delete;
    FakeHub& operator=(const FakeHub&) = delete;

    /// Empty when it runs; else why not.
    QString problem() const { return m_problem; }
    std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(m_hubPort); }
    int hubPort() const { return m_hubPort; }
    int cdnPort() const { return m_cdnPort; }

    std::vector<HubRequest> requests() const
    {
        std::vector<HubRequest> seen;
        QFile file(QString::fromStdString(m_log.string()));
        if (!file.open(QIODevice::ReadOnly))
            return seen;
        while (!file.atEnd()) {
            const auto object = QJsonDocument::fromJson(file.readLine()).object();
            HubRequest request;
            request.port = object[QStringLiteral("port")].toInt();
            request.method = object[QStringLiteral("method")].toString();
            request.path = object[QStringLiteral("path")].toString();
            request.host = object[QStringLiteral("host")].toString();
            request.range = object[QStringLiteral("range")].toString();
            request.authorization = object[QStringLiteral("authorization")].toString();
            request.proxied = object[QStringLiteral("proxied")].toBool();
            seen.push_back(request);
        }
        return seen;
    }

private:
    std::filesystem::path m_log;
    QProcess m_process;
    QString m_problem;
    int m_hubPort = 0;
    int m_cdnPort = 0;
};

/// A repository of the fake Hub: {root}/{repository}/{file} with `bytes`.
inline void writeHubFile(const std::filesystem::path& root, const std::string& repository, const std::string& file,
                         const std::string& bytes)
{
    const auto path = root / repository / file;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
}

/// A file's bytes, as the tests compare what the cache holds with what the Hub served.
inline std::string readFile(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// `size` reproducible random bytes: a weights file's stand-in that no compression shrinks.
inline std::string randomBytes(std::size_t size, unsigned seed)
{
    std::mt19937 generator(seed);
    std::string bytes(size, '\0');
    for (auto& byte : bytes)
        byte = static_cast<char>(generator() & 0xFF);
    return bytes;
}

/// The commit fake_hub.py gives a repository: the SHA-1 of its name.
inline std::string fakeHubCommit(const std::string& repository)
{
    return QCryptographicHash::hash(QByteArray::fromStdString(repository), QCryptographicHash::Sha1).toHex().toStdString();
}

/// The SHA-256 of `bytes` in hex: an LFS file's ETag, its blob's name in the cache.
inline std::string sha256Hex(const std::string& bytes)
{
    return QCryptographicHash::hash(QByteArray::fromStdString(bytes), QCryptographicHash::Sha256).toHex().toStdString();
}

} // namespace vitlab::test
