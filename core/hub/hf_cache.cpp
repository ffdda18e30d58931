#include "core/hub/hf_cache.h"

#include <cstdlib>
#include <fstream>

namespace vitlab::hub {

namespace fs = std::filesystem;

std::string environmentValue(const char* name)
{
    const char* value = std::getenv(name);
    return value ? value : "";
}

fs::path expandUser(const std::string& path)
{
    if (path == "~" || path.rfind("~/", 0) == 0)
        return fs::path(environmentValue("HOME")) / path.substr(path.size() > 1 ? 2 : 1);
    return path;
}

fs::path huggingfaceHome()
{
    if (const auto home = environmentValue("HF_HOME"); !home.empty())
        return expandUser(home);
    const auto xdg = environmentValue("XDG_CACHE_HOME");
    return (xdg.empty() ? expandUser("~/.cache") : expandUser(xdg)) / "huggingface";
}

fs::path cacheDirectory()
{
    for (const char* name : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"}) {
        if (const auto value = environmentValue(name); !value.empty())
            return expandUser(value);
    }
    return huggingfaceHome() / "hub";
}

std::string repositoryFolderName(const std::string& repositoryId, const std::string& repositoryType)
{
    std::string name = repositoryType + "s";
    // huggingface_hub joins the type and the id's parts with "--".
    std::size_t start = 0;
    while (true) {
        const auto slash = repositoryId.find('/', start);
        name += "--" + repositoryId.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (slash == std::string::npos)
            break;
        start = slash + 1;
    }
    return name;
}

bool isCommitHash(const std::string& revision)
{
    return revision.size() == 40 && revision.find_first_not_of("0123456789abcdef") == std::string::npos;
}

CachedFile findCachedFile(const fs::path& cache, const std::string& repositoryId, const std::string& file,
                          const std::string& revision)
{
    CachedFile found;
    const auto repository = cache / repositoryFolderName(repositoryId);
    std::error_code error;
    if (!fs::is_directory(repository, error))
        return found;
    if (isCommitHash(revision)) {
        found.commit = revision;
    } else {
        std::ifstream ref(repository / "refs" / revision);
        if (!ref || !std::getline(ref, found.commit) || found.commit.empty())
            return found;
    }
    if (fs::exists(repository / ".no_exist" / found.commit / file, error)) {
        found.state = CachedFile::State::Missing;
        return found;
    }
    const auto snapshot = repository / "snapshots" / found.commit / file;
    // A link whose blob is gone (a cache cleaned by hand) counts as not cached.
    if (fs::is_regular_file(snapshot, error)) {
        found.state = CachedFile::State::Present;
        found.path = snapshot;
    }
    return found;
}

} // namespace vitlab::hub
