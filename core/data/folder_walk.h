#pragma once

// Walking the class folders of an image dataset, links included. A link must never move an
// image to another class or count it twice, so links are judged by where they lead:
// - a folder link is followed only when it leads outside the dataset's root and not into a
//   folder already walked (an ancestor, a cycle, a folder reached by another link);
// - a file link counts the file once, under the class where the link sits, unless the dataset
//   already holds that file.
// Every link not followed is reported with its reason, as skipped files are.
#include "core/data/image_folder.h"

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace vitlab {

/// An image file found in a class folder (not yet checked).
struct FoundImage {
    std::filesystem::path path; ///< as reached from the dataset's root, links not resolved
    std::int64_t label = 0;
    bool inValidationFolder = false;
};

class DatasetWalker {
public:
    /// `root` is the dataset's folder; links are judged against its real location.
    explicit DatasetWalker(const std::filesystem::path& root);

    /// Why `folder` (a would-be class folder) cannot be a class: a link into the dataset, around
    /// it or to a folder already walked. Nothing when it is a class.
    std::optional<std::string> refusedClassFolder(const std::filesystem::path& folder);

    /// Walks one class folder's own files and folders; the links met are kept for `followLinks`.
    void walkClass(const std::filesystem::path& classDir, std::int64_t label, bool validation);

    /// Follows the links met so far, and those met in the folders they lead to: folders first,
    /// then files, so that a file link can tell whether the dataset already holds its file.
    /// Call once, after every class folder was walked.
    void followLinks();

    std::vector<FoundImage> images;
    std::vector<SkippedFile> skipped;

private:
    using FileId = std::pair<dev_t, ino_t>;
    struct PendingLink {
        std::filesystem::path link;
        std::int64_t label = 0;
        bool validation = false;
        std::vector<FileId> walkedChain; ///< the real folders from its class folder down to the link
    };

    void walkTree(const std::filesystem::path& start, std::int64_t label, bool validation, std::vector<FileId> chain);
    void followFolderLink(const PendingLink& pending, const std::filesystem::path& target);
    void followFileLink(const PendingLink& pending);
    /// Why a folder link met in `linkFolder` (real location) and leading to `target` (real
    /// location) is not followed; nothing when it leads outside the dataset and to a folder
    /// not walked yet.
    std::optional<std::string> folderLinkProblem(const std::filesystem::path& linkFolder,
                                                 const std::filesystem::path& target,
                                                 const std::vector<FileId>& walkedChain) const;
    void addImage(const std::filesystem::path& path, std::int64_t label, bool validation, const FileId& id);

    std::filesystem::path m_givenRoot;
    std::filesystem::path m_root; ///< real location, links resolved
    /// Links met and not yet followed; the file links wait until every folder was walked.
    std::vector<PendingLink> m_links, m_fileLinks;
    /// Each class folder's real location, with its name relative to the root.
    std::map<std::filesystem::path, std::string> m_classFolders;
    std::set<FileId> m_walkedFolders;
    /// Every image counted, by file identity, with the path it was counted under.
    std::map<FileId, std::filesystem::path> m_countedFiles;
};

} // namespace vitlab
