#pragma once

// What the scanner and the cache share: reading a file, spotting truncation, decoding with the
// pixel guard, and running per-image work on every core.
#include <opencv2/core.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vitlab {

/// The file's bytes. On failure `problem` says why ("zero bytes", "unreadable ...").
std::vector<char> readFileBytes(const std::filesystem::path& path, std::string& problem);

/// A JPEG must end with its EOI marker and a PNG with its IEND chunk; decoders fill a cut-off
/// image with grey instead of failing, so truncation is checked on the bytes.
bool looksTruncated(const std::vector<char>& bytes);

/// An image's pixel size as its header declares it, before anything is decoded.
struct ImageHeader {
    std::int64_t width = 0;
    std::int64_t height = 0;
};

/// The declared size of a JPEG, PNG, BMP, WebP or TIFF (the kinds of hasImageExtension), read from
/// the bytes; nothing for any other kind or a header that cannot be read. Decoding only what this
/// accepts also keeps OpenCV from choosing one of its other decoders by the content: Debian's
/// DICOM reader aborts the process on some 134-byte inputs (found by fuzz_image).
std::optional<ImageHeader> readImageHeader(const std::vector<char>& bytes);

/// Decodes with OpenCV `flags` (cv::IMREAD_*). Returns an empty Mat with `problem` set when the
/// bytes are not one of the kinds above, are truncated or corrupt, or declare more than
/// `maxPixels` (refused from the header, before any allocation).
cv::Mat decodeImageBytes(std::vector<char>& bytes, int flags, std::int64_t maxPixels, std::string& problem);

/// Runs work(0..count-1) on every usable core. `progress` is called after each item, from the
/// worker threads but one call at a time; returning false stops the remaining items. Returns
/// true when cancelled.
bool runInParallel(std::size_t count, const std::function<void(std::size_t)>& work,
                   const std::function<bool(std::size_t, std::size_t)>& progress);

} // namespace vitlab
