#pragma once

// Image folders made up for tests: each class is a square of its own colour at a random place on
// a grey, noisy background, so a tiny model learns them in seconds and we know where the
// evidence is.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <algorithm>
#include <random>
#include <string>

namespace vitlab::test {

/// The colour (RGB) of class `label`'s square: primaries first, then their mixtures.
inline cv::Vec3b patternColour(int label)
{
    static const cv::Vec3b colours[] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0}, {255, 0, 255}, {0, 255, 255}};
    return colours[label % 6];
}

/// One image of class `label`: grey noise in [0, 80) and a square of side size/4 in the class's
/// colour at a random place, returned in `corner` when given. BGR, as OpenCV writes it.
inline cv::Mat patternImage(int label, int size, std::mt19937& random, cv::Point* corner = nullptr)
{
    std::uniform_int_distribution<int> noise(0, 79);
    cv::Mat image(size, size, CV_8UC3);
    for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
            const auto grey = static_cast<uchar>(noise(random));
            image.at<cv::Vec3b>(y, x) = cv::Vec3b(grey, grey, grey);
        }
    const int side = std::max(1, size / 4);
    std::uniform_int_distribution<int> place(0, size - side);
    const cv::Point at(place(random), place(random));
    const auto rgb = patternColour(label);
    image(cv::Rect(at.x, at.y, side, side)).setTo(cv::Scalar(rgb[2], rgb[1], rgb[0]));
    if (corner)
        *corner = at;
    return image;
}

/// Writes `perClass` PNGs per class as root/<class_k>/<n>.png, or, with `splits`, the same
/// number into root/train/<class_k>/ and root/val/<class_k>/. Returns false if a write fails.
inline bool writePatternFolder(const std::filesystem::path& root, int classes, int perClass, int size,
                               bool splits = false, unsigned seed = 1)
{
    std::mt19937 random(seed);
    for (const char* split : {"train", "val"}) {
        const auto base = splits ? root / split : root;
        for (int label = 0; label < classes; ++label) {
            const auto folder = base / ("class_" + std::to_string(label));
            std::filesystem::create_directories(folder);
            for (int n = 0; n < perClass; ++n) {
                if (!cv::imwrite((folder / (std::to_string(n) + ".png")).string(), patternImage(label, size, random)))
                    return false;
            }
        }
        if (!splits)
            break;
    }
    return true;
}

} // namespace vitlab::test
