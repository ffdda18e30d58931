#include "core/train/train_config.h"

#include "core/errors.h"
#include "core/io/text_file.h"

namespace vitlab {

TrainConfig fashionMnistRecipe(bool float32OnCpu)
{
    TrainConfig recipe;
    if (float32OnCpu) {
        recipe.model = "vit_micro_d2_r5_s4_28";
        recipe.batchSize = 64;
        recipe.learningRate = 1.5e-3;
    }
    return recipe;
}

Precision parsePrecision(const std::string& text)
{
    if (text == "auto")
        return Precision::Auto;
    if (text == "fp32" || text == "float32")
        return Precision::Float32;
    if (text == "bf16" || text == "bfloat16")
        return Precision::BFloat16;
    if (text == "fp16" || text == "float16")
        return Precision::Float16;
    throw ConfigError("precision must be auto, fp32, bf16 or fp16, not \"" + text + "\"");
}

std::string precisionName(Precision precision)
{
    switch (precision) {
    case Precision::Float32:
        return "fp32";
    case Precision::BFloat16:
        return "bf16";
    case Precision::Float16:
        return "fp16";
    case Precision::Auto:
        break;
    }
    return "auto";
}

// One table of (key, member) pairs keeps toJson and fromJson from drifting apart.
#define VITLAB_TRAIN_CONFIG_FIELDS(X)                                                                                  \
    X("data", data)                                                                                                    \
    X("validation_fraction", validationFraction)                                                                       \
    X("split_seed", splitSeed)                                                                                         \
    X("model", model)                                                                                                  \
    X("img_size", imageSize)                                                                                           \
    X("weights", weights)                                                                                              \
    X("freeze", freeze)                                                                                                \
    X("drop_path", dropPath)                                                                                           \
    X("epochs", epochs)                                                                                                \
    X("batch_size", batchSize)                                                                                         \
    X("accumulation", accumulation)                                                                                    \
    X("lr", learningRate)                                                                                              \
    X("min_lr", minLearningRate)                                                                                       \
    X("warmup_epochs", warmupEpochs)                                                                                   \
    X("weight_decay", weightDecay)                                                                                     \
    X("label_smoothing", labelSmoothing)                                                                               \
    X("clip_grad_norm", clipGradNorm)                                                                                  \
    X("ema_decay", emaDecay)                                                                                           \
    X("class_weights", classWeights)                                                                                   \
    X("teacher_run", teacherRun)                                                                                       \
    X("crop_scale_min", cropScaleMin)                                                                                  \
    X("horizontal_flip", horizontalFlip)                                                                               \
    X("randaugment_ops", randAugmentOps)                                                                               \
    X("randaugment_magnitude", randAugmentMagnitude)                                                                   \
    X("mixup", mixup)                                                                                                  \
    X("cutmix", cutmix)                                                                                                \
    X("tf32", tf32)                                                                                                    \
    X("device", device)                                                                                                \
    X("seed", seed)                                                                                                    \
    X("max_minutes", maxMinutes)                                                                                       \
    X("budget_minutes", budgetMinutes)                                                                                 \
    X("total_steps", totalSteps)                                                                                       \
    X("workers", workers)                                                                                              \
    X("log_every", logEvery)                                                                                           \
    X("runs_directory", runsDirectory)                                                                                 \
    X("run_name", runName)

nlohmann::json TrainConfig::toJson() const
{
    nlohmann::json json;
#define VITLAB_WRITE(key, member) json[key] = member;
    VITLAB_TRAIN_CONFIG_FIELDS(VITLAB_WRITE)
#undef VITLAB_WRITE
    json["precision"] = precisionName(precision);
    return json;
}

TrainConfig TrainConfig::fromFile(const std::filesystem::path& path)
{
    const auto json = readJsonFile(path);
    try {
        if (json.is_object() && json.contains("train"))
            return fromJson(json.at("train"));
        return fromJson(json);
    } catch (const ConfigError& error) {
        throw ConfigError(path.string() + ": " + error.what());
    }
}

TrainConfig TrainConfig::fromJson(const nlohmann::json& json)
{
    if (!json.is_object())
        throw ConfigError("a training configuration must be a JSON object");
    TrainConfig config;
    try {
#define VITLAB_READ(key, member)                                                                                       \
    if (const auto it = json.find(key); it != json.end())                                                              \
        it->get_to(config.member);
        VITLAB_TRAIN_CONFIG_FIELDS(VITLAB_READ)
#undef VITLAB_READ
        if (const auto it = json.find("precision"); it != json.end())
            config.precision = parsePrecision(it->get<std::string>());
    } catch (const nlohmann::json::exception& error) {
        throw ConfigError(std::string("the training configuration has a value of the wrong type: ") + error.what());
    }
    return config;
}

#undef VITLAB_TRAIN_CONFIG_FIELDS

void TrainConfig::validate() const
{
    const auto require = [](bool ok, const std::string& message) {
        if (!ok)
            throw ConfigError(message);
    };
    require(!data.empty(), "no dataset given");
    require(!model.empty(), "no model given");
    require(validationFraction >= 0.0 && validationFraction < 1.0, "the validation share must be in [0, 1)");
    require(imageSize >= 0 && imageSize <= 4096, "the image size must be between 1 and 4096 pixels");
    require(epochs >= 1 && epochs <= 100000, "epochs must be at least 1");
    require(batchSize >= 1 && batchSize <= 65536, "the batch size must be at least 1");
    require(accumulation >= 1 && accumulation <= 1024, "gradient accumulation must be at least 1 step");
    require(learningRate > 0.0 && learningRate < 10.0, "the learning rate must be positive (and below 10)");
    require(minLearningRate >= 0.0 && minLearningRate <= learningRate,
            "the minimum learning rate must be between 0 and the learning rate");
    require(warmupEpochs >= 0.0, "warm-up epochs cannot be negative");
    require(weightDecay >= 0.0 && weightDecay < 10.0, "weight decay must be between 0 and 10");
    require(labelSmoothing >= 0.0 && labelSmoothing < 1.0, "label smoothing must be in [0, 1)");
    require(clipGradNorm >= 0.0, "the gradient clipping norm cannot be negative");
    require(emaDecay == 0.0 || (emaDecay > 0.0 && emaDecay < 1.0), "the EMA decay must be 0 (off) or in (0, 1)");
    require(dropPath >= 0.0 && dropPath < 1.0, "drop path must be in [0, 1)");
    require(cropScaleMin >= 0.0 && cropScaleMin <= 1.0, "the crop's smallest area share must be in [0, 1]");
    require(randAugmentOps >= 0 && randAugmentOps <= 14, "RandAugment takes 0 to 14 operations");
    require(randAugmentMagnitude >= 0 && randAugmentMagnitude <= 30, "RandAugment's magnitude must be 0 to 30");
    require(mixup >= 0.0 && cutmix >= 0.0, "mixup and CutMix alphas cannot be negative");
    require(maxMinutes >= 0.0, "the time limit cannot be negative");
    require(budgetMinutes >= 0.0 && budgetMinutes <= 1e6, "the time budget must be 0 (none) to 1000000 minutes");
    require(totalSteps >= 0, "the run's step count cannot be negative");
    require(workers >= 0 && workers <= 256, "workers must be 0 (every core) to 256");
    require(logEvery >= 1, "log-every must be at least 1 step");
}

} // namespace vitlab
