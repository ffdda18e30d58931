#pragma once

// Image folders as users bring them: one sub-folder per class, images at any depth below it,
// optionally split into train/ and val/ (or test/). Every file that cannot be used is reported
// with its reason; none stops the scan.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace vitlab {

enum class Split { Train, Validation };

struct ImageFile {
    std::filesystem::path path;
    std::int64_t label = 0;
    Split split = Split::Train;
    std::uint64_t bytes = 0;
    /// Pixel size as stored (before EXIF rotation); 0 when the scan did not decode.
    int width = 0;
    int height = 0;
};

struct SkippedFile {
    std::string path;
    std::string reason;
    /// A link not followed (into the dataset, a loop, broken) rather than a bad file.
    bool link = false;
};

struct ClassCount {
    std::string name;
    std::int64_t train = 0;
    std::int64_t validation = 0;
};

struct ScanOptions {
    /// Share of each class held out for validation when the folder has no explicit splits.
    double validationFraction = 0.2;
    /// Seeds the stratified split; the same files and seed always give the same split.
    std::uint64_t seed = 0;
    /// Read every image's header to check it decodes (and gather sizes). Off lists files only.
    bool checkImages = true;
    /// Images with more pixels are refused (decompression bombs).
    std::int64_t maxPixels = std::int64_t{100} * 1000 * 1000;
    /// Called as work progresses with (done, total); returning false cancels the scan.
    std::function<bool(std::size_t done, std::size_t total)> progress;
};

struct ScanReport {
    std::filesystem::path root;
    /// True when the folder had train/ and val/ (or test/) sub-folders.
    bool explicitSplits = false;
    std::vector<ClassCount> classes;
    std::vector<ImageFile> files;
    std::vector<SkippedFile> skipped;
    /// Groups of files with identical content (each group two or more paths).
    std::vector<std::vector<std::string>> duplicateGroups;
    /// Identical content in both training and validation: (training path, validation path).
    std::vector<std::pair<std::string, std::string>> leakage;
    /// Class folders that hold no usable image.
    std::vector<std::string> emptyClasses;
    /// Largest class over smallest non-empty class (1 when balanced).
    double imbalanceRatio = 1.0;
    std::int64_t minWidth = 0, maxWidth = 0, minHeight = 0, maxHeight = 0;
    double meanWidth = 0.0, meanHeight = 0.0;
    bool cancelled = false;

    std::vector<std::string> classNames() const;
};

/// Hidden files and folders, and the system files that photo tools leave behind: never looked at.
bool isHiddenEntry(const std::filesystem::path& path);

/// File name endings taken as images, compared case-insensitively.
bool hasImageExtension(const std::filesystem::path& path);

/// Scans `root`. Throws IoError when it is not a readable folder and ConfigError when fewer than
/// two classes hold images; everything else lands in the report.
ScanReport scanImageFolder(const std::filesystem::path& root, const ScanOptions& options = {});

} // namespace vitlab
