#pragma once

// A dataset ready for training: the folder scanned (or the IDX files read), every usable image
// decoded once into the cache, and the samples of each split. What the trainer, the evaluator
// and the app share; free of torch.
#include "core/data/dataset_location.h"
#include "core/data/image_cache.h"
#include "core/data/image_folder.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vitlab {

struct DatasetOptions {
    /// Side of the cached squares: a little above the training size, so random crops keep detail.
    std::int64_t storageSide = 32;
    /// 1 (grey) or 3 (RGB): what the model reads.
    std::int64_t channels = 3;
    double validationFraction = 0.2;
    std::uint64_t splitSeed = 0;
    std::uint64_t memoryCapBytes = std::uint64_t{4} << 30;
    std::string spillDirectory;
    /// (stage, done, total) as work progresses, from worker threads one call at a time;
    /// returning false cancels.
    std::function<bool(const std::string& stage, std::size_t done, std::size_t total)> progress;
};

/// The storage side for a training size: 15% above it (at least 4 pixels), so that random crops
/// of the cached square keep their detail.
std::int64_t storageSideFor(std::int64_t trainingSize);

class Dataset {
public:
    /// Opens "fashion-mnist", an IDX folder or an image folder. Throws IoError or ConfigError (fewer
    /// than two classes) with a message for the user; bad files are skipped and reported instead.
    /// When cancelled through `progress`, cancelled() is true and the dataset is incomplete.
    static Dataset open(const std::string& request, const DatasetOptions& options);

    const DatasetLocation& location() const { return m_location; }
    /// The scan report; for IDX sets only the classes, counts and image size.
    const ScanReport& report() const { return m_report; }
    const std::vector<std::string>& classNames() const { return m_classNames; }
    const ImageCache& images() const { return m_images; }
    /// The class of every cached image.
    const std::vector<std::int64_t>& labels() const { return m_labels; }
    const std::vector<std::size_t>& trainSamples() const { return m_train; }
    const std::vector<std::size_t>& validationSamples() const { return m_validation; }
    /// Where a cached image comes from: its file path, or "<folder>#train:<n>" / "<folder>#t10k:<n>"
    /// for the n-th image of an IDX file.
    std::string source(std::size_t sample) const;
    /// Training images per class, for class weights.
    std::vector<std::int64_t> trainClassCounts() const;
    bool cancelled() const { return m_cancelled; }

private:
    Dataset() = default;

    DatasetLocation m_location;
    ScanReport m_report;
    std::vector<std::string> m_classNames;
    ImageCache m_images;
    std::vector<std::int64_t> m_labels;
    std::vector<std::string> m_sources;
    std::vector<std::size_t> m_train;
    std::vector<std::size_t> m_validation;
    /// IDX sets: the cache holds this many training images, then the test images.
    std::size_t m_idxTrainCount = 0;
    bool m_cancelled = false;
};

/// The image behind a Dataset::source() string, decoded to RGB or grey (channels 1 or 3) at its
/// own size, row-major HWC. For IDX sources only the named image is used. Throws IoError or
/// FormatError with the reason when it cannot be read.
struct DecodedImage {
    int width = 0;
    int height = 0;
    int channels = 0;
    std::vector<std::uint8_t> pixels;
};
DecodedImage loadSourceImage(const std::string& source, int channels);

} // namespace vitlab
