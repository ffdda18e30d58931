#pragma once

// A map over the token grid laid over the image the model saw: resized, coloured, blended.
// OpenCV only (no torch), so the app draws the same overlays as the CLI.
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <vector>

namespace vitlab {

struct OverlayOptions {
    /// Share of the coloured map in the blend, 0 (image only) to 1 (map only).
    double opacity = 0.5;
    /// One of OpenCV's colour maps (cv::COLORMAP_*).
    int colourMap = cv::COLORMAP_JET;
    /// The map is resized with bilinear interpolation (smooth) or kept blocky (nearest).
    bool smooth = true;
};

/// `map` (grid_h x grid_w values in [0, 1], row-major) resized to `size` and coloured: RGB.
cv::Mat colouredMap(const std::vector<float>& map, int gridHeight, int gridWidth, cv::Size size,
                    const OverlayOptions& options = {});

/// `map` holds grid_h x grid_w values in [0, 1], row-major. `image` is 8-bit RGB (CV_8UC3).
/// Returns the blended RGB image at the image's size.
cv::Mat overlayMap(const cv::Mat& image, const std::vector<float>& map, int gridHeight, int gridWidth,
                   const OverlayOptions& options = {});

/// Writes an RGB image as a PNG. Throws IoError naming the path when it cannot.
void saveRgbPng(const std::filesystem::path& path, const cv::Mat& rgb);

} // namespace vitlab
