#include "core/hub/hub_client.h"

#include "core/hub/hf_cache.h"
#include "core/io/atomic_file.h"
#include "core/version.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

namespace vitlab::hub {

namespace fs = std::filesystem;

namespace {

bool truthy(std::string value)
{
    std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
    return value == "1" || value == "on" || value == "yes" || value == "true";
}

std::string trim(const std::string& text)
{
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return {};
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

std::string lower(std::string text)
{
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

/// An ETag without its quotes or weak marker, as huggingface_hub stores it.
std::string normaliseEtag(std::string etag)
{
    if (etag.rfind("W/", 0) == 0)
        etag = etag.substr(2);
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
        etag = etag.substr(1, etag.size() - 2);
    return etag;
}

bool isSha256(const std::string& text)
{
    return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

/// A commit or ETag usable as a file name in the cache: letters, digits, '-' and '_' only.
bool isCacheName(const std::string& text)
{
    return !text.empty() && text.size() <= 128
        && std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; });
}

void initialiseCurl()
{
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

/// Scheme, host and port of a URL ("https://huggingface.co:443"): where a token may go.
std::string originOf(const std::string& url)
{
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), curl_url_cleanup);
    if (!handle || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
        return {};
    std::string origin;
    for (const auto part : {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT}) {
        char* value = nullptr;
        if (curl_url_get(handle.get(), part, &value, CURLU_DEFAULT_PORT) != CURLUE_OK)
            return {};
        origin += lower(value) + (part == CURLUPART_SCHEME ? "://" : part == CURLUPART_HOST ? ":" : "");
        curl_free(value);
    }
    return origin;
}

/// `location` (absolute or relative to `base`) as an absolute URL.
std::string resolveUrl(const std::string& base, const std::string& location)
{
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), curl_url_cleanup);
    char* value = nullptr;
    if (!handle || curl_url_set(handle.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK
        || curl_url_set(handle.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK
        || curl_url_get(handle.get(), CURLUPART_URL, &value, 0) != CURLUE_OK)
        return location;
    std::string url = value;
    curl_free(value);
    return url;
}

std::string escapePath(const std::string& text)
{
    std::string escaped;
    for (const unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/')
            escaped += static_cast<char>(c);
        else {
            char code[4];
            std::snprintf(code, sizeof code, "%%%02X", c);
            escaped += code;
        }
    }
    return escaped;
}

/// One HTTP exchange's status and headers (names lower-cased; the last response of a redirect chain).
struct Response {
    long status = 0;
    std::map<std::string, std::string> headers;

    std::string header(const std::string& name) const
    {
        const auto it = headers.find(name);
        return it == headers.end() ? std::string{} : it->second;
    }
};

std::size_t collectHeader(char* data, std::size_t size, std::size_t count, void* user)
{
    auto& response = *static_cast<Response*>(user);
    const std::string line(data, size * count);
    if (line.rfind("HTTP/", 0) == 0)
        response.headers.clear(); // a new response of a redirect chain
    if (const auto colon = line.find(':'); colon != std::string::npos)
        response.headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
    return size * count;
}

using CurlHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using HeaderList = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

CurlHandle newHandle(const HubSettings& settings, const std::string& url, Response& response)
{
    initialiseCurl();
    CurlHandle curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl)
        throw HubError(HubError::Kind::Network, "cannot start a download (libcurl failed to initialise)");
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, settings.connectTimeoutSeconds);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, settings.stallTimeoutSeconds);
    curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, collectHeader);
    curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &response);
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    const std::string agent = std::string("vitlab/") + VITLAB_VERSION_STRING;
    curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, agent.c_str());
    // Proxies come from http_proxy, https_proxy and no_proxy, which libcurl reads itself.
    return curl;
}

/// The request's headers: the token only for the endpoint's own origin, never for a CDN.
HeaderList requestHeaders(const HubSettings& settings, const std::string& url, const std::string& extra = {})
{
    curl_slist* list = curl_slist_append(nullptr, "Accept-Encoding: identity");
    if (!settings.token.empty() && originOf(url) == originOf(settings.endpoint))
        list = curl_slist_append(list, ("Authorization: Bearer " + settings.token).c_str());
    if (!extra.empty())
        list = curl_slist_append(list, extra.c_str());
    return HeaderList(list, curl_slist_free_all);
}

bool unreachable(CURLcode code)
{
    return code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY || code == CURLE_COULDNT_CONNECT
        || code == CURLE_OPERATION_TIMEDOUT || code == CURLE_SSL_CONNECT_ERROR;
}

