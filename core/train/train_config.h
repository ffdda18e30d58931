#pragma once

// What a training run is asked to do. Plain data, free of torch: the desktop front end fills it
// in, the CLI parses it, and the run folder keeps it as config.json so a run can be rebuilt.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace vitlab {

enum class Precision { Auto, Float32, BFloat16, Float16 };

struct TrainConfig;

/// The Fashion-MNIST recipe for where a run computes. TrainConfig's defaults (the 4-block hybrid,
/// batch 128, lr 2e-3) train in minutes on a GPU or in native bfloat16. A CPU computing in float32
/// gets the 2-block preset, half the time per step so that a time budget holds twice its epochs,
/// at batch 64 and lr 1.5e-3: the same images per second, twice the optimiser steps.
TrainConfig fashionMnistRecipe(bool float32OnCpu);

/// "auto", "fp32", "bf16" or "fp16"; throws ConfigError otherwise.
Precision parsePrecision(const std::string& text);
std::string precisionName(Precision precision);

struct TrainConfig {
    // --- Data
    /// A folder of class sub-folders, an IDX folder, or "fashion-mnist".
    std::string data = "fashion-mnist";
    /// Share of each class held out when the folder has no train/val split.
    double validationFraction = 0.2;
    std::uint64_t splitSeed = 0;

    // --- Model
    /// A registry name or the path of a JSON model config.
    /// The default: the Fashion-MNIST preset (where a run names none, the CLI picks the recipe that
    /// suits its machine: fashionMnistRecipe).
    std::string model = "vit_micro_r5_s4_28";
    /// Training image size; 0 keeps the model's own.
    std::int64_t imageSize = 0;
    /// timm weights to start from (.safetensors), or empty.
    std::string weights;
    /// "none", "head" or a number of blocks/stages to freeze (see parseFreezeSpec).
    std::string freeze = "none";
    /// Stochastic depth; the short default runs underfit more than they overfit, so none.
    double dropPath = 0.0;

    // --- Optimisation
    int epochs = 12;
    std::int64_t batchSize = 128;
    /// Steps whose gradients are summed before each optimiser step.
    int accumulation = 1;
    double learningRate = 2e-3;
    double minLearningRate = 1e-5;
    double warmupEpochs = 1.0;
    double weightDecay = 0.05;
    double labelSmoothing = 0.1;
    /// Largest gradient norm; 0 turns clipping off.
    double clipGradNorm = 1.0;
    /// Exponential moving average of the weights (e.g. 0.999); 0 turns it off.
    double emaDecay = 0.0;
    /// Weigh each class's loss by the inverse of its frequency.
    bool classWeights = false;
    /// Run folder of a trained teacher for DeiT hard distillation (distilled DeiT students only).
    std::string teacherRun;

    // --- Augmentation
    /// RandomResizedCrop's smallest area share; 0 picks 0.08 for large images and 1 (no
    /// crop, flips only) for images under 128 px.
    double cropScaleMin = 0.0;
    bool horizontalFlip = true;
    int randAugmentOps = 0;
    int randAugmentMagnitude = 9;
    double mixup = 0.0;
    double cutmix = 0.0;

    // --- Execution
    Precision precision = Precision::Auto;
    /// TF32 for float32 matrix products on CUDA (faster, 10-bit mantissa products).
    bool tf32 = false;
    /// "auto", "cpu", "cuda" or "cuda:N".
    std::string device = "auto";
    std::uint64_t seed = 0;
    /// Stop (resumably) after this many minutes of training; 0 means no limit.
    double maxMinutes = 0.0;
    /// A time budget in minutes, data preparation included (0: none). The first steps are timed and
    /// the epochs and the learning-rate schedule fitted so that the run, its decay complete, ends
    /// within it; refitted at every step. `epochs` and `totalSteps` then receive the fitted plan.
    double budgetMinutes = 0.0;
    /// The run's optimiser steps, when a time budget fitted them (its last epoch may then be
    /// partial); 0: `epochs` whole epochs.
    std::int64_t totalSteps = 0;
    /// Data worker threads; 0 means every usable core.
    int workers = 0;
    /// A metrics row every this many optimiser steps.
    int logEvery = 10;

    // --- Where
    /// Folder that receives the run folder; empty means the shared default runs folder.
    std::string runsDirectory;
    /// The run folder's name; empty makes one from the time and the model.
    std::string runName;

    nlohmann::json toJson() const;
    /// Reads what `toJson` wrote; keys that are absent keep their defaults. Throws ConfigError for
    /// values of the wrong type.
    static TrainConfig fromJson(const nlohmann::json& json);
    /// Reads a JSON file: what `toJson` wrote, or a run's config.json (its "train" settings).
    static TrainConfig fromFile(const std::filesystem::path& path);
    /// Throws ConfigError naming the first value out of range.
    void validate() const;
};

} // namespace vitlab
