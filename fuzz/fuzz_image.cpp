// libFuzzer target for the checks every image passes before it is used: truncation on the bytes,
// then decoding under the pixel guard. An input must come back either as a decoded image within
// the guard or as an empty image with a reason; a crash or a sanitizer report is a finding.
// (OpenCV's decoders are Debian's, not instrumented: the fuzzer is guided by our own code.)
#include "core/data/image_decode.h"

#include <opencv2/imgcodecs.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

constexpr std::int64_t kMaxPixels = 1 << 20;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    for (const int flags : {cv::IMREAD_UNCHANGED, cv::IMREAD_COLOR}) {
        std::vector<char> bytes(data, data + size);
        std::string problem;
        const cv::Mat image = vitlab::decodeImageBytes(bytes, flags, kMaxPixels, problem);
        if (image.empty() == problem.empty())
            __builtin_trap(); // an image with a problem, or neither
        if (!image.empty() && static_cast<std::int64_t>(image.cols) * image.rows > kMaxPixels)
            __builtin_trap();
        // What decodes has the size its header declared (turned by EXIF with IMREAD_COLOR): the
        // pixel guard is applied to that size.
        const auto header = vitlab::readImageHeader(bytes);
        const bool same = header
            && ((header->width == image.cols && header->height == image.rows)
                || (header->width == image.rows && header->height == image.cols));
        if (!image.empty() && !same)
            __builtin_trap();
    }
    return 0;
}
