#include "app/cli/commands.h"

#include "core/data/dataset_location.h"
#include "core/data/idx.h"
#include "core/data/image_cache.h"
#include "core/data/image_folder.h"
#include "core/data/loader.h"
#include "core/models/registry.h"
#include "core/train/execution.h"
#include "core/train/step_timing.h"

#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <numeric>

namespace vitlab::cli {

namespace {

struct BenchDataOptions {
    std::string data;
    std::int64_t imageSize = 224;
    std::int64_t batch = 64;
    int epochs = 3;
    bool json = false;
};

double secondsSince(std::chrono::steady_clock::time_point start)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int runBenchData(const BenchDataOptions& options)
{
    // Epoch 1 pays for everything a first epoch needs: listing, decoding into the cache, batches.
    const auto start = std::chrono::steady_clock::now();
    const auto location = resolveDatasetLocation(options.data);
    ImageCacheOptions cacheOptions;
    // Stored a little above the training size, so random crops keep their detail.
    cacheOptions.side = static_cast<std::int64_t>(std::lround(static_cast<double>(options.imageSize) * 1.15));
    std::vector<std::int64_t> labels;
    std::unique_ptr<ImageCache> cache;
    if (isIdxFolder(location.directory)) {
        const auto idx = loadIdxFolder(location.directory, location.builtin);
        cacheOptions.channels = 1;
        cache = std::make_unique<ImageCache>(ImageCache::fromIdx(idx.trainImages, cacheOptions));
        labels.assign(idx.trainLabels.begin(), idx.trainLabels.end());
    } else {
        ScanOptions scan;
        scan.checkImages = false; // the cache decodes (and checks) each image once
        scan.validationFraction = 0.0;
        const auto report = scanImageFolder(location.directory, scan);
        cache = std::make_unique<ImageCache>(ImageCache::fromFiles(report.files, cacheOptions));
        for (const auto& file : report.files)
            labels.push_back(file.label);
    }
    std::vector<std::size_t> samples(cache->size());
    std::iota(samples.begin(), samples.end(), 0);

    LoaderOptions loaderOptions;
    loaderOptions.batchSize = options.batch;
    loaderOptions.augment.outputSize = options.imageSize;
    BatchLoader loader(*cache, labels, samples, loaderOptions);

    nlohmann::json epochs = nlohmann::json::array();
    auto epochStart = start;
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
        if (epoch > 1)
            epochStart = std::chrono::steady_clock::now();
        std::size_t images = 0;
        loader.startEpoch(epoch);
        while (auto batch = loader.next())
            images += batch->samples.size();
        const double rate = static_cast<double>(images) / secondsSince(epochStart);
        epochs.push_back({{"epoch", epoch}, {"images", images}, {"images_per_s", rate}});
        if (!options.json)
            std::printf("epoch %d: %zu images, %.0f images/s\n", epoch, images, rate);
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const double cachePer1000 = static_cast<double>(cache->bytesPerImage()) * 1000.0 / (1024.0 * 1024.0);
    const double peakMb = static_cast<double>(usage.ru_maxrss) / 1024.0;
    if (options.json) {
        std::cout << nlohmann::json{{"epochs", epochs},
                                    {"cache_mb_per_1000_images", cachePer1000},
                                    {"cache_side", cache->side()},
                                    {"peak_rss_mb", peakMb}}
                         .dump(2)
                  << "\n";
    } else {
        std::printf("cache: %.1f MB per 1000 images (%lldx%lld), peak resident memory %.0f MB\n", cachePer1000,
                    static_cast<long long>(cache->side()), static_cast<long long>(cache->side()), peakMb);
    }
    return 0;
}

struct BenchTrainOptions {
    std::string model;
    std::int64_t imageSize = 0;
    std::int64_t batch = 32;
    std::string precision = "auto";
    int steps = 10;
    std::string device = "cpu";
    bool json = false;
};

/// Forward, backward and an AdamW step on random images: the trainer's own step, without data.
int runBenchTrain(const BenchTrainOptions& options)
{
    auto spec = resolveModelSpec(options.model);
    if (options.imageSize > 0)
        spec = withImageSize(spec, options.imageSize, options.imageSize);
    const auto device = resolveDevice(options.device);
    const auto precision = resolvePrecision(parsePrecision(options.precision), device);
    const double seconds = secondsOfTrainingSteps(spec, options.batch, options.steps, precision, device);
    const double rate = static_cast<double>(options.batch * options.steps) / seconds;
    if (options.json)
        std::cout << nlohmann::json{{"model", spec.name.empty() ? options.model : spec.name},
                                    {"batch", options.batch},
                                    {"precision", precision.name()},
                                    {"steps", options.steps},
                                    {"ms_per_step", 1e3 * seconds / options.steps},
                                    {"images_per_s", rate}}
                         .dump(2)
                  << "\n";
    else
        std::printf("%s, batch %lld, %s: %.1f ms per step, %.1f images/s\n", options.model.c_str(),
                    static_cast<long long>(options.batch), precision.name().c_str(), 1e3 * seconds / options.steps,
                    rate);
    return 0;
}

struct BenchInferOptions {
    std::string model;
    std::int64_t imageSize = 0;
    std::int64_t batch = 1;
    std::string precision = "auto";
    int iterations = 20;
    std::string device = "cpu";
    bool json = false;
};

/// Eval-mode forward passes on random images, as the predictor runs them (every dropped image).
int runBenchInfer(const BenchInferOptions& options)
{
    auto spec = resolveModelSpec(options.model);
    if (options.imageSize > 0)
        spec = withImageSize(spec, options.imageSize, options.imageSize);
    const auto device = resolveDevice(options.device);
    const auto precision = inferencePrecision(parsePrecision(options.precision), device);
    const double seconds = secondsOfInference(spec, options.batch, options.iterations, precision, device);
    const double msPerBatch = 1e3 * seconds / options.iterations;
    const double rate = static_cast<double>(options.batch * options.iterations) / seconds;
    if (options.json)
        std::cout << nlohmann::json{{"model", spec.name.empty() ? options.model : spec.name},
                                    {"batch", options.batch},
                                    {"precision", precision.name()},
                                    {"iterations", options.iterations},
                                    {"ms_per_batch", msPerBatch},
                                    {"images_per_s", rate}}
                         .dump(2)
                  << "\n";
    else
        std::printf("%s, batch %lld, %s: %.2f ms per batch, %.1f images/s\n", options.model.c_str(),
                    static_cast<long long>(options.batch), precision.name().c_str(), msPerBatch, rate);
    return 0;
}

} // namespace

Command addBenchCommand(CLI::App& parent)
{
    auto dataOptions = std::make_shared<BenchDataOptions>();
    auto trainOptions = std::make_shared<BenchTrainOptions>();
    auto inferOptions = std::make_shared<BenchInferOptions>();
    auto* bench = parent.add_subcommand("bench", "Measure the engine's speed");
    bench->require_subcommand(1);
    auto* data = bench->add_subcommand("data", "Images per second of the training input pipeline, per epoch");
    data->add_option("--data", dataOptions->data, "An image folder or fashion-mnist")->required();
    data->add_option("--img-size", dataOptions->imageSize, "Training image size")->check(CLI::Range(8, 1024));
    data->add_option("--batch", dataOptions->batch, "Batch size")->check(CLI::Range(1, 4096));
    data->add_option("--epochs", dataOptions->epochs, "Epochs to time")->check(CLI::Range(1, 100));
    data->add_flag("--json", dataOptions->json, "Print one JSON object");
    auto* train = bench->add_subcommand("train", "Training steps per second (forward, backward, AdamW) on random images");
    train->add_option("--model", trainOptions->model, "A registry name or a JSON model config")->required();
    train->add_option("--img-size", trainOptions->imageSize, "Image size (default: the model's)")->check(CLI::Range(8, 1024));
    train->add_option("--batch", trainOptions->batch, "Batch size")->capture_default_str()->check(CLI::Range(1, 4096));
    train->add_option("--precision", trainOptions->precision, "auto, fp32 or bf16")->capture_default_str();
    train->add_option("--steps", trainOptions->steps, "Timed steps")->capture_default_str()->check(CLI::Range(1, 100000));
    train->add_option("--device", trainOptions->device, "cpu, cuda or cuda:N")->capture_default_str();
    train->add_flag("--json", trainOptions->json, "Print one JSON object");
    auto* infer = bench->add_subcommand("infer", "Inference latency and throughput (eval mode, no gradients) on random images");
    infer->add_option("--model", inferOptions->model, "A registry name or a JSON model config")->required();
    infer->add_option("--img-size", inferOptions->imageSize, "Image size (default: the model's)")->check(CLI::Range(8, 1024));
    infer->add_option("--batch", inferOptions->batch, "Batch size")->capture_default_str()->check(CLI::Range(1, 4096));
    infer->add_option("--precision", inferOptions->precision, "auto, fp32 or bf16")->capture_default_str();
    infer->add_option("--iterations", inferOptions->iterations, "Timed batches")->capture_default_str()->check(CLI::Range(1, 100000));
    infer->add_option("--device", inferOptions->device, "cpu, cuda or cuda:N")->capture_default_str();
    infer->add_flag("--json", inferOptions->json, "Print one JSON object");
    return {bench, [dataOptions, trainOptions, inferOptions, data, infer](const RuntimeInfo&) {
                if (data->parsed())
                    return runBenchData(*dataOptions);
                return infer->parsed() ? runBenchInfer(*inferOptions) : runBenchTrain(*trainOptions);
            }};
}

} // namespace vitlab::cli
