#include "core/data/image_decode.h"

#include "core/runtime.h"

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

namespace vitlab {

std::vector<char> readFileBytes(const std::filesystem::path& path, std::string& problem)
{
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) {
        problem = "unreadable (permission denied or vanished)";
        return {};
    }
    std::vector<char> bytes(static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0)));
    in.seekg(0);
    if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
        problem = "unreadable (read error)";
        return {};
    }
    if (bytes.empty())
        problem = "zero bytes";
    return bytes;
}

bool looksTruncated(const std::vector<char>& bytes)
{
    const auto n = bytes.size();
    const auto byteAt = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
    if (n >= 3 && byteAt(0) == 0xFF && byteAt(1) == 0xD8 && byteAt(2) == 0xFF) {
        // Some writers pad after EOI: look for it near the end.
        for (std::size_t i = n - 1; i >= 1 && i + 64 >= n; --i) {
            if (byteAt(i - 1) == 0xFF && byteAt(i) == 0xD9)
                return false;
        }
        return true;
    }
    static const unsigned char pngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n >= 8 && std::equal(pngSignature, pngSignature + 8, bytes.begin(), [](unsigned char a, char b) {
            return a == static_cast<unsigned char>(b);
        })) {
        const std::string tail(bytes.end() - static_cast<std::ptrdiff_t>(std::min<std::size_t>(n, 12)), bytes.end());
        return tail.find("IEND") == std::string::npos;
    }
    return false;
}

bool hasSupportedImageSignature(const std::vector<char>& bytes)
{
    const auto startsWith = [&](std::size_t offset, const char* magic, std::size_t length) {
        return bytes.size() >= offset + length && std::equal(magic, magic + length, bytes.begin() + offset);
    };
    return startsWith(0, "\xFF\xD8\xFF", 3)                              // JPEG
        || startsWith(0, "\x89PNG\r\n\x1A\n", 8)                           // PNG
        || startsWith(0, "BM", 2)                                         // BMP
        || (startsWith(0, "RIFF", 4) && startsWith(8, "WEBP", 4))         // WebP
        || startsWith(0, "II*\0", 4) || startsWith(0, "MM\0*", 4);        // TIFF
}

cv::Mat decodeImageBytes(std::vector<char>& bytes, int flags, std::int64_t maxPixels, std::string& problem)
{
    const std::string tooLarge = "too many pixels (over " + std::to_string(maxPixels) + ")";
    if (!hasSupportedImageSignature(bytes)) {
        problem = "not an image of a supported kind (JPEG, PNG, BMP, WebP, TIFF), or corrupt";
        return {};
    }
    if (looksTruncated(bytes)) {
        problem = "truncated (the file ends before the image does)";
        return {};
    }
    cv::Mat image;
    try {
        image = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data()), flags);
    } catch (const cv::Exception& error) {
        const std::string message = error.what();
        problem = message.find("pixels") != std::string::npos ? tooLarge : "corrupt image";
        return {};
    }
    if (image.empty()) {
        problem = "not an image, or corrupt";
        return {};
    }
    if (static_cast<std::int64_t>(image.cols) * image.rows > maxPixels) {
        problem = tooLarge;
        return {};
    }
    return image;
}

void limitDecodedPixels(std::int64_t maxPixels)
{
    static const bool limitSet = [maxPixels] {
        setenv("OPENCV_IO_MAX_IMAGE_PIXELS", std::to_string(maxPixels).c_str(), /*overwrite=*/0);
        return true;
    }();
    (void)limitSet;
}

bool runInParallel(std::size_t count, const std::function<void(std::size_t)>& work,
                   const std::function<bool(std::size_t, std::size_t)>& progress)
{
    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex progressMutex;
    std::size_t done = 0;
    const int workers = std::max(1, std::min<int>(usableCoreCount(), static_cast<int>(count)));
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
        threads.emplace_back([&] {
            for (std::size_t i = next++; i < count && !stop; i = next++) {
                work(i);
                std::lock_guard<std::mutex> lock(progressMutex);
                ++done;
                if (progress && !stop && !progress(done, count))
                    stop = true;
            }
        });
    }
    for (auto& thread : threads)
        thread.join();
    return stop;
}

} // namespace vitlab
