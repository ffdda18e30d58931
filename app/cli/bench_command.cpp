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

/// What `bench train` and `bench infer` time: a model on random images.
struct BenchModelOptions {
    std::string model;
    std::int64_t imageSize = 0;
    std::int64_t batch = 32;
    std::string precision = "auto";
    /// Timed steps (train) or batches (infer).
    int repeats = 10;
    std::string device = "cpu";
    bool json = false;
};

/// One timing, as JSON ("steps", "ms_per_step") or a line ("12.3 ms per step").
void printTiming(const BenchModelOptions& options, const ModelSpec& spec, const ComputePrecision& precision,
                 double seconds, const std::string& unit, const char* repeatsKey)
{
    const double ms = 1e3 * seconds / options.repeats;
    const double rate = static_cast<double>(options.batch * options.repeats) / seconds;
    if (options.json) {
        std::cout << nlohmann::json{{"model", spec.name.empty() ? options.model : spec.name},
                                    {"batch", options.batch},
                                    {"precision", precision.name()},
                                    {repeatsKey, options.repeats},
                                    {"ms_per_" + unit, ms},
                                    {"images_per_s", rate}}
                         .dump(2)
                  << "\n";
        return;
    }
    std::printf("%s, batch %lld, %s: %.2f ms per %s, %.1f images/s\n", options.model.c_str(),
                static_cast<long long>(options.batch), precision.name().c_str(), ms, unit.c_str(), rate);
}

ModelSpec benchSpec(const BenchModelOptions& options)
{
    auto spec = resolveModelSpec(options.model);
    if (options.imageSize > 0)
        spec = withImageSize(spec, options.imageSize, options.imageSize);
    return spec;
}

/// Forward, backward and an AdamW step on random images: the trainer's own step, without data.
int runBenchTrain(const BenchModelOptions& options)
{
    const auto spec = benchSpec(options);
    const auto device = resolveDevice(options.device);
    const auto precision = resolvePrecision(parsePrecision(options.precision), device);
    printTiming(options, spec, precision, secondsOfTrainingSteps(spec, options.batch, options.repeats, precision, device),
                "step", "steps");
    return 0;
}

/// Eval-mode forward passes on random images, as the predictor runs them (every dropped image).
int runBenchInfer(const BenchModelOptions& options)
{
    const auto spec = benchSpec(options);
    const auto device = resolveDevice(options.device);
    const auto precision = inferencePrecision(parsePrecision(options.precision), device);
    printTiming(options, spec, precision, secondsOfInference(spec, options.batch, options.repeats, precision, device),
                "batch", "iterations");
    return 0;
}

CLI::App* addBenchModelCommand(CLI::App& bench, const char* name, const char* description, BenchModelOptions& options,
                               const char* repeatsFlag, const char* repeatsHelp)
{
    auto* app = bench.add_subcommand(name, description);
    app->add_option("--model", options.model, "A registry name or a JSON model config")->required();
    app->add_option("--img-size", options.imageSize, "Image size (default: the model's)")->check(CLI::Range(8, 1024));
    app->add_option("--batch", options.batch, "Batch size")->capture_default_str()->check(CLI::Range(1, 4096));
    app->add_option("--precision", options.precision, "auto, fp32 or bf16")->capture_default_str();
    app->add_option(repeatsFlag, options.repeats, repeatsHelp)->capture_default_str()->check(CLI::Range(1, 100000));
    app->add_option("--device", options.device, "cpu, cuda or cuda:N")->capture_default_str();
    app->add_flag("--json", options.json, "Print one JSON object");
    return app;
}

} // namespace

Command addBenchCommand(CLI::App& parent)
{
    auto dataOptions = std::make_shared<BenchDataOptions>();
    auto trainOptions = std::make_shared<BenchModelOptions>();
    auto inferOptions = std::make_shared<BenchModelOptions>();
    inferOptions->batch = 1;
    inferOptions->repeats = 20;
    auto* bench = parent.add_subcommand("bench", "Measure the engine's speed");
    bench->require_subcommand(1);
    auto* data = bench->add_subcommand("data", "Images per second of the training input pipeline, per epoch");
    data->add_option("--data", dataOptions->data, "An image folder or fashion-mnist")->required();
    data->add_option("--img-size", dataOptions->imageSize, "Training image size")->check(CLI::Range(8, 1024));
    data->add_option("--batch", dataOptions->batch, "Batch size")->check(CLI::Range(1, 4096));
    data->add_option("--epochs", dataOptions->epochs, "Epochs to time")->check(CLI::Range(1, 100));
    data->add_flag("--json", dataOptions->json, "Print one JSON object");
    addBenchModelCommand(*bench, "train", "Training steps per second (forward, backward, AdamW) on random images",
                         *trainOptions, "--steps", "Timed steps");
    auto* infer = addBenchModelCommand(*bench, "infer",
                                       "Inference latency and throughput (eval mode, no gradients) on random images",
                                       *inferOptions, "--iterations", "Timed batches");
    return {bench, [dataOptions, trainOptions, inferOptions, data, infer](const RuntimeInfo&) {
                if (data->parsed())
                    return runBenchData(*dataOptions);
                return infer->parsed() ? runBenchInfer(*inferOptions) : runBenchTrain(*trainOptions);
            }};
}

} // namespace vitlab::cli
