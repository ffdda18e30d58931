#include "core/data/image_folder.h"

#include "core/data/folder_walk.h"
#include "core/data/image_decode.h"

#include "core/errors.h"
#include "core/runtime.h"

#include <opencv2/imgcodecs.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

namespace vitlab {

namespace fs = std::filesystem;

namespace {

std::string lowercase(std::string text)
{
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

/// 64-bit FNV-1a: enough to find identical files among thousands.
std::uint64_t contentHash(const char* data, std::size_t size)
{
    std::uint64_t hash = 1469598103934665603ull;
    for (std::size_t i = 0; i < size; ++i) {
        hash ^= static_cast<unsigned char>(data[i]);
        hash *= 1099511628211ull;
    }
    return hash;
}

std::uint64_t mixHash(std::uint64_t value)
{
    // splitmix64's finaliser: a stable, platform-independent ordering key.
    value += 0x9e3779b97f4a7c15ull;
    value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ull;
    value = (value ^ (value >> 27)) * 0x94d049bb133111ebull;
    return value ^ (value >> 31);
}

std::uint64_t stringHash(const std::string& text)
{
    return contentHash(text.data(), text.size());
}

struct CheckResult {
    std::string problem; ///< empty when the image is usable
    std::uint64_t bytes = 0;
    std::uint64_t hash = 0;
    int width = 0;
    int height = 0;
};

CheckResult checkImage(const fs::path& path, bool decode, std::int64_t maxPixels)
{
    CheckResult result;
    auto bytes = readFileBytes(path, result.problem);
    if (!result.problem.empty())
        return result;
    result.bytes = bytes.size();
    result.hash = contentHash(bytes.data(), bytes.size());
    if (!decode)
        return result;
    // IMREAD_UNCHANGED skips the conversions a check does not need; the size is before EXIF rotation.
    const cv::Mat image = decodeImageBytes(bytes, cv::IMREAD_UNCHANGED, maxPixels, result.problem);
    result.width = image.cols;
    result.height = image.rows;
    return result;
}

std::vector<fs::path> sortedSubfolders(const fs::path& dir, std::vector<SkippedFile>* looseFiles)
{
    std::vector<fs::path> folders;
    std::error_code error;
    for (fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, error), end; !error && it != end;
         it.increment(error)) {
        if (isHiddenEntry(it->path()))
            continue;
        std::error_code statError;
        if (fs::is_directory(it->path(), statError))
            folders.push_back(it->path());
        else if (looseFiles)
            looseFiles->push_back({it->path().string(), "not inside a class folder"});
    }
    std::sort(folders.begin(), folders.end());
    return folders;
}

} // namespace

std::vector<std::string> ScanReport::classNames() const
{
    std::vector<std::string> names;
    for (const auto& entry : classes)
        names.push_back(entry.name);
    return names;
}

bool isHiddenEntry(const fs::path& path)
{
    const auto name = path.filename().string();
    static const std::set<std::string> systemFiles{"thumbs.db", "desktop.ini", "icon\r"};
    return (!name.empty() && name[0] == '.') || systemFiles.count(lowercase(name)) > 0;
}

bool hasImageExtension(const fs::path& path)
{
    static const std::set<std::string> extensions{".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"};
    return extensions.count(lowercase(path.extension().string())) > 0;
}

ScanReport scanImageFolder(const fs::path& root, const ScanOptions& options)
{
    std::error_code error;
    if (!fs::is_directory(root, error))
        throw IoError("the dataset folder " + root.string() + " does not exist or is not a folder");
    if (!(options.validationFraction >= 0.0 && options.validationFraction < 1.0))
        throw ConfigError("the validation fraction must be at least 0 and below 1");

    ScanReport report;
    report.root = root;
    fs::path trainDir, validationDir;
    for (const auto& folder : sortedSubfolders(root, nullptr)) {
        const auto name = lowercase(folder.filename().string());
        if (name == "train")
            trainDir = folder;
        else if (name == "val" || name == "valid" || name == "validation" || name == "test")
            validationDir = validationDir.empty() ? folder : validationDir;
    }
    report.explicitSplits = !trainDir.empty() && !validationDir.empty();

    DatasetWalker walker(root);
    const auto classRoot = report.explicitSplits ? trainDir : root;
    std::vector<fs::path> classFolders;
    std::map<std::string, std::int64_t> labels;
    for (const auto& folder : sortedSubfolders(classRoot, &report.skipped)) {
        if (const auto refused = walker.refusedClassFolder(folder)) {
            report.skipped.push_back({folder.string(), *refused, /*link=*/true});
            continue;
        }
        const auto label = static_cast<std::int64_t>(report.classes.size());
        labels[folder.filename().string()] = label;
        report.classes.push_back({folder.filename().string()});
        classFolders.push_back(folder);
        walker.walkClass(folder, label, false);
    }
    if (report.explicitSplits) {
        for (const auto& folder : sortedSubfolders(validationDir, &report.skipped)) {
            const auto found = labels.find(folder.filename().string());
            if (found == labels.end()) {
                report.skipped.push_back({folder.string(), "validation class not in " + trainDir.string()});
                continue;
            }
            if (const auto refused = walker.refusedClassFolder(folder)) {
                report.skipped.push_back({folder.string(), *refused, /*link=*/true});
                continue;
            }
            walker.walkClass(folder, found->second, true);
        }
    }
    walker.followLinks();
    const auto& candidates = walker.images;
    report.skipped.insert(report.skipped.end(), walker.skipped.begin(), walker.skipped.end());

    std::vector<CheckResult> checks(candidates.size());
    report.cancelled = runInParallel(
        candidates.size(),
        [&](std::size_t i) { checks[i] = checkImage(candidates[i].path, options.checkImages, options.maxPixels); },
        options.progress);
    if (report.cancelled)
        return report;

    std::int64_t sizedImages = 0;
    double widthSum = 0.0, heightSum = 0.0;
    std::unordered_map<std::uint64_t, std::vector<std::size_t>> byContent;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
        const auto& check = checks[i];
        if (!check.problem.empty()) {
            report.skipped.push_back({candidates[i].path.string(), check.problem});
            continue;
        }
        byContent[check.hash ^ mixHash(check.bytes)].push_back(report.files.size());
        report.files.push_back({candidates[i].path, candidates[i].label,
                                candidates[i].inValidationFolder ? Split::Validation : Split::Train, check.bytes,
                                check.width, check.height});
        if (check.width > 0) {
            report.minWidth = sizedImages ? std::min<std::int64_t>(report.minWidth, check.width) : check.width;
            report.maxWidth = std::max<std::int64_t>(report.maxWidth, check.width);
            report.minHeight = sizedImages ? std::min<std::int64_t>(report.minHeight, check.height) : check.height;
            report.maxHeight = std::max<std::int64_t>(report.maxHeight, check.height);
            widthSum += check.width;
            heightSum += check.height;
            ++sizedImages;
        }
    }
    if (sizedImages > 0) {
        report.meanWidth = widthSum / static_cast<double>(sizedImages);
        report.meanHeight = heightSum / static_cast<double>(sizedImages);
    }

