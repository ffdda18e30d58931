#pragma once

// What the scanner and the cache share: reading a file, spotting truncation, decoding with the
// pixel guard, and running per-image work on every core.
#include <opencv2/core.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace vitlab {

/// The file's bytes. On failure `problem` says why ("zero bytes", "unreadable ...").
std::vector<char> readFileBytes(const std::filesystem::path& path, std::string& problem);

/// A JPEG must end with its EOI marker and a PNG with its IEND chunk; decoders fill a cut-off
/// image with grey instead of failing, so truncation is checked on the bytes.
bool looksTruncated(const std::vector<char>& bytes);

/// True when the bytes start like one of the kinds the engine reads (JPEG, PNG, BMP, WebP, TIFF:
/// those of hasImageExtension). OpenCV would otherwise pick any decoder it has by the content,
/// DICOM and JPEG 2000 among them; Debian's DICOM reader aborts the process on some 134-byte
/// inputs (found by fuzz_image).
bool hasSupportedImageSignature(const std::vector<char>& bytes);

/// Decodes with OpenCV `flags` (cv::IMREAD_*), only the kinds hasSupportedImageSignature accepts. Returns an empty Mat with `problem` set when the
/// bytes are truncated, corrupt, not an image, or over `maxPixels`.
cv::Mat decodeImageBytes(std::vector<char>& bytes, int flags, std::int64_t maxPixels, std::string& problem);

/// Makes OpenCV refuse images above `maxPixels` before it allocates (it reads the limit once).
void limitDecodedPixels(std::int64_t maxPixels);

/// Runs work(0..count-1) on every usable core. `progress` is called after each item, from the
/// worker threads but one call at a time; returning false stops the remaining items. Returns
/// true when cancelled.
bool runInParallel(std::size_t count, const std::function<void(std::size_t)>& work,
                   const std::function<bool(std::size_t, std::size_t)>& progress);

} // namespace vitlab
