#pragma once

// A trained run brought back: its configuration, its model with the saved weights, and the
// image views (training augmentation, evaluation crop) derived from both. What eval, predict,
// distillation teachers and attention inspection share.
#include "core/data/augment.h"
#include "core/models/registry.h"
#include "core/train/run_folder.h"
#include "core/train/train_config.h"

#include <opencv2/core.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

namespace vitlab {

/// The model a run trains: its spec at the run's image size, channels and class count.
ModelSpec runModelSpec(const TrainConfig& config, std::int64_t classes);

/// The evaluation view of a model: resize and centre crop by the model's crop share, normalised
/// with its mean and std.
AugmentOptions evaluationView(const ModelSpec& spec);
/// The training view: RandomResizedCrop, flip and RandAugment as configured.
AugmentOptions trainingView(const TrainConfig& config, const ModelSpec& spec);

/// An image file, or a Dataset source ("…#t10k:N"), as the model's evaluation input
/// (1, C, H, W): decoded as the image cache stores it, then the evaluation view of `spec`.
/// Throws FormatError or IoError with the reason when the image cannot be read.
torch::Tensor evaluationInput(const std::string& source, const ModelSpec& spec);

/// An evaluation input (1, C, H, W) back to 8-bit RGB (H, W, 3) for display: the normalisation
/// undone, grey replicated to three channels.
cv::Mat displayImage(const torch::Tensor& input, const ModelSpec& spec);

struct LoadedRun {
    RunFolder folder;
    TrainConfig config;
    ModelSpec spec;
    std::vector<std::string> classNames;
    std::filesystem::path weights;
    Classifier model;
};

/// Opens a run folder and loads `which` weights ("best", falling back to "last", or "last") into
/// its model, in eval mode on `device`. Throws IoError when the folder or its weights are
/// missing, FormatError when they do not fit the model.
LoadedRun loadRun(const std::filesystem::path& directory, const torch::Device& device = torch::kCPU,
                  const std::string& which = "best");

} // namespace vitlab