[[noreturn]] void throwTransferError(CURLcode code, const std::string& url, const char* detail)
{
    const std::string reason = detail && *detail ? detail : curl_easy_strerror(code);
    if (unreachable(code))
        throw HubError(HubError::Kind::Offline, "cannot reach " + url + " (" + reason
                                                    + "); check the network, a proxy (https_proxy) or HF_ENDPOINT, "
                                                      "or set HF_HUB_OFFLINE=1 to use only what is cached");
    throw HubError(HubError::Kind::Network, "the download from " + url + " failed: " + reason);
}

std::string noRepository(const std::string& repository)
{
    return "the Hub has no repository " + repository
         + " (a misspelt model or tag? vitlab-cli weights list shows timm's tags)";
}

/// The Hub's error statuses as messages a person can act on.
[[noreturn]] void throwStatus(const Response& response, const std::string& repository, const std::string& file,
                              const std::string& revision, bool haveToken)
{
    const auto code = response.header("x-error-code");
    const auto hubMessage = response.header("x-error-message");
    const std::string said = hubMessage.empty() ? "" : " (the Hub says: " + hubMessage + ")";
    if (response.status == 401 || response.status == 403) {
        if (code == "RepoNotFound")
            throw HubError(HubError::Kind::NotFound, noRepository(repository) + said);
        throw HubError(HubError::Kind::Unauthorized,
                       repository + " is gated or private (HTTP " + std::to_string(response.status) + ")" + said + ": "
                           + (haveToken ? "the token in HF_TOKEN or $HF_HOME/token has no access; accept the model's "
                                          "terms on its Hub page with that account"
                                        : "accept the model's terms on its Hub page, then set HF_TOKEN or run hf auth "
                                          "login"));
    }
    if (response.status == 404) {
        if (code == "RevisionNotFound")
            throw HubError(HubError::Kind::NotFound, repository + " has no revision \"" + revision + "\"" + said);
        if (code == "EntryNotFound")
            throw HubError(HubError::Kind::NotFound, repository + " has no file " + file + " at " + revision + said);
        throw HubError(HubError::Kind::NotFound, noRepository(repository) + said);
    }
    throw HubError(HubError::Kind::Network, "the Hub answered HTTP " + std::to_string(response.status) + " for "
                                                + repository + "/" + file + said);
}

