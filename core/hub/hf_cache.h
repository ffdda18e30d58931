#pragma once

// huggingface_hub's file cache, exactly as Python lays it out, so that a file Python's timm
// downloaded is found here without the network (and one written here loads in Python):
//
//   <cache>/models--timm--vit_tiny_patch16_224.augreg_in21k_ft_in1k/
//       refs/main                      the commit that the revision "main" points to
//       snapshots/<commit>/<file>      the file (a relative link into blobs/)
//       blobs/<etag>                   the bytes
//       .no_exist/<commit>/<file>      a file the Hub said does not exist at that commit
#include <filesystem>
#include <optional>
#include <string>

namespace vitlab::hub {

/// An environment variable's value, or "" when it is not set.
std::string environmentValue(const char* name);

/// Python's os.path.expanduser for a leading "~" (the variables hold paths as users type them).
std::filesystem::path expandUser(const std::string& path);

/// huggingface_hub's home: HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface
/// (where its token file and, by default, the cache live).
std::filesystem::path huggingfaceHome();

/// The cache folder: HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
/// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (huggingface_hub's order).
std::filesystem::path cacheDirectory();

/// The folder of a repository in the cache: "models--timm--vit_tiny_patch16_224.augreg_in21k_ft_in1k"
/// for the model "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k".
std::string repositoryFolderName(const std::string& repositoryId, const std::string& repositoryType = "model");

/// True for a full commit hash (40 lowercase hex digits), which names a snapshot directly.
bool isCommitHash(const std::string& revision);

/// What the cache knows of a file at a revision, without the network.
struct CachedFile {
    enum class State {
        Unknown, ///< never asked for, or the revision is not in the cache
        Missing, ///< the Hub said the repository has no such file at that commit
        Present, ///< `path` is the file
    };
    State state = State::Unknown;
    std::filesystem::path path;
    /// The commit the revision resolved to, when the cache knows it.
    std::string commit;
};

/// Looks `file` up in the cached repository at `revision` (a branch, tag or commit), as
/// huggingface_hub's try_to_load_from_cache does.
CachedFile findCachedFile(const std::filesystem::path& cache, const std::string& repositoryId,
                          const std::string& file, const std::string& revision = "main");

} // namespace vitlab::hub
