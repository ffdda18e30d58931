#pragma once

// Decode once: every image decoded in parallel into a uint8 store at a fixed storage size a
// little above the training size, so later epochs never decode again.
#include "core/data/idx.h"
#include "core/data/image_folder.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vitlab {

struct ImageCacheOptions {
    /// Side of the stored square: the shorter side is resized to it (bilinear, area averaging when
    /// shrinking by more than half), the longer one centre-cropped.
    std::int64_t side = 64;
    /// 1 (grey) or 3 (RGB).
    std::int64_t channels = 3;
    /// Above this many bytes the store is a memory-mapped file in `spillDirectory` instead of RAM.
    std::uint64_t memoryCapBytes = std::uint64_t{4} << 30;
    std::string spillDirectory;
    std::int64_t maxPixels = std::int64_t{100} * 1000 * 1000;
    /// (done, total) after each image, from worker threads one call at a time; false cancels.
    std::function<bool(std::size_t, std::size_t)> progress;
};

/// N images of side x side x channels, row-major HWC, RGB order.
class ImageCache {
public:
    /// An empty cache.
    ImageCache() = default;
    ImageCache(const ImageCache&) = delete;
    ImageCache& operator=(const ImageCache&) = delete;
    ImageCache(ImageCache&&) noexcept;
    ImageCache& operator=(ImageCache&&) noexcept;
    ~ImageCache();

    /// Decodes `files` (EXIF orientation applied; large JPEGs decoded at a reduced size when their
    /// size is known). Files that fail to decode are listed in failures() and left black; their
    /// index stays valid. Throws IoError when the spill file cannot be created.
    static ImageCache fromFiles(const std::vector<ImageFile>& files, const ImageCacheOptions& options);
    /// Resizes IDX images (grey) into the store, replicated to RGB when channels is 3.
    static ImageCache fromIdx(const IdxImages& images, const ImageCacheOptions& options);

    std::size_t size() const { return m_count; }
    std::int64_t side() const { return m_side; }
    std::int64_t channels() const { return m_channels; }
    std::size_t bytesPerImage() const { return static_cast<std::size_t>(m_side * m_side * m_channels); }
    const std::uint8_t* image(std::size_t index) const { return m_data + index * bytesPerImage(); }
    /// True when the store is a memory-mapped file rather than RAM.
    bool spilled() const { return m_mappedBytes > 0; }
    bool cancelled() const { return m_cancelled; }
    const std::vector<SkippedFile>& failures() const { return m_failures; }

private:
    void allocate(std::size_t count, const ImageCacheOptions& options);
    std::uint8_t* mutableImage(std::size_t index) { return m_data + index * bytesPerImage(); }

    std::size_t m_count = 0;
    std::int64_t m_side = 0;
    std::int64_t m_channels = 0;
    std::uint8_t* m_data = nullptr;
    std::vector<std::uint8_t> m_memory;
    std::size_t m_mappedBytes = 0;
    bool m_cancelled = false;
    std::vector<SkippedFile> m_failures;
};

/// Stores decoded pixels (HWC, 1 or 3 channels) as the cache does: the shorter side resized to
/// `side`, then the centre square, into `destination` (side x side x channels bytes).
void storeSquareImage(const std::uint8_t* pixels, int width, int height, int channels, std::int64_t side,
                      std::uint8_t* destination);

/// Decodes one image file as the cache stores it (EXIF orientation applied, RGB or grey, shorter
/// side resized to `side`, centre square) into `destination` (side x side x channels bytes).
/// Returns false with `problem` set when the file cannot be used.
bool decodeFileToSquare(const std::filesystem::path& path, std::int64_t side, std::int64_t channels,
                        std::int64_t maxPixels, std::uint8_t* destination, std::string& problem,
                        int knownWidth = 0, int knownHeight = 0);

} // namespace vitlab
