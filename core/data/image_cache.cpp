#include "core/data/image_cache.h"

#include "core/data/image_decode.h"
#include "core/errors.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace vitlab {

namespace {

std::filesystem::path defaultSpillDirectory()
{
    if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && *cache)
        return std::filesystem::path(cache) / "vitlab";
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::filesystem::path(home) / ".cache" / "vitlab";
    return std::filesystem::temp_directory_path() / "vitlab";
}

/// Shorter side to `side` (area averaging when shrinking), then the centre square.
void storeSquare(const cv::Mat& source, std::int64_t side, std::uint8_t* destination)
{
    const int target = static_cast<int>(side);
    const double scale = static_cast<double>(target) / std::min(source.cols, source.rows);
    const int width = std::max(target, static_cast<int>(std::lround(source.cols * scale)));
    const int height = std::max(target, static_cast<int>(std::lround(source.rows * scale)));
    cv::Mat resized;
    if (width == source.cols && height == source.rows)
        resized = source;
    else
        // Area averaging only pays against aliasing when shrinking by more than half; it costs
        // several times bilinear, and decoding the first epoch is bound by it.
        cv::resize(source, resized, {width, height}, 0, 0, scale < 0.5 ? cv::INTER_AREA : cv::INTER_LINEAR);
    const cv::Rect centre((width - target) / 2, (height - target) / 2, target, target);
    cv::Mat slot(target, target, CV_8UC(source.channels()), destination);
    resized(centre).copyTo(slot);
}

/// The reduced-size decode flag that still leaves the shorter side at least `side`, if any.
int decodeFlags(std::int64_t channels, int width, int height, std::int64_t side)
{
    const int shorter = std::min(width, height);
    const bool grey = channels == 1;
    for (const auto& [factor, greyFlag, colourFlag] :
         {std::tuple{8, cv::IMREAD_REDUCED_GRAYSCALE_8, cv::IMREAD_REDUCED_COLOR_8},
          std::tuple{4, cv::IMREAD_REDUCED_GRAYSCALE_4, cv::IMREAD_REDUCED_COLOR_4},
          std::tuple{2, cv::IMREAD_REDUCED_GRAYSCALE_2, cv::IMREAD_REDUCED_COLOR_2}}) {
        if (shorter > 0 && shorter / factor >= side)
            return grey ? greyFlag : colourFlag;
    }
    return grey ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR;
}

} // namespace

void storeSquareImage(const std::uint8_t* pixels, int width, int height, int channels, std::int64_t side,
                      std::uint8_t* destination)
{
    const cv::Mat image(height, width, CV_8UC(channels), const_cast<std::uint8_t*>(pixels));
    storeSquare(image, side, destination);
}

bool decodeFileToSquare(const std::filesystem::path& path, std::int64_t side, std::int64_t channels,
                        std::int64_t maxPixels, std::uint8_t* destination, std::string& problem, int knownWidth,
                        int knownHeight)
{
    auto bytes = readFileBytes(path, problem);
    if (!problem.empty())
        return false;
    const int flags = decodeFlags(channels, knownWidth, knownHeight, side);
    cv::Mat image = decodeImageBytes(bytes, flags, maxPixels, problem);
    if (!problem.empty())
        return false;
    if (image.channels() == 3)
        cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
    storeSquare(image, side, destination);
    return true;
}

ImageCache::ImageCache(ImageCache&& other) noexcept
{
    *this = std::move(other);
}

ImageCache& ImageCache::operator=(ImageCache&& other) noexcept
{
    if (this != &other) {
        if (m_mappedBytes > 0)
            munmap(m_data, m_mappedBytes);
        m_count = other.m_count;
        m_side = other.m_side;
        m_channels = other.m_channels;
        m_memory = std::move(other.m_memory);
        m_mappedBytes = other.m_mappedBytes;
        m_data = m_mappedBytes > 0 ? other.m_data : m_memory.data();
        m_cancelled = other.m_cancelled;
        m_failures = std::move(other.m_failures);
        other.m_data = nullptr;
        other.m_mappedBytes = 0;
        other.m_count = 0;
    }
    return *this;
}

ImageCache::~ImageCache()
{
    if (m_mappedBytes > 0)
        munmap(m_data, m_mappedBytes);
}

void ImageCache::allocate(std::size_t count, const ImageCacheOptions& options)
{
    if (options.side < 1 || options.side > 4096 || (options.channels != 1 && options.channels != 3))
        throw ConfigError("the image cache takes a side of 1 to 4096 pixels and 1 or 3 channels");
    m_count = count;
    m_side = options.side;
    m_channels = options.channels;
    const std::size_t bytes = count * bytesPerImage();
    if (bytes <= options.memoryCapBytes) {
        m_memory.assign(bytes, 0);
        m_data = m_memory.data();
        return;
    }
    // Beyond the cap: a file the kernel pages in and out. It is unlinked at once, so it
    // disappears with the process, even after a crash.
    const auto directory = options.spillDirectory.empty() ? defaultSpillDirectory()
                                                          : std::filesystem::path(options.spillDirectory);
    std::error_code error;
    std::filesystem::create_directories(directory, error);
    std::string pattern = (directory / "image-cache-XXXXXX").string();
    const int fd = mkstemp(pattern.data());
    if (fd < 0)
        throw IoError("cannot create the image cache file in " + directory.string() + ": " + std::strerror(errno));
    unlink(pattern.c_str());
    void* mapped = MAP_FAILED;
    if (ftruncate(fd, static_cast<off_t>(bytes)) == 0)
        mapped = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const int savedErrno = errno;
    close(fd);
    if (mapped == MAP_FAILED)
        throw IoError("cannot map an image cache of " + std::to_string(bytes >> 20) + " MiB in " + directory.string()
                      + ": " + std::strerror(savedErrno));
    m_data = static_cast<std::uint8_t*>(mapped);
    m_mappedBytes = bytes;
}

ImageCache ImageCache::fromFiles(const std::vector<ImageFile>& files, const ImageCacheOptions& options)
{
    ImageCache cache;
    cache.allocate(files.size(), options);
    std::mutex failuresMutex;
    cache.m_cancelled = runInParallel(
        files.size(),
        [&](std::size_t i) {
            std::string problem;
            if (!decodeFileToSquare(files[i].path, options.side, options.channels, options.maxPixels,
                                    cache.mutableImage(i), problem, files[i].width, files[i].height)) {
                std::lock_guard<std::mutex> lock(failuresMutex);
                cache.m_failures.push_back({files[i].path.string(), problem});
            }
        },
        options.progress);
    return cache;
}

ImageCache ImageCache::fromIdx(const IdxImages& images, const ImageCacheOptions& options)
{
    ImageCache cache;
    cache.allocate(static_cast<std::size_t>(images.count), options);
    const auto pixelsPerImage = static_cast<std::size_t>(images.rows * images.cols);
    cache.m_cancelled = runInParallel(
        static_cast<std::size_t>(images.count),
        [&](std::size_t i) {
            const cv::Mat grey(static_cast<int>(images.rows), static_cast<int>(images.cols), CV_8UC1,
                               const_cast<std::uint8_t*>(images.pixels.data() + i * pixelsPerImage));
            if (options.channels == 1) {
                storeSquare(grey, options.side, cache.mutableImage(i));
            } else {
                cv::Mat rgb;
                cv::cvtColor(grey, rgb, cv::COLOR_GRAY2RGB);
                storeSquare(rgb, options.side, cache.mutableImage(i));
            }
        },
        options.progress);
    return cache;
}

} // namespace vitlab
