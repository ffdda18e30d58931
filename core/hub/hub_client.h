#pragma once

// Files from the Hugging Face Hub into huggingface_hub's own cache (hf_cache.h), as Python's
// hf_hub_download does: HEAD of {endpoint}/{repo}/resolve/{revision}/{file} for the commit, the ETag
// and the size, then the bytes from wherever the Hub redirects (its CDN), resumed with Range after
// an interruption, checked against the ETag's SHA-256, written atomically into blobs/ under a lock
// that Python's filelock honours too, and linked from snapshots/. libcurl, no Qt.
#include "core/errors.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace vitlab::hub {

/// A download that did not happen; what() says why and what to do.
class HubError : public Error {
public:
    enum class Kind {
        Offline,      ///< no network (or HF_HUB_OFFLINE=1), and the cache lacks the file
        Unauthorized, ///< 401/403: a gated or private repository, or a bad token
        NotFound,     ///< 404: no such repository, revision (tag) or file
        NotTheHub,    ///< something answered without the Hub's headers: a proxy or captive portal
        DiskFull,     ///< the cache's disk has no room for the file
        Corrupt,      ///< the bytes do not match the Hub's checksum or size
        Cancelled,    ///< the progress callback asked to stop
        Network,      ///< any other transfer failure (an interrupted download resumes next time)
    };
    HubError(Kind kind, const std::string& message) : Error(message), m_kind(kind) {}
    Kind kind() const { return m_kind; }

private:
    Kind m_kind;
};

/// Where the Hub is and what to send it, as huggingface_hub reads them from the environment.
struct HubSettings {
    /// HF_ENDPOINT, else https://huggingface.co.
    std::string endpoint = "https://huggingface.co";
    /// cacheDirectory(): HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub > ...
    std::filesystem::path cache;
    /// HF_TOKEN, else the file HF_TOKEN_PATH, else $HF_HOME/token. Sent only to the endpoint's host.
    std::string token;
    /// HF_HUB_OFFLINE=1: the cache only, never the network.
    bool offline = false;
    long connectTimeoutSeconds = 10;
    /// A transfer slower than 1 byte/s for this long counts as cut (and resumes).
    long stallTimeoutSeconds = 30;

    static HubSettings fromEnvironment();
};

/// What the Hub says of a file at a revision (the HEAD of its resolve URL).
struct RemoteFile {
    std::string commit;
    /// The blob's name in the cache: the SHA-256 of an LFS file, the git hash of a small one.
    std::string etag;
    /// Bytes, or -1 when the Hub did not say.
    std::int64_t size = -1;
    /// Where the bytes are: the CDN the Hub redirects to, or the resolve URL itself.
    std::string downloadUrl;
};

/// Called as bytes arrive: (bytes so far, total or -1). Returning false cancels the download; the
/// part already received is kept and resumed by the next download of the same file.
using DownloadProgress = std::function<bool(std::int64_t received, std::int64_t total)>;

class HubClient {
public:
    explicit HubClient(HubSettings settings = HubSettings::fromEnvironment());

    const HubSettings& settings() const { return m_settings; }

    /// Asks the Hub (never the cache). Throws HubError.
    RemoteFile describe(const std::string& repository, const std::string& file,
                        const std::string& revision = "main") const;

    /// The file's path in the cache, downloaded first when the cache lacks it. A commit revision
    /// found in the cache, and HF_HUB_OFFLINE=1, never touch the network; a cached file is also
    /// returned when the Hub cannot be reached. Throws HubError.
    std::filesystem::path download(const std::string& repository, const std::string& file,
                                   const std::string& revision = "main", const DownloadProgress& progress = {}) const;

private:
    HubSettings m_settings;
};

/// Bytes for people: "23.0 MB", "1.23 GB", or "size unknown" for -1.
std::string formatBytes(std::int64_t bytes);

/// The SHA-256 of a file as 64 lowercase hex digits. Throws IoError.
std::string sha256OfFile(const std::filesystem::path& file);

} // namespace vitlab::hub
