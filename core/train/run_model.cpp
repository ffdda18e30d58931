#include "core/train/run_model.h"

#include "core/errors.h"
#include "core/models/weights.h"

namespace vitlab {

ModelSpec runModelSpec(const TrainConfig& config, std::int64_t classes)
{
    auto spec = resolveModelSpec(config.model);
    if (config.imageSize > 0)
        spec = withImageSize(spec, config.imageSize, config.imageSize);
    spec = withNumClasses(spec, classes);
    if (config.dropPath > 0.0)
        spec.args["drop_path_rate"] = config.dropPath;
    return spec;
}

AugmentOptions evaluationView(const ModelSpec& spec)
{
    AugmentOptions view;
    view.outputSize = spec.input.size[0];
    view.mean = spec.input.mean;
    view.std = spec.input.std;
    view.cropPct = spec.input.cropPct;
    return view;
}

AugmentOptions trainingView(const TrainConfig& config, const ModelSpec& spec)
{
    auto view = evaluationView(spec);
    // Small images lose their object under torchvision's default 8% crops.
    view.scaleMin = config.cropScaleMin > 0.0 ? config.cropScaleMin : (view.outputSize >= 128 ? 0.08 : 0.6);
    view.horizontalFlip = config.horizontalFlip;
    view.randAugmentOps = config.randAugmentOps;
    view.randAugmentMagnitude = config.randAugmentMagnitude;
    return view;
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