    // A stratified split when the folder has none: per class, files ordered by a seeded hash of
    // their path inside the class, the first share held out. Adding files moves few others.
    if (!report.explicitSplits && options.validationFraction > 0.0) {
        std::map<std::int64_t, std::vector<std::size_t>> byClass;
        for (std::size_t i = 0; i < report.files.size(); ++i)
            byClass[report.files[i].label].push_back(i);
        for (auto& [label, members] : byClass) {
            const auto classDir = classFolders[static_cast<std::size_t>(label)];
            const auto key = [&](std::size_t i) {
                return mixHash(stringHash(report.files[i].path.lexically_relative(classDir).generic_string())
                               ^ mixHash(options.seed));
            };
            std::sort(members.begin(), members.end(), [&](std::size_t a, std::size_t b) {
                const auto ka = key(a), kb = key(b);
                return ka != kb ? ka < kb : report.files[a].path < report.files[b].path;
            });
            auto held = static_cast<std::size_t>(options.validationFraction * static_cast<double>(members.size()) + 0.5);
            if (members.size() >= 2)
                held = std::clamp<std::size_t>(held, 1, members.size() - 1);
            else
                held = 0;
            for (std::size_t k = 0; k < held; ++k)
                report.files[members[k]].split = Split::Validation;
        }
    }

    for (const auto& file : report.files) {
        auto& counts = report.classes[static_cast<std::size_t>(file.label)];
        (file.split == Split::Train ? counts.train : counts.validation)++;
    }
    for (auto& [key, group] : byContent) {
        if (group.size() < 2)
            continue;
        std::vector<std::string> paths;
        const ImageFile* firstTrain = nullptr;
        const ImageFile* firstValidation = nullptr;
        for (const auto index : group) {
            const auto& file = report.files[index];
            paths.push_back(file.path.string());
            (file.split == Split::Train ? firstTrain : firstValidation) = firstTrain && file.split == Split::Train
                ? firstTrain
                : (firstValidation && file.split == Split::Validation ? firstValidation : &file);
        }
        std::sort(paths.begin(), paths.end());
        report.duplicateGroups.push_back(std::move(paths));
        if (firstTrain && firstValidation)
            report.leakage.emplace_back(firstTrain->path.string(), firstValidation->path.string());
    }
    std::sort(report.duplicateGroups.begin(), report.duplicateGroups.end());
    std::sort(report.leakage.begin(), report.leakage.end());

    std::int64_t largest = 0, smallest = 0;
    std::size_t classesWithImages = 0;
    for (const auto& entry : report.classes) {
        const auto total = entry.train + entry.validation;
        if (total == 0) {
            report.emptyClasses.push_back(entry.name);
            continue;
        }
        largest = std::max(largest, total);
        smallest = classesWithImages++ ? std::min(smallest, total) : total;
    }
    if (classesWithImages < 2)
        throw ConfigError("found " + std::to_string(classesWithImages) + " class folder(s) with images in "
                          + root.string()
                          + "; a classifier needs at least two: put each class's images in a sub-folder of its own");
    report.imbalanceRatio = static_cast<double>(largest) / static_cast<double>(smallest);
    return report;
}

} // namespace vitlab
