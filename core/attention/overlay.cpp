#include "core/attention/overlay.h"

#include "core/errors.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace vitlab {

cv::Mat colouredMap(const std::vector<float>& map, int gridHeight, int gridWidth, cv::Size size,
                    const OverlayOptions& options)
{
    if (gridHeight < 1 || gridWidth < 1 || map.size() != static_cast<std::size_t>(gridHeight) * static_cast<std::size_t>(gridWidth))
        throw ShapeError("the map does not have grid_h x grid_w values");
    cv::Mat values(gridHeight, gridWidth, CV_32F, const_cast<float*>(map.data()));
    cv::Mat scaled;
    values.convertTo(scaled, CV_8U, 255.0);
    cv::Mat resized;
    cv::resize(scaled, resized, size, 0, 0, options.smooth ? cv::INTER_LINEAR : cv::INTER_NEAREST);
    cv::Mat coloured;
    cv::applyColorMap(resized, coloured, options.colourMap);
    cv::cvtColor(coloured, coloured, cv::COLOR_BGR2RGB);
    return coloured;
}

cv::Mat overlayMap(const cv::Mat& image, const std::vector<float>& map, int gridHeight, int gridWidth,
                   const OverlayOptions& options)
{
    if (image.type() != CV_8UC3 || image.empty())
        throw ShapeError("an overlay needs an 8-bit RGB image");
    const auto coloured = colouredMap(map, gridHeight, gridWidth, image.size(), options);
    const double opacity = std::clamp(options.opacity, 0.0, 1.0);
    cv::Mat blended;
    cv::addWeighted(image, 1.0 - opacity, coloured, opacity, 0.0, blended);
    return blended;
}

void saveRgbPng(const std::filesystem::path& path, const cv::Mat& rgb)
{
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    bool written = false;
    try {
        written = cv::imwrite(path.string(), bgr);
    } catch (const cv::Exception&) {
        written = false;
    }
    if (!written)
        throw IoError("cannot write the image " + path.string());
}

} // namespace vitlab
