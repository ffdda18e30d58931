#include "core/data/folder_walk.h"

#include <sys/stat.h>

#include <algorithm>

namespace vitlab {

namespace fs = std::filesystem;

namespace {

/// True when `inner` is `outer` or lies below it (both real locations, links resolved).
bool within(const fs::path& inner, const fs::path& outer)
{
    auto i = inner.begin();
    for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
        if (i == inner.end() || *i != *o)
            return false;
    }
    return true;
}

std::optional<std::pair<dev_t, ino_t>> fileId(const fs::path& path)
{
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0)
        return std::nullopt;
    return std::make_pair(info.st_dev, info.st_ino);
}

/// The real location of what the link `link` leads to, or why it leads nowhere.
std::optional<fs::path> resolveLink(const fs::path& link, std::string& problem)
{
    std::error_code error;
    auto target = fs::canonical(link, error);
    if (!error)
        return target;
    std::error_code readError;
    const auto written = fs::read_symlink(link, readError);
    if (error == std::errc::too_many_symbolic_link_levels)
        problem = "link loop: the link never reaches a file or folder";
    else if (error == std::errc::no_such_file_or_directory)
        problem = "broken link: its target " + (readError ? std::string("?") : written.string()) + " does not exist";
    else
        problem = "unreadable link (" + error.message() + ")";
    return std::nullopt;
}

} // namespace

DatasetWalker::DatasetWalker(const fs::path& root)
    : m_givenRoot(root)
{
    std::error_code error;
    m_root = fs::canonical(root, error);
    if (error)
        m_root = fs::absolute(root).lexically_normal();
}

std::optional<std::string> DatasetWalker::refusedClassFolder(const fs::path& folder)
{
    std::error_code error;
    if (!fs::is_symlink(fs::symlink_status(folder, error)))
        return std::nullopt;
    std::string problem;
    const auto target = resolveLink(folder, problem);
    if (!target)
        return problem;
    return folderLinkProblem(m_root, *target, {});
}

void DatasetWalker::walkClass(const fs::path& classDir, std::int64_t label, bool validation)
{
    std::error_code error;
    const auto real = fs::canonical(classDir, error);
    if (!error)
        m_classFolders.emplace(real, classDir.lexically_relative(m_givenRoot).generic_string());
    walkTree(classDir, label, validation, {});
}

void DatasetWalker::walkTree(const fs::path& start, std::int64_t label, bool validation, std::vector<FileId> chain)
{
    struct Folder {
        fs::path path;
        std::vector<FileId> chain;
    };
    std::vector<Folder> pending{{start, std::move(chain)}};
    while (!pending.empty()) {
        auto folder = std::move(pending.back());
        pending.pop_back();
        const auto id = fileId(folder.path);
        if (!id) {
            skipped.push_back({folder.path.string(), "folder unreadable"});
            continue;
        }
        if (!m_walkedFolders.insert(*id).second) {
            // A real sub-folder of a folder that a link reached first (or a bind mount).
            skipped.push_back({folder.path.string(), "a folder already counted through a link; not walked again"});
            continue;
        }
        folder.chain.push_back(*id);
        std::error_code error;
        fs::directory_iterator it(folder.path, fs::directory_options::skip_permission_denied, error);
        if (error) {
            skipped.push_back({folder.path.string(), "folder unreadable (" + error.message() + ")"});
            continue;
        }
        std::vector<fs::path> entries;
        for (; it != fs::directory_iterator(); it.increment(error)) {
            if (error)
                break;
            entries.push_back(it->path());
        }
        std::sort(entries.begin(), entries.end());
        for (const auto& entry : entries) {
            if (isHiddenEntry(entry))
                continue;
            std::error_code statError;
            const auto own = fs::symlink_status(entry, statError);
            if (statError) {
                skipped.push_back({entry.string(), "unreadable (" + statError.message() + ")"});
            } else if (fs::is_symlink(own)) {
                m_links.push_back({entry, label, validation, folder.chain});
            } else if (fs::is_directory(own)) {
                pending.push_back({entry, folder.chain});
            } else if (!fs::is_regular_file(own)) {
                skipped.push_back({entry.string(), "not a regular file"});
            } else if (!hasImageExtension(entry)) {
                skipped.push_back({entry.string(), "not an image (unknown file type)"});
            } else if (const auto file = fileId(entry)) {
                addImage(entry, label, validation, *file);
            } else {
                skipped.push_back({entry.string(), "unreadable"});
            }
        }
    }
}

