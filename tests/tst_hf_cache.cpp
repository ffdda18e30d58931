// huggingface_hub's cache as Python lays it out: where it is, how repositories are named, and
// which file a revision finds there without the network.
#include "core/hub/hf_cache.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cstdlib>
#include <fstream>

using namespace vitlab::hub;
namespace fs = std::filesystem;

namespace {

const char* const kCacheVariables[] = {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME"};

/// Lays out one cached file as huggingface_hub writes it: the bytes in blobs/<etag>, the snapshot
/// a relative link to it, refs/<revision> holding the commit.
void writeCachedFile(const fs::path& repository, const std::string& commit, const std::string& file,
                     const std::string& etag, const std::string& bytes, const std::string& revision = "main")
{
    fs::create_directories(repository / "blobs");
    fs::create_directories(repository / "refs");
    fs::create_directories(repository / "snapshots" / commit);
    std::ofstream(repository / "blobs" / etag, std::ios::binary) << bytes;
    fs::create_symlink(fs::path("..") / ".." / "blobs" / etag, repository / "snapshots" / commit / file);
    std::ofstream(repository / "refs" / revision) << commit; // no newline, as huggingface_hub writes it
}

} // namespace

class TestHfCache : public QObject {
    Q_OBJECT

private:
    std::map<std::string, std::optional<std::string>> m_saved;

private Q_SLOTS:
    void init()
    {
        for (const char* name : kCacheVariables) {
            const char* value = std::getenv(name);
            m_saved[name] = value ? std::optional<std::string>(value) : std::nullopt;
            if (std::string(name) != "HOME")
                ::unsetenv(name);
        }
    }
    void cleanup()
    {
        for (const auto& [name, value] : m_saved) {
            if (value)
                ::setenv(name.c_str(), value->c_str(), 1);
            else
                ::unsetenv(name.c_str());
        }
    }

    // The order of huggingface_hub's constants: each variable wins over the ones after it.
    void cacheDirectoryFollowsHuggingfaceHub()
    {
        ::setenv("HOME", "/home/ada", 1);
        QCOMPARE(cacheDirectory(), fs::path("/home/ada/.cache/huggingface/hub"));
        ::setenv("XDG_CACHE_HOME", "/xdg", 1);
        QCOMPARE(cacheDirectory(), fs::path("/xdg/huggingface/hub"));
        ::setenv("HF_HOME", "~/hf", 1);
        QCOMPARE(cacheDirectory(), fs::path("/home/ada/hf/hub"));
        ::setenv("HUGGINGFACE_HUB_CACHE", "/old-style", 1);
        QCOMPARE(cacheDirectory(), fs::path("/old-style"));
        ::setenv("HF_HUB_CACHE", "/new-style", 1);
        QCOMPARE(cacheDirectory(), fs::path("/new-style"));
    }

    void repositoryFoldersAreNamedAsPythonNamesThem()
    {
        QCOMPARE(repositoryFolderName("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k"),
                 std::string("models--timm--vit_tiny_patch16_224.augreg_in21k_ft_in1k"));
        QCOMPARE(repositoryFolderName("gpt2"), std::string("models--gpt2"));
        QCOMPARE(repositoryFolderName("user/set", "dataset"), std::string("datasets--user--set"));
        QVERIFY(isCommitHash("0123456789abcdef0123456789abcdef01234567"));
        QVERIFY(!isCommitHash("main"));
        QVERIFY(!isCommitHash("0123456789ABCDEF0123456789abcdef01234567"));
    }

    void aRevisionFindsItsSnapshot()
    {
        QTemporaryDir dir;
        const fs::path cache = dir.path().toStdString();
        const std::string repo = "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k";
        const auto folder = cache / repositoryFolderName(repo);
        const std::string commit = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
        writeCachedFile(folder, commit, "model.safetensors", "9f86d081884c7d659a2feaa0c55ad015", "weights");

        const auto found = findCachedFile(cache, repo, "model.safetensors");
        QCOMPARE(found.state, CachedFile::State::Present);
        QCOMPARE(found.commit, commit);
        std::ifstream in(found.path, std::ios::binary);
        QCOMPARE(std::string(std::istreambuf_iterator<char>(in), {}), std::string("weights"));
        // A commit names its snapshot without a ref; another branch is not cached.
        QCOMPARE(findCachedFile(cache, repo, "model.safetensors", commit).state, CachedFile::State::Present);
        QCOMPARE(findCachedFile(cache, repo, "model.safetensors", "v2").state, CachedFile::State::Unknown);
        QCOMPARE(findCachedFile(cache, repo, "config.json").state, CachedFile::State::Unknown);
        QCOMPARE(findCachedFile(cache, "timm/other", "model.safetensors").state, CachedFile::State::Unknown);

        // The Hub's "no such file" is remembered under .no_exist.
        fs::create_directories(folder / ".no_exist" / commit);
        std::ofstream(folder / ".no_exist" / commit / "pytorch_model.bin");
        QCOMPARE(findCachedFile(cache, repo, "pytorch_model.bin").state, CachedFile::State::Missing);

        // A snapshot link whose blob was deleted is not a cached file.
        fs::remove(folder / "blobs" / "9f86d081884c7d659a2feaa0c55ad015");
        QCOMPARE(findCachedFile(cache, repo, "model.safetensors").state, CachedFile::State::Unknown);
    }
};

QTEST_GUILESS_MAIN(TestHfCache)
#include "tst_hf_cache.moc"
