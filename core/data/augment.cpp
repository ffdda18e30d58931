#include "core/data/augment.h"

#include "core/errors.h"

#include <opencv2/imgproc.hpp>

#include <cmath>

namespace vitlab {

namespace {

/// OpenCV's resize for `from` pixels to `to`: areas averaged when shrinking, else the options'.
int resizeFlag(const AugmentOptions& options, int from, int to)
{
    if (to < from)
        return cv::INTER_AREA;
    if (options.interpolation == "bicubic")
        return cv::INTER_CUBIC;
    if (options.interpolation == "bilinear")
        return cv::INTER_LINEAR;
    throw ConfigError("unknown interpolation \"" + options.interpolation + "\" (bilinear or bicubic)");
}

double uniform(std::mt19937_64& generator, double low, double high)
{
    return std::uniform_real_distribution<double>(low, high)(generator);
}

std::int64_t uniformInt(std::mt19937_64& generator, std::int64_t low, std::int64_t high)
{
    return std::uniform_int_distribution<std::int64_t>(low, high)(generator);
}

double sampleBeta(std::mt19937_64& generator, double alpha)
{
    std::gamma_distribution<double> gamma(alpha, 1.0);
    const double a = gamma(generator);
    const double b = gamma(generator);
    return a + b > 0.0 ? a / (a + b) : 0.5;
}

cv::Mat wrap(const std::uint8_t* image, std::int64_t side, std::int64_t channels)
{
    return cv::Mat(static_cast<int>(side), static_cast<int>(side), CV_8UC(static_cast<int>(channels)),
                   const_cast<std::uint8_t*>(image));
}

/// torchvision's RandomResizedCrop.get_params: ten tries at a random area and aspect ratio, then
/// the centre crop with the ratio clamped.
cv::Rect randomCropBox(int width, int height, const AugmentOptions& options, std::mt19937_64& generator)
{
    const double area = static_cast<double>(width) * height;
    const double logRatioMin = std::log(options.ratioMin);
    const double logRatioMax = std::log(options.ratioMax);
    for (int attempt = 0; attempt < 10; ++attempt) {
        const double targetArea = area * uniform(generator, options.scaleMin, options.scaleMax);
        const double ratio = std::exp(uniform(generator, logRatioMin, logRatioMax));
        const int w = static_cast<int>(std::lround(std::sqrt(targetArea * ratio)));
        const int h = static_cast<int>(std::lround(std::sqrt(targetArea / ratio)));
        if (w > 0 && h > 0 && w <= width && h <= height) {
            const int y = static_cast<int>(uniformInt(generator, 0, height - h));
            const int x = static_cast<int>(uniformInt(generator, 0, width - w));
            return {x, y, w, h};
        }
    }
    const double inRatio = static_cast<double>(width) / height;
    int w = width, h = height;
    if (inRatio < options.ratioMin)
        h = static_cast<int>(std::lround(w / options.ratioMin));
    else if (inRatio > options.ratioMax)
        w = static_cast<int>(std::lround(h * options.ratioMax));
    return {(width - w) / 2, (height - h) / 2, w, h};
}

cv::Mat blend(const cv::Mat& image, const cv::Mat& other, double factor)
{
    cv::Mat out;
    cv::addWeighted(image, factor, other, 1.0 - factor, 0.0, out);
    return out;
}

cv::Mat affine(const cv::Mat& image, const cv::Matx23d& matrix)
{
    cv::Mat out;
    cv::warpAffine(image, out, matrix, image.size(), cv::INTER_NEAREST, cv::BORDER_CONSTANT, cv::Scalar::all(0));
    return out;
}

cv::Mat greyOf(const cv::Mat& image)
{
    if (image.channels() == 1)
        return image.clone();
    cv::Mat grey, back;
    cv::cvtColor(image, grey, cv::COLOR_RGB2GRAY);
    cv::cvtColor(grey, back, cv::COLOR_GRAY2RGB);
    return back;
}

/// One RandAugment operation (torchvision's set of 14) at `level` in [0, 1].
cv::Mat randAugmentOp(const cv::Mat& image, int op, double level, std::mt19937_64& generator)
{
    const double sign = uniform(generator, 0.0, 1.0) < 0.5 ? -1.0 : 1.0;
    const double size = image.cols;
    const cv::Point2f centre(static_cast<float>(size / 2.0), static_cast<float>(image.rows / 2.0));
    switch (op) {
    case 0: return image.clone(); // identity
    case 1: { // autocontrast, per channel
        std::vector<cv::Mat> planes;
        cv::split(image, planes);
        for (auto& plane : planes)
            cv::normalize(plane, plane, 0, 255, cv::NORM_MINMAX);
        cv::Mat out;
        cv::merge(planes, out);
        return out;
    }
    case 2: { // equalize, per channel
        std::vector<cv::Mat> planes;
        cv::split(image, planes);
        for (auto& plane : planes)
            cv::equalizeHist(plane, plane);
        cv::Mat out;
        cv::merge(planes, out);
        return out;
    }
    case 3: return affine(image, cv::getRotationMatrix2D(centre, sign * 30.0 * level, 1.0));
    case 4: { // solarize above a threshold that falls with the level
        const double threshold = 256.0 * (1.0 - level);
        cv::Mat mask, out = image.clone();
        cv::compare(image, cv::Scalar::all(threshold), mask, cv::CMP_GE);
        cv::Mat inverted = cv::Scalar::all(255) - image;
        inverted.copyTo(out, mask);
        return out;
    }
    case 5: { // posterize: keep 8 - 4*level bits
        const int bits = 8 - static_cast<int>(4.0 * level);
        const auto keep = static_cast<std::uint8_t>(0xFF << (8 - bits));
        cv::Mat out;
        cv::bitwise_and(image, cv::Scalar::all(keep), out);
        return out;
    }
    case 6: { // contrast: towards the mean grey
        const cv::Scalar mean = cv::mean(greyOf(image));
        return blend(image, cv::Mat(image.size(), image.type(), cv::Scalar::all(mean[0])), 1.0 + sign * 0.9 * level);
    }
    case 7: return blend(image, cv::Mat::zeros(image.size(), image.type()), 1.0 + sign * 0.9 * level); // brightness
    case 8: return blend(image, greyOf(image), 1.0 + sign * 0.9 * level);                               // colour
    case 9: { // sharpness: away from a smoothed copy
        cv::Mat smooth;
        cv::filter2D(image, smooth, -1, cv::Matx33f(1, 1, 1, 1, 5, 1, 1, 1, 1) * (1.0f / 13.0f));
        return blend(image, smooth, 1.0 + sign * 0.9 * level);
    }
    case 10: return affine(image, cv::Matx23d(1, sign * 0.3 * level, -sign * 0.3 * level * centre.y, 0, 1, 0));
    case 11: return affine(image, cv::Matx23d(1, 0, 0, sign * 0.3 * level, 1, -sign * 0.3 * level * centre.x));
    case 12: return affine(image, cv::Matx23d(1, 0, sign * level * size * 150.0 / 331.0, 0, 1, 0));
    default: return affine(image, cv::Matx23d(1, 0, 0, 0, 1, sign * level * image.rows * 150.0 / 331.0));
    }
}

/// HWC uint8 to CHW float, (x / 255 - mean) / std, in one pass.
void normaliseInto(const cv::Mat& image, const AugmentOptions& options, float* destination)
{
    const int channels = image.channels();
    const std::size_t plane = static_cast<std::size_t>(image.rows) * image.cols;
    float scale[3], offset[3];
    for (int c = 0; c < channels; ++c) {
        scale[c] = static_cast<float>(1.0 / (255.0 * options.std[c]));
        offset[c] = static_cast<float>(-options.mean[c] / options.std[c]);
    }
    for (int y = 0; y < image.rows; ++y) {
        const std::uint8_t* row = image.ptr<std::uint8_t>(y);
        const std::size_t base = static_cast<std::size_t>(y) * image.cols;
        for (int x = 0; x < image.cols; ++x)
            for (int c = 0; c < channels; ++c)
                destination[c * plane + base + x] = row[x * channels + c] * scale[c] + offset[c];
    }
}

torch::Tensor viewTensor(std::int64_t channels, const AugmentOptions& options)
{
    return torch::empty({channels, options.outputSize, options.outputSize}, torch::kFloat32);
}

} // namespace

std::mt19937_64 sampleGenerator(std::uint64_t seed, std::int64_t epoch, std::size_t sample)
{
    std::seed_seq sequence{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                           static_cast<std::uint32_t>(epoch), static_cast<std::uint32_t>(sample),
                           static_cast<std::uint32_t>(static_cast<std::uint64_t>(sample) >> 32)};
    return std::mt19937_64(sequence);
}

torch::Tensor augmentForTraining(const std::uint8_t* image, std::int64_t side, std::int64_t channels,
                                 const AugmentOptions& options, std::mt19937_64& generator)
{
    auto view = viewTensor(channels, options);
    augmentForTrainingInto(image, side, channels, options, generator, view.data_ptr<float>());
    return view;
}

void augmentForTrainingInto(const std::uint8_t* image, std::int64_t side, std::int64_t channels,
                            const AugmentOptions& options, std::mt19937_64& generator, float* destination)
{
    const cv::Mat source = wrap(image, side, channels);
    const cv::Rect box = randomCropBox(source.cols, source.rows, options, generator);
    const int out = static_cast<int>(options.outputSize);
    cv::Mat view;
    cv::resize(source(box), view, {out, out}, 0, 0, resizeFlag(options, box.width, out));
    if (options.horizontalFlip && uniform(generator, 0.0, 1.0) < 0.5)
        cv::flip(view, view, 1);
    const double level = std::clamp(options.randAugmentMagnitude, 0, 30) / 30.0;
    for (int i = 0; i < options.randAugmentOps; ++i)
        view = randAugmentOp(view, static_cast<int>(uniformInt(generator, 0, 13)), level, generator);
    normaliseInto(view, options, destination);
}

torch::Tensor prepareForEvaluation(const std::uint8_t* image, std::int64_t side, std::int64_t channels,
                                   const AugmentOptions& options)
{
    auto view = viewTensor(channels, options);
    prepareForEvaluationInto(image, side, channels, options, view.data_ptr<float>());
    return view;
}

void prepareForEvaluationInto(const std::uint8_t* image, std::int64_t side, std::int64_t channels,
                              const AugmentOptions& options, float* destination)
{
    const cv::Mat source = wrap(image, side, channels);
    const int out = static_cast<int>(options.outputSize);
    const int resized = std::max(out, static_cast<int>(std::floor(out / options.cropPct)));
    cv::Mat scaled;
    cv::resize(source, scaled, {resized, resized}, 0, 0, resizeFlag(options, static_cast<int>(side), resized));
    const int offset = (resized - out) / 2;
    normaliseInto(scaled(cv::Rect(offset, offset, out, out)), options, destination);
}

torch::Tensor mixBatch(torch::Tensor& images, const torch::Tensor& labels, std::int64_t classes, double mixupAlpha,
                       double cutmixAlpha, double cutmixShare, double labelSmoothing, std::mt19937_64& generator)
{
    if (images.dim() != 4 || labels.dim() != 1 || labels.size(0) != images.size(0))
        throw ShapeError("mixing needs images (N, C, H, W) and N labels");
    auto targets = torch::one_hot(labels.to(torch::kLong), classes).to(torch::kFloat32);
    targets = targets * (1.0 - labelSmoothing) + labelSmoothing / static_cast<double>(classes);
    const bool cutmix = cutmixAlpha > 0.0 && (mixupAlpha <= 0.0 || uniform(generator, 0.0, 1.0) < cutmixShare);
    if (!cutmix && mixupAlpha <= 0.0)
        return targets;
    const auto partner = images.flip(0);
    double lambda = sampleBeta(generator, cutmix ? cutmixAlpha : mixupAlpha);
    if (cutmix) {
        const auto height = images.size(2), width = images.size(3);
        const double cut = std::sqrt(1.0 - lambda);
        const auto cutH = static_cast<std::int64_t>(height * cut), cutW = static_cast<std::int64_t>(width * cut);
        const auto cy = uniformInt(generator, 0, height - 1), cx = uniformInt(generator, 0, width - 1);
        const auto y0 = std::clamp<std::int64_t>(cy - cutH / 2, 0, height), y1 = std::clamp<std::int64_t>(cy + cutH / 2, 0, height);
        const auto x0 = std::clamp<std::int64_t>(cx - cutW / 2, 0, width), x1 = std::clamp<std::int64_t>(cx + cutW / 2, 0, width);
        const auto pasted = partner.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).clone();
        images.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).copy_(pasted);
        lambda = 1.0 - static_cast<double>((y1 - y0) * (x1 - x0)) / static_cast<double>(height * width);
    } else {
        images.mul_(lambda).add_(partner * (1.0 - lambda));
    }
    return targets * lambda + targets.flip(0) * (1.0 - lambda);
}

} // namespace vitlab