void DatasetWalker::followLinks()
{
    // Following a folder link may meet more links: an index, since the list grows.
    for (std::size_t i = 0; i < m_links.size(); ++i) {
        const auto pending = m_links[i];
        std::string problem;
        const auto target = resolveLink(pending.link, problem);
        std::error_code error;
        if (!target)
            skipped.push_back({pending.link.string(), problem, /*link=*/true});
        else if (fs::is_directory(*target, error))
            followFolderLink(pending, *target);
        else
            m_fileLinks.push_back(pending);
    }
    m_links.clear();
    for (const auto& pending : m_fileLinks)
        followFileLink(pending);
    m_fileLinks.clear();
}

void DatasetWalker::followFolderLink(const PendingLink& pending, const fs::path& target)
{
    std::error_code error;
    auto linkFolder = fs::canonical(pending.link.parent_path(), error);
    if (error)
        linkFolder = pending.link.parent_path();
    if (auto reason = folderLinkProblem(linkFolder, target, pending.walkedChain)) {
        skipped.push_back({pending.link.string(), *reason, /*link=*/true});
        return;
    }
    walkTree(pending.link, pending.label, pending.validation, pending.walkedChain);
}

void DatasetWalker::followFileLink(const PendingLink& pending)
{
    std::string problem;
    const auto target = resolveLink(pending.link, problem);
    const auto id = target ? fileId(*target) : std::nullopt;
    std::error_code error;
    if (!target || !id) {
        skipped.push_back({pending.link.string(), target ? "unreadable link target" : problem, /*link=*/true});
    } else if (const auto counted = m_countedFiles.find(*id); counted != m_countedFiles.end()) {
        skipped.push_back({pending.link.string(),
                           "duplicate: the dataset already holds this file as " + counted->second.string()
                               + " (link to " + target->string() + ")",
                           /*link=*/true});
    } else if (!fs::is_regular_file(*target, error)) {
        skipped.push_back({pending.link.string(), "link to something that is not a regular file", /*link=*/true});
    } else if (!hasImageExtension(pending.link) && !hasImageExtension(*target)) {
        skipped.push_back({pending.link.string(), "not an image (unknown file type)", /*link=*/true});
    } else {
        addImage(pending.link, pending.label, pending.validation, *id);
    }
}

std::optional<std::string> DatasetWalker::folderLinkProblem(const fs::path& linkFolder, const fs::path& target,
                                                            const std::vector<FileId>& walkedChain) const
{
    // Why first (the Data page shows the start), then where the link leads.
    const auto to = [&](const std::string& why) { return why + " (link to " + target.string() + ")"; };
    if (target == m_root)
        return to("leads to the dataset's own folder, whose images are counted in their own classes");
    if (within(m_root, target))
        return to("leads to a folder that holds the whole dataset");
    if (within(target, m_root)) {
        if (within(linkFolder, target))
            return to("leads to a folder above the link, a loop");
        for (const auto& [classFolder, name] : m_classFolders) {
            if (!within(target, classFolder))
                continue;
            if (within(linkFolder, classFolder))
                return to("leads to a folder of its own class, already counted");
            return to("leads into the class " + name + ", whose images belong to that class");
        }
        return to("leads back into the dataset");
    }
    const auto id = fileId(target);
    if (id && std::find(walkedChain.begin(), walkedChain.end(), *id) != walkedChain.end())
        return to("leads back to this link, a cycle");
    if (id && m_walkedFolders.count(*id))
        return to("leads to a folder already counted through another link");
    return std::nullopt;
}

void DatasetWalker::addImage(const fs::path& path, std::int64_t label, bool validation, const FileId& id)
{
    m_countedFiles.emplace(id, path);
    images.push_back({path, label, validation});
}

} // namespace vitlab