/// Holds huggingface_hub's lock file for one blob (.locks/<repository folder>/<etag>.lock), the
/// same flock that Python's filelock takes, so Python and ViTLab never write one blob at once.
class BlobLock {
public:
    BlobLock(const fs::path& path, const DownloadProgress& progress, std::int64_t total)
    {
        std::error_code error;
        fs::create_directories(path.parent_path(), error);
        m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (m_fd < 0)
            throw IoError("cannot create the lock " + path.string() + ": " + systemMessage(errno));
        while (::flock(m_fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK && errno != EINTR) {
                const int failure = errno;
                ::close(m_fd);
                throw IoError("cannot lock " + path.string() + ": " + systemMessage(failure));
            }
            // Another process downloads the same blob: wait, cancellably.
            if (progress && !progress(0, total)) {
                ::close(m_fd);
                throw HubError(HubError::Kind::Cancelled, "cancelled while another download of the file was running");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    ~BlobLock()
    {
        ::flock(m_fd, LOCK_UN);
        ::close(m_fd);
    }
    BlobLock(const BlobLock&) = delete;
    BlobLock& operator=(const BlobLock&) = delete;

private:
    int m_fd = -1;
};

/// Receives the body into the blob's ".incomplete" file: appended after a 206, from the start
/// after a 200 (the server ignored Range).
struct BodySink {
    CURL* curl = nullptr;
    fs::path path;
    std::int64_t resumeFrom = 0;
    std::int64_t received = 0; ///< bytes in the file
    std::FILE* file = nullptr;
    int writeErrno = 0;
    bool errorBody = false;
    std::string errorText;

    ~BodySink()
    {
        if (file)
            std::fclose(file);
    }
};

std::size_t receiveBody(char* data, std::size_t size, std::size_t count, void* user)
{
    auto& sink = *static_cast<BodySink*>(user);
    const std::size_t bytes = size * count;
    if (!sink.file && !sink.errorBody) {
        long status = 0;
        curl_easy_getinfo(sink.curl, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200 && status != 206) {
            sink.errorBody = true;
        } else {
            const bool append = status == 206 && sink.resumeFrom > 0;
            sink.file = std::fopen(sink.path.c_str(), append ? "ab" : "wb");
            if (!sink.file) {
                sink.writeErrno = errno;
                return 0;
            }
            sink.received = append ? sink.resumeFrom : 0;
        }
    }
    if (sink.errorBody) {
        if (sink.errorText.size() < 4096)
            sink.errorText.append(data, std::min<std::size_t>(bytes, 4096));
        return bytes;
    }
    if (std::fwrite(data, 1, bytes, sink.file) != bytes) {
        sink.writeErrno = errno;
        return 0;
    }
    sink.received += static_cast<std::int64_t>(bytes);
    return bytes;
}

struct ProgressState {
    const DownloadProgress* progress = nullptr;
    BodySink* sink = nullptr;
    std::int64_t total = -1;
    bool cancelled = false;
};

int reportProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t)
{
    auto& state = *static_cast<ProgressState*>(user);
    if (state.progress && *state.progress && !(*state.progress)(state.sink->received, state.total)) {
        state.cancelled = true;
        return 1;
    }
    return 0;
}

/// The link from snapshots/<commit>/<file> to the blob, relative as huggingface_hub makes it, or
/// a copy where the file system has no links. Replaced atomically.
void linkSnapshot(const fs::path& blob, const fs::path& snapshot)
{
    fs::create_directories(snapshot.parent_path());
    const auto relative = fs::relative(blob, snapshot.parent_path());
    auto temporary = snapshot;
    temporary += ".vitlab-link-" + std::to_string(::getpid());
    std::error_code error;
    fs::remove(temporary, error);
    fs::create_symlink(relative, temporary, error);
    if (error) {
        fs::copy_file(blob, temporary, fs::copy_options::overwrite_existing, error);
        if (error)
            throw IoError("cannot write " + snapshot.string() + ": " + error.message());
    }
    fs::rename(temporary, snapshot, error);
    if (error) {
        fs::remove(temporary);
        throw IoError("cannot write " + snapshot.string() + ": " + error.message());
    }
}

} // namespace

HubSettings HubSettings::fromEnvironment()
{
    HubSettings settings;
    if (auto endpoint = environmentValue("HF_ENDPOINT"); !endpoint.empty()) {
        while (!endpoint.empty() && endpoint.back() == '/')
            endpoint.pop_back();
        settings.endpoint = endpoint;
    }
    settings.cache = cacheDirectory();
    settings.offline = truthy(environmentValue("HF_HUB_OFFLINE"));
    settings.token = trim(environmentValue("HF_TOKEN"));
    if (settings.token.empty()) {
        const auto tokenPath = environmentValue("HF_TOKEN_PATH");
        const fs::path tokenFile = tokenPath.empty() ? huggingfaceHome() / "token" : expandUser(tokenPath);
        std::ifstream in(tokenFile);
        std::string line;
        if (in && std::getline(in, line))
            settings.token = trim(line);
    }
    return settings;
}

HubClient::HubClient(HubSettings settings) : m_settings(std::move(settings))
{
    if (m_settings.cache.empty())
        m_settings.cache = cacheDirectory();
}

RemoteFile HubClient::describe(const std::string& repository, const std::string& file,
                               const std::string& revision) const
{
    if (m_settings.offline)
        throw HubError(HubError::Kind::Offline, "HF_HUB_OFFLINE is set: the Hub is not asked");
    std::string url = m_settings.endpoint + "/" + escapePath(repository) + "/resolve/" + escapePath(revision) + "/"
                    + escapePath(file);
    const std::string asked = url;
    // huggingface_hub follows the Hub's own relative redirects (a renamed repository) but not the
    // absolute one to the CDN: that is where the bytes are, and the HEAD's headers are the Hub's.
    for (int hop = 0; hop < 5; ++hop) {
        Response response;
        auto curl = newHandle(m_settings, url, response);
        const auto headers = requestHeaders(m_settings, url);
        curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
        curl_easy_setopt(curl.get(), CURLOPT_NOBODY, 1L);
        char detail[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, detail);
        if (const auto code = curl_easy_perform(curl.get()); code != CURLE_OK)
            throwTransferError(code, m_settings.endpoint, detail);
        curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
        const auto location = response.header("location");
        const bool redirect = response.status >= 300 && response.status < 400 && !location.empty();
        if (redirect && location.front() == '/' && response.header("x-repo-commit").empty()) {
            url = resolveUrl(url, location);
            continue;
        }
        if (response.status >= 400)
            throwStatus(response, repository, file, revision, !m_settings.token.empty());
        RemoteFile remote;
        remote.commit = response.header("x-repo-commit");
        remote.etag = normaliseEtag(response.header("x-linked-etag"));
        if (remote.etag.empty())
            remote.etag = normaliseEtag(response.header("etag"));
        auto size = response.header("x-linked-size");
        if (size.empty() && !redirect)
            size = response.header("content-length");
        try {
            remote.size = size.empty() ? -1 : std::stoll(size);
        } catch (const std::exception&) {
            remote.size = -1;
        }
        if (!isCacheName(remote.commit) || !isCacheName(remote.etag))
            throw HubError(HubError::Kind::NotTheHub,
                           "the server at " + m_settings.endpoint + " answered " + asked + " without the Hub's headers "
                               + "(X-Repo-Commit, ETag): a proxy or a captive portal (a hotel or office sign-in page)? "
                                 "Check the network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache");
        remote.downloadUrl = redirect ? resolveUrl(url, location) : url;
        return remote;
    }
    throw HubError(HubError::Kind::Network, "too many redirects from " + asked);
}

fs::path HubClient::download(const std::string& repository, const std::string& file, const std::string& revision,
                             const DownloadProgress& progress) const
{
    const auto cached = findCachedFile(m_settings.cache, repository, file, revision);
    if (m_settings.offline || (isCommitHash(revision) && cached.state == CachedFile::State::Present)) {
        if (cached.state == CachedFile::State::Present)
            return cached.path;
        throw HubError(HubError::Kind::Offline, "HF_HUB_OFFLINE is set and " + repository + "/" + file + " at "
                                                    + revision + " is not in the cache " + m_settings.cache.string()
                                                    + " (unset it to download)");
    }
    RemoteFile remote;
    try {
        remote = describe(repository, file, revision);
    } catch (const HubError& error) {
        // huggingface_hub's behaviour too: an unreachable Hub falls back on what is cached.
        if ((error.kind() == HubError::Kind::Offline || error.kind() == HubError::Kind::NotTheHub)
            && cached.state == CachedFile::State::Present)
            return cached.path;
        throw;
    }

    const auto folder = m_settings.cache / repositoryFolderName(repository);
    std::error_code error;
    fs::create_directories(folder / "blobs", error);
    if (!error)
        fs::create_directories(folder / "refs", error);
    if (error)
        throw IoError("cannot create the cache folder " + (folder / "blobs").string() + ": " + error.message());
    if (revision != remote.commit) {
        const auto ref = folder / "refs" / revision; // "refs/pr/1" nests
        fs::create_directories(ref.parent_path(), error);
        writeFileAtomically(ref, remote.commit);
    }
    const auto snapshot = folder / "snapshots" / remote.commit / file;
    const auto blob = folder / "blobs" / remote.etag;
    if (fs::is_regular_file(snapshot, error))
        return snapshot;

    const BlobLock lock(m_settings.cache / ".locks" / repositoryFolderName(repository) / (remote.etag + ".lock"),
                        progress, remote.size);
    if (!fs::is_regular_file(blob, error)) {
        auto incomplete = blob;
        incomplete += ".incomplete";
        // A cut download resumes; a few cuts in a row are retried here before giving up.
        for (int attempt = 0;; ++attempt) {
            std::int64_t resumeFrom = 0;
            if (fs::exists(incomplete, error)) {
                const auto bytes = fs::file_size(incomplete, error);
                resumeFrom = error ? 0 : static_cast<std::int64_t>(bytes);
            }
            if (remote.size >= 0 && resumeFrom > remote.size)
                resumeFrom = 0; // not a prefix of this file: start again
            if (remote.size >= 0) {
                const auto space = fs::space(folder / "blobs", error);
                if (!error && static_cast<std::int64_t>(space.available) < remote.size - resumeFrom)
                    throw HubError(HubError::Kind::DiskFull,
                                   "no room for " + repository + "/" + file + " (" + formatBytes(remote.size)
                                       + ") in the cache " + m_settings.cache.string() + ": "
                                       + formatBytes(static_cast<std::int64_t>(space.available))
                                       + " free. Free some space or point HF_HUB_CACHE elsewhere");
            }
            Response response;
            auto curl = newHandle(m_settings, remote.downloadUrl, response);
            const auto headers = requestHeaders(m_settings, remote.downloadUrl,
                                                resumeFrom > 0 ? "Range: bytes=" + std::to_string(resumeFrom) + "-" : "");
            curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
            curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
            curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 5L);
            BodySink sink;
            sink.curl = curl.get();
            sink.path = incomplete;
            sink.resumeFrom = resumeFrom;
            sink.received = resumeFrom;
            curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, receiveBody);
            curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &sink);
            ProgressState state{&progress, &sink, remote.size};
            curl_easy_setopt(curl.get(), CURLOPT_XFERINFOFUNCTION, reportProgress);
            curl_easy_setopt(curl.get(), CURLOPT_XFERINFODATA, &state);
            curl_easy_setopt(curl.get(), CURLOPT_NOPROGRESS, 0L);
            char detail[CURL_ERROR_SIZE] = "";
            curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, detail);
            const auto code = curl_easy_perform(curl.get());
            curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response.status);
            if (sink.file) {
                if (std::fclose(sink.file) != 0 && !sink.writeErrno)
                    sink.writeErrno = errno;
                sink.file = nullptr;
            }
            if (state.cancelled)
                throw HubError(HubError::Kind::Cancelled,
                               "the download of " + repository + " was cancelled at " + formatBytes(sink.received)
                                   + "; the next download resumes there");
            if (sink.writeErrno == ENOSPC || sink.writeErrno == EDQUOT)
                throw HubError(HubError::Kind::DiskFull, "the disk of the cache " + m_settings.cache.string()
                                                             + " is full (" + formatBytes(sink.received) + " of "
                                                             + formatBytes(remote.size)
                                                             + " written; kept, to resume once there is room)");
            if (sink.writeErrno)
                throw IoError("cannot write " + incomplete.string() + ": " + systemMessage(sink.writeErrno));
            if (response.status == 416 && resumeFrom > 0 && attempt < 3) {
                fs::remove(incomplete, error); // the part on disk is not a prefix the server knows
                continue;
            }
            if (code == CURLE_OK && response.status >= 400)
                throwStatus(response, repository, file, revision, !m_settings.token.empty());
            if (code != CURLE_OK) {
                const bool cut = code == CURLE_PARTIAL_FILE || code == CURLE_RECV_ERROR || code == CURLE_OPERATION_TIMEDOUT
                              || code == CURLE_GOT_NOTHING;
                if (cut && attempt < 3 && sink.received > resumeFrom)
                    continue; // progress was made: resume at once
                if (cut)
                    throw HubError(HubError::Kind::Network,
                                   "the download of " + repository + "/" + file + " was cut at "
                                       + formatBytes(sink.received) + " of " + formatBytes(remote.size) + " ("
                                       + (*detail ? detail : curl_easy_strerror(code))
                                       + "); run it again to resume from there");
                throwTransferError(code, remote.downloadUrl, detail);
            }
            break;
        }
        const auto received = static_cast<std::int64_t>(fs::file_size(incomplete, error));
        if (error || (remote.size >= 0 && received != remote.size)) {
            fs::remove(incomplete, error);
            throw HubError(HubError::Kind::Corrupt, "the server sent " + std::to_string(received) + " bytes of "
                                                        + repository + "/" + file + " where the Hub said "
                                                        + std::to_string(remote.size) + "; nothing was cached");
        }
        if (isSha256(remote.etag)) {
            const auto actual = sha256OfFile(incomplete);
            if (actual != remote.etag) {
                fs::remove(incomplete, error);
                throw HubError(HubError::Kind::Corrupt,
                               "the bytes of " + repository + "/" + file + " do not match the Hub's checksum (SHA-256 "
                                   + actual.substr(0, 12) + "..., expected " + remote.etag.substr(0, 12)
                                   + "...): nothing was cached. A proxy may have altered them; try again");
            }
        }
        fs::rename(incomplete, blob, error);
        if (error)
            throw IoError("cannot move the download into " + blob.string() + ": " + error.message());
    }
    linkSnapshot(blob, snapshot);
    return snapshot;
}

std::string formatBytes(std::int64_t bytes)
{
    if (bytes < 0)
        return "size unknown";
    char text[32];
    if (bytes >= 1'000'000'000)
        std::snprintf(text, sizeof text, "%.2f GB", static_cast<double>(bytes) / 1e9);
    else
        std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
    return text;
}

std::string sha256OfFile(const fs::path& file)
{
    std::ifstream in(file, std::ios::binary);
    if (!in)
        throw IoError("cannot read " + file.string());
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1)
        throw IoError("cannot start a SHA-256 (OpenSSL)");
    std::vector<char> buffer(1 << 20);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        if (in.gcount() > 0)
            EVP_DigestUpdate(context.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
    }
    if (in.bad())
        throw IoError("cannot read " + file.string());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context.get(), digest, &length);
    std::string hex;
    for (unsigned int i = 0; i < length; ++i) {
        char pair[3];
        std::snprintf(pair, sizeof pair, "%02x", digest[i]);
        hex += pair;
    }
    return hex;
}

} // namespace vitlab::hub
