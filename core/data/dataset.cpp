#include "core/data/dataset.h"

#include "core/data/idx.h"
#include "core/data/image_decode.h"
#include "core/errors.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>

namespace vitlab {

namespace {

constexpr const char* kIdxTrainTag = "#train:";
constexpr const char* kIdxTestTag = "#t10k:";

std::function<bool(std::size_t, std::size_t)> stageProgress(const DatasetOptions& options, const std::string& stage)
{
    if (!options.progress)
        return {};
    return [&options, stage](std::size_t done, std::size_t total) { return options.progress(stage, done, total); };
}

} // namespace

std::int64_t storageSideFor(std::int64_t trainingSize)
{
    return std::max<std::int64_t>(trainingSize + 4, std::lround(static_cast<double>(trainingSize) * 1.15));
}

Dataset Dataset::open(const std::string& request, const DatasetOptions& options)
{
    Dataset dataset;
    dataset.m_location = resolveDatasetLocation(request);
    ImageCacheOptions cacheOptions;
    cacheOptions.side = options.storageSide;
    cacheOptions.channels = options.channels;
    cacheOptions.memoryCapBytes = options.memoryCapBytes;
    cacheOptions.spillDirectory = options.spillDirectory;
    cacheOptions.progress = stageProgress(options, "Decoding images");

    if (isIdxFolder(dataset.m_location.directory)) {
        if (options.progress && !options.progress("Reading IDX files", 0, 1)) {
            dataset.m_cancelled = true;
            return dataset;
        }
        auto idx = loadIdxFolder(dataset.m_location.directory,
                                 dataset.m_location.builtin && request == kFashionMnistName);
        dataset.m_classNames = idx.classNames;
        dataset.m_report.root = dataset.m_location.directory;
        dataset.m_report.explicitSplits = true;
        for (const auto& name : idx.classNames)
            dataset.m_report.classes.push_back({name});
        // One cache for both splits: the training images first, then the test images.
        IdxImages all = std::move(idx.trainImages);
        all.pixels.insert(all.pixels.end(), idx.testImages.pixels.begin(), idx.testImages.pixels.end());
        const auto trainCount = static_cast<std::size_t>(all.count);
        all.count += idx.testImages.count;
        dataset.m_images = ImageCache::fromIdx(all, cacheOptions);
        dataset.m_cancelled = dataset.m_images.cancelled();
        for (const auto label : idx.trainLabels)
            dataset.m_labels.push_back(label);
        for (const auto label : idx.testLabels)
            dataset.m_labels.push_back(label);
        for (std::size_t i = 0; i < dataset.m_labels.size(); ++i) {
            const bool train = i < trainCount;
            (train ? dataset.m_train : dataset.m_validation).push_back(i);
            auto& counts = dataset.m_report.classes[static_cast<std::size_t>(dataset.m_labels[i])];
            ++(train ? counts.train : counts.validation);
        }
        dataset.m_idxTrainCount = trainCount;
        dataset.m_report.minWidth = dataset.m_report.maxWidth = all.cols;
        dataset.m_report.minHeight = dataset.m_report.maxHeight = all.rows;
        dataset.m_report.meanWidth = static_cast<double>(all.cols);
        dataset.m_report.meanHeight = static_cast<double>(all.rows);
        return dataset;
    }

    ScanOptions scan;
    scan.validationFraction = options.validationFraction;
    scan.seed = options.splitSeed;
    // The cache decodes (and so checks) every image once; the scan only lists and hashes.
    scan.checkImages = false;
    scan.progress = stageProgress(options, "Scanning the folder");
    dataset.m_report = scanImageFolder(dataset.m_location.directory, scan);
    if (dataset.m_report.cancelled) {
        dataset.m_cancelled = true;
        return dataset;
    }
    dataset.m_classNames = dataset.m_report.classNames();
    dataset.m_images = ImageCache::fromFiles(dataset.m_report.files, cacheOptions);
    dataset.m_cancelled = dataset.m_images.cancelled();
    std::map<std::string, std::string> failed;
    for (const auto& failure : dataset.m_images.failures()) {
        failed.emplace(failure.path, failure.reason);
        dataset.m_report.skipped.push_back(failure);
    }
    for (std::size_t i = 0; i < dataset.m_report.files.size(); ++i) {
        const auto& file = dataset.m_report.files[i];
        dataset.m_labels.push_back(file.label);
        dataset.m_sources.push_back(file.path.string());
        if (failed.count(file.path.string()) > 0) {
            // Left out of both splits; the slot in the cache stays, black and unused.
            auto& counts = dataset.m_report.classes[static_cast<std::size_t>(file.label)];
            --(file.split == Split::Train ? counts.train : counts.validation);
            continue;
        }
        (file.split == Split::Train ? dataset.m_train : dataset.m_validation).push_back(i);
    }
    if (dataset.m_train.empty() && !dataset.m_cancelled)
        throw ConfigError("no image of " + dataset.m_location.directory.string() + " could be decoded for training");
    return dataset;
}

std::string Dataset::source(std::size_t sample) const
{
    if (sample < m_sources.size())
        return m_sources[sample];
    const auto folder = m_location.directory.string();
    return sample < m_idxTrainCount ? folder + kIdxTrainTag + std::to_string(sample)
                                    : folder + kIdxTestTag + std::to_string(sample - m_idxTrainCount);
}

std::vector<std::int64_t> Dataset::trainClassCounts() const
{
    std::vector<std::int64_t> counts(m_classNames.size(), 0);
    for (const auto sample : m_train)
        ++counts[static_cast<std::size_t>(m_labels[sample])];
    return counts;
}

namespace {

/// The IDX images file behind a source, kept after the first read: the app shows many images of
/// the same file one after another.
std::shared_ptr<const IdxImages> idxImagesFor(const std::filesystem::path& file)
{
    static std::mutex mutex;
    static std::map<std::filesystem::path, std::shared_ptr<const IdxImages>> loaded;
    std::lock_guard<std::mutex> lock(mutex);
    auto it = loaded.find(file);
    if (it == loaded.end()) {
        if (loaded.size() >= 2)
            loaded.clear();
        it = loaded.emplace(file, std::make_shared<const IdxImages>(readIdxImages(file))).first;
    }
    return it->second;
}

std::filesystem::path idxImagesFile(const std::filesystem::path& folder, const std::string& prefix)
{
    for (const char* suffix : {"-images-idx3-ubyte.gz", "-images-idx3-ubyte"}) {
        const auto path = folder / (prefix + suffix);
        if (std::filesystem::exists(path))
            return path;
    }
    throw IoError("the IDX images file " + prefix + "-images-idx3-ubyte[.gz] is missing in " + folder.string());
}

DecodedImage fromMat(const cv::Mat& image)
{
    DecodedImage decoded;
    decoded.width = image.cols;
    decoded.height = image.rows;
    decoded.channels = image.channels();
    const cv::Mat continuous = image.isContinuous() ? image : image.clone();
    decoded.pixels.assign(continuous.data, continuous.data + continuous.total() * continuous.elemSize());
    return decoded;
}

} // namespace

DecodedImage loadSourceImage(const std::string& source, int channels)
{
    if (channels != 1 && channels != 3)
        throw ConfigError("images are loaded with 1 or 3 channels");
    for (const auto& [tag, prefix] : {std::pair{kIdxTrainTag, "train"}, std::pair{kIdxTestTag, "t10k"}}) {
        const auto at = source.rfind(tag);
        if (at == std::string::npos)
            continue;
        const auto indexText = source.substr(at + std::char_traits<char>::length(tag));
        if (indexText.empty() || indexText.find_first_not_of("0123456789") != std::string::npos)
            break; // a file whose name happens to contain the tag
        const auto file = idxImagesFor(idxImagesFile(source.substr(0, at), prefix));
        const auto& images = *file;
        const auto index = std::stoll(indexText);
        if (index >= images.count)
            throw FormatError(source + " names image " + indexText + " of an IDX file with "
                              + std::to_string(images.count));
        const auto pixels = static_cast<std::size_t>(images.rows * images.cols);
        const cv::Mat grey(static_cast<int>(images.rows), static_cast<int>(images.cols), CV_8UC1,
                           const_cast<std::uint8_t*>(images.pixels.data() + static_cast<std::size_t>(index) * pixels));
        if (channels == 1)
            return fromMat(grey);
        cv::Mat rgb;
        cv::cvtColor(grey, rgb, cv::COLOR_GRAY2RGB);
        return fromMat(rgb);
    }
    std::string problem;
    auto bytes = readFileBytes(source, problem);
    cv::Mat image;
    if (problem.empty())
        image = decodeImageBytes(bytes, channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR,
                                 std::int64_t{100} * 1000 * 1000, problem);
    if (!problem.empty())
        throw FormatError(source + ": " + problem);
    if (image.channels() == 3)
        cv::cvtColor(image, image, cv::COLOR_BGR2RGB);
    return fromMat(image);
}

} // namespace vitlab
