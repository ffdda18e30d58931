#include "core/train/run_model.h"

#include "core/data/dataset.h"
#include "core/data/image_cache.h"
#include "core/errors.h"
#include "core/hub/pretrained_files.h"
#include "core/models/weights.h"

namespace vitlab {

ModelSpec runModelSpec(const TrainConfig& config, std::int64_t classes)
{
    auto spec = resolveModelSpec(config.model);
    if (config.imageSize > 0)
        spec = withImageSize(spec, config.imageSize, config.imageSize);
    spec = withNumClasses(spec, classes);
    // Always the run's rate, 0 included: Swin's own default (0.1, as timm) must not survive an
    // explicit --drop-path 0.
    spec.args["drop_path_rate"] = config.dropPath;
    // Pretrained weights bring their own normalisation, crop and interpolation.
    if (hub::isHubWeights(config.weights))
        spec = withPreprocessingOf(spec, hub::requireCachedPretrainedFiles(config.weights, spec.name).described);
    return spec;
}

AugmentOptions evaluationView(const ModelSpec& spec)
{
    AugmentOptions view;
    view.outputSize = spec.input.size[0];
    view.mean = spec.input.mean;
    view.std = spec.input.std;
    view.cropPct = spec.input.cropPct;
    view.interpolation = spec.input.interpolation;
    return view;
}

AugmentOptions trainingView(const TrainConfig& config, const ModelSpec& spec)
{
    auto view = evaluationView(spec);
    // Small images lose their object under torchvision's default 8% crops, and short runs on them
    // underfit even with mild ones: Fashion-MNIST, vit_micro_patch4_28, 15 epochs, reached 87.8%
    // with crops of 60-100% of the area and 90.0% with whole images (flips only).
    view.scaleMin = config.cropScaleMin > 0.0 ? config.cropScaleMin : (view.outputSize >= 128 ? 0.08 : 1.0);
    view.horizontalFlip = config.horizontalFlip;
    view.randAugmentOps = config.randAugmentOps;
    view.randAugmentMagnitude = config.randAugmentMagnitude;
    return view;
}

torch::Tensor evaluationInput(const std::string& source, const ModelSpec& spec)
{
    const auto view = evaluationView(spec);
    const auto channels = spec.input.channels;
    const auto side = storageSideFor(view.outputSize);
    std::vector<std::uint8_t> square(static_cast<std::size_t>(side * side * channels));
    const bool datasetSource = source.find("#train:") != std::string::npos || source.find("#t10k:") != std::string::npos;
    if (datasetSource) {
        const auto image = loadSourceImage(source, static_cast<int>(channels));
        storeSquareImage(image.pixels.data(), image.width, image.height, image.channels, side, square.data());
    } else {
        std::string problem;
        if (!decodeFileToSquare(source, side, channels, std::int64_t{100} * 1000 * 1000, square.data(), problem))
            throw FormatError(source + ": " + problem);
    }
    auto input = torch::empty({1, channels, view.outputSize, view.outputSize});
    prepareForEvaluationInto(square.data(), side, channels, view, input.data_ptr<float>());
    return input;
}

cv::Mat displayImage(const torch::Tensor& input, const ModelSpec& spec)
{
    auto image = input.detach().to(torch::kCPU, torch::kFloat32)[0].clone();
    for (std::int64_t c = 0; c < image.size(0); ++c)
        image[c].mul_(spec.input.std[static_cast<std::size_t>(c % 3)]).add_(spec.input.mean[static_cast<std::size_t>(c % 3)]);
    if (image.size(0) == 1)
        image = image.expand({3, image.size(1), image.size(2)});
    image = (image.clamp(0.0, 1.0) * 255.0).round().to(torch::kUInt8).permute({1, 2, 0}).contiguous();
    return cv::Mat(static_cast<int>(image.size(0)), static_cast<int>(image.size(1)), CV_8UC3, image.data_ptr()).clone();
}

LoadedRun loadRun(const std::filesystem::path& directory, const torch::Device& device, const std::string& which)
{
    if (which != "best" && which != "last")
        throw ConfigError("the weights of a run are \"best\" or \"last\", not \"" + which + "\"");
    auto folder = RunFolder::open(directory);
    const auto config = folder.readConfig();
    LoadedRun run{folder, TrainConfig::fromJson(config.value("train", nlohmann::json::object())), {}, {}, {}, nullptr};
    run.classNames = folder.readClasses();
    if (run.classNames.size() < 2)
        throw FormatError(folder.classesPath().string() + " names fewer than two classes");
    if (!config.contains("model"))
        throw FormatError(folder.configPath().string() + " does not describe the model");
    run.spec = specFromConfig(config["model"]);
    run.weights = which == "best" ? folder.weightsForInference() : folder.lastWeightsPath();
    std::error_code error;
    if (run.weights.empty() || !std::filesystem::exists(run.weights, error))
        throw IoError("the run " + folder.name() + " has no saved weights yet (no " + which + ".safetensors)");
    run.model = createModel(run.spec);
    loadWeights(*run.model, run.weights);
    if (run.model->numClasses() != static_cast<std::int64_t>(run.classNames.size()))
        throw FormatError("the run's weights have " + std::to_string(run.model->numClasses()) + " classes but "
                          + folder.classesPath().string() + " names " + std::to_string(run.classNames.size()));
    run.model->to(device);
    run.model->eval();
    return run;
}

} // namespace vitlab
