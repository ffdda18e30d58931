#include "core/data/image_decode.h"

#include "core/runtime.h"

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
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

namespace {

/// Little- and big-endian unsigned reads; 0 past the end (a header that short is refused anyway).
std::uint32_t readUnsigned(const std::vector<char>& bytes, std::size_t offset, int size, bool bigEndian)
{
    if (offset + static_cast<std::size_t>(size) > bytes.size())
        return 0;
    std::uint32_t value = 0;
    for (int i = 0; i < size; ++i) {
        const auto byte = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[offset + static_cast<std::size_t>(i)]));
        value |= byte << (8 * (bigEndian ? size - 1 - i : i));
    }
    return value;
}

bool startsWith(const std::vector<char>& bytes, std::size_t offset, const char* magic, std::size_t length)
{
    return bytes.size() >= offset + length && std::equal(magic, magic + length, bytes.begin() + static_cast<std::ptrdiff_t>(offset));
}

std::optional<ImageHeader> jpegHeader(const std::vector<char>& bytes)
{
    // Markers from SOI on; the first start-of-frame (SOF0-15 but DHT, JPG and DAC) has the size.
    std::size_t at = 2;
    while (at + 4 <= bytes.size()) {
        if (static_cast<unsigned char>(bytes[at]) != 0xFF)
            return std::nullopt;
        const auto marker = static_cast<unsigned char>(bytes[at + 1]);
        if (marker == 0xFF) { // fill byte
            ++at;
            continue;
        }
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { // no length
            at += 2;
            continue;
        }
        const auto length = readUnsigned(bytes, at + 2, 2, true);
        if (length < 2)
            return std::nullopt;
        if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
            if (at + 9 > bytes.size())
                return std::nullopt;
            return ImageHeader{readUnsigned(bytes, at + 7, 2, true), readUnsigned(bytes, at + 5, 2, true)};
        }
        if (marker == 0xDA || marker == 0xD9) // scan data or the end before any frame
            return std::nullopt;
        at += 2 + length;
    }
    return std::nullopt;
}

std::optional<ImageHeader> tiffHeader(const std::vector<char>& bytes)
{
    const bool big = bytes[0] == 'M';
    const auto ifd = readUnsigned(bytes, 4, 4, big);
    const auto entries = readUnsigned(bytes, ifd, 2, big);
    std::int64_t width = 0, height = 0;
    for (std::uint32_t i = 0; i < entries; ++i) {
        const std::size_t entry = ifd + 2 + 12 * static_cast<std::size_t>(i);
        if (entry + 12 > bytes.size())
            return std::nullopt;
        const auto tag = readUnsigned(bytes, entry, 2, big);
        const auto type = readUnsigned(bytes, entry + 2, 2, big);
        const auto value = type == 3 ? readUnsigned(bytes, entry + 8, 2, big) : readUnsigned(bytes, entry + 8, 4, big);
        // A repeated tag counts once, the first time, as libtiff reads it.
        if (tag == 256 && width == 0)
            width = value;
        else if (tag == 257 && height == 0)
            height = value;
    }
    if (width == 0 || height == 0)
        return std::nullopt;
    return ImageHeader{width, height};
}

std::optional<ImageHeader> webpHeader(const std::vector<char>& bytes)
{
    if (startsWith(bytes, 12, "VP8 ", 4) && startsWith(bytes, 23, "\x9D\x01\x2A", 3))
        return ImageHeader{readUnsigned(bytes, 26, 2, false) & 0x3FFF, readUnsigned(bytes, 28, 2, false) & 0x3FFF};
    if (startsWith(bytes, 12, "VP8L", 4) && bytes.size() >= 25 && static_cast<unsigned char>(bytes[20]) == 0x2F) {
        const auto bits = readUnsigned(bytes, 21, 4, false);
        return ImageHeader{(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
    }
    if (startsWith(bytes, 12, "VP8X", 4) && bytes.size() >= 30)
        return ImageHeader{readUnsigned(bytes, 24, 3, false) + 1, readUnsigned(bytes, 27, 3, false) + 1};
    return std::nullopt;
}

} // namespace

std::optional<ImageHeader> readImageHeader(const std::vector<char>& bytes)
{
    std::optional<ImageHeader> header;
    if (startsWith(bytes, 0, "\xFF\xD8\xFF", 3)) {
        header = jpegHeader(bytes);
    } else if (startsWith(bytes, 0, "\x89PNG\r\n\x1A\n", 8)) {
        if (startsWith(bytes, 12, "IHDR", 4))
            header = ImageHeader{readUnsigned(bytes, 16, 4, true), readUnsigned(bytes, 20, 4, true)};
    } else if (startsWith(bytes, 0, "BM", 2)) {
        // BITMAPCOREHEADER has 16-bit sizes; the later headers 32-bit ones, height negative top-down.
        if (readUnsigned(bytes, 14, 4, false) == 12) {
            header = ImageHeader{readUnsigned(bytes, 18, 2, false), readUnsigned(bytes, 20, 2, false)};
        } else if (bytes.size() >= 26) {
            const auto width = static_cast<std::int32_t>(readUnsigned(bytes, 18, 4, false));
            const auto height = static_cast<std::int32_t>(readUnsigned(bytes, 22, 4, false));
            header = ImageHeader{std::abs(static_cast<std::int64_t>(width)), std::abs(static_cast<std::int64_t>(height))};
        }
    } else if (startsWith(bytes, 0, "RIFF", 4) && startsWith(bytes, 8, "WEBP", 4)) {
        header = webpHeader(bytes);
    } else if (startsWith(bytes, 0, "II*\0", 4) || startsWith(bytes, 0, "MM\0*", 4)) {
        header = tiffHeader(bytes);
    }
    if (header && (header->width <= 0 || header->height <= 0))
        return std::nullopt;
    return header;
}

cv::Mat decodeImageBytes(std::vector<char>& bytes, int flags, std::int64_t maxPixels, std::string& problem)
{
    const std::string tooLarge = "too many pixels (over " + std::to_string(maxPixels) + ")";
    // The size comes from the header before anything is decoded: OpenCV's own pixel limit is read
    // once, when the library loads, so it cannot follow `maxPixels`.
    const auto header = readImageHeader(bytes);
    if (!header) {
        problem = "not an image of a supported kind (JPEG, PNG, BMP, WebP, TIFF), or its header is corrupt";
        return {};
    }
    if (header->width > maxPixels / header->height) {
        problem = tooLarge;
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

bool runInParallel(std::size_t count, const std::function<void(std::size_t)>& work,
                   const std::function<bool(std::size_t, std::size_t)>& progress)
{
    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex progressMutex;
    std::size_t done = 0;
    // Reported (and asked whether to go on) every 50 ms and at the end: tens of thousands of
    // reports per second would cost their receivers more than the work (the app's UI thread).
    using Clock = std::chrono::steady_clock;
    auto lastReport = Clock::now() - std::chrono::seconds(1);
    const int workers = std::max(1, std::min<int>(usableCoreCount(), static_cast<int>(count)));
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
        threads.emplace_back([&] {
            for (std::size_t i = next++; i < count && !stop; i = next++) {
                work(i);
                std::lock_guard<std::mutex> lock(progressMutex);
                ++done;
                if (!progress || stop)
                    continue;
                const auto now = Clock::now();
                if (done != count && now - lastReport < std::chrono::milliseconds(50))
                    continue;
                lastReport = now;
                if (!progress(done, count))
                    stop = true;
            }
        });
    }
    for (auto& thread : threads)
        thread.join();
    return stop;
}

} // namespace vitlab
