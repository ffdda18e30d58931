#pragma once

// One training step, shared by the trainer and `vitlab-cli bench train`: forward under the chosen
// precision, the loss, backward, and (every `accumulation` batches) clipping, AdamW, the moving
// average of the weights. Also the learning-rate schedule and the optimiser's saved state.
#include "core/io/safetensors.h"
#include "core/models/classifier.h"
#include "core/train/execution.h"
#include "core/train/loss_scaler.h"

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vitlab {

class GradientBuckets;
class TrainingGroup;

/// Linear warm-up to `peak` over `warmupSteps`, then a cosine decay to `minimum` at `totalSteps`.
struct LearningRateSchedule {
    double peak = 1e-3;
    double minimum = 1e-5;
    std::int64_t warmupSteps = 0;
    std::int64_t totalSteps = 1;
    /// The rate for optimiser step `step` (0-based); the last, totalSteps - 1, takes the minimum.
    double at(std::int64_t step) const;
};

/// No weight decay on norms, biases, tokens, position embeddings and relative position tables
/// (timm's no_weight_decay, by parameter name and rank).
bool takesWeightDecay(const std::string& parameterName, const torch::Tensor& parameter);

/// Cross-entropy against soft targets (N, classes), optionally weighting class c by
/// `classWeights[c]` (normalised by the weights the targets carry, as PyTorch's weighted mean).
torch::Tensor softTargetCrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                     const torch::Tensor& classWeights = {});

struct OptimizationOptions {
    double weightDecay = 0.05;
    double clipGradNorm = 0.0;
    int accumulation = 1;
    double emaDecay = 0.0;
    /// Autocast's dtype; float16 scales the loss (DynamicLossScaler).
    ComputePrecision precision;
    LossScalerOptions lossScaling;
    torch::Device device = torch::kCPU;
    /// (classes) loss weights, or undefined.
    torch::Tensor classWeights;
};

struct BatchOutcome {
    double loss = 0.0;
    /// Correct top-1 predictions against `labels`.
    std::int64_t correct = 0;
    bool finite = true;
};

struct StepOutcome {
    /// The gradient norm before clipping (after unscaling); not finite for a skipped step.
    double gradientNorm = 0.0;
    /// The gradients overflowed (float16) or were not finite: the weights were left as they were.
    bool skipped = false;
};

class Optimization {
public:
    /// `makeCopy` builds a fresh model of the same architecture, for the moving average.
    Optimization(Classifier model, const OptimizationOptions& options, const std::function<Classifier()>& makeCopy = {});
    ~Optimization();

    /// Forward and backward for one batch already on the device. `targets` are soft (N, classes);
    /// `labels` (N) only count correct predictions. With `teacherLogits`, DeiT's hard
    /// distillation (the model must be a distilled DeiT). The gradients are scaled by
    /// 1/accumulation and summed until step(). In a group, `lossWeight` is the process's images
    /// over the group's mean share, so that the group's mean gradient is the whole batch's; the
    /// step's last batch then averages the gradients over the group, and a loss that is not
    /// finite still runs backward (every rank must take part).
    BatchOutcome accumulate(const torch::Tensor& images, const torch::Tensor& targets, const torch::Tensor& labels,
                            const torch::Tensor& teacherLogits = {}, double lossWeight = 1.0);
    /// Trains data-parallel in `group` from here on: rank 0's weights (and average) go to every
    /// rank, and each step's gradients are averaged over the group (GradientBuckets).
    void joinGroup(TrainingGroup& group);
    /// Unscales (float16), clips, steps AdamW at `learningRate`, clears the gradients and updates
    /// the average. A step whose gradients are not finite is skipped instead (the loss scale
    /// halves); it still counts in stepsDone, as the schedule moves on.
    StepOutcome step(double learningRate);
    /// Drops gradients summed since the last step (a stop in the middle of an accumulation).
    void discardGradients();

    Classifier model() const { return m_model; }
    /// The moving average when enabled, else the model: what is evaluated and saved.
    Classifier evaluationModel() const { return m_ema ? m_ema : m_model; }
    std::int64_t stepsDone() const { return m_steps; }
    std::int64_t skippedSteps() const { return m_skippedSteps; }
    /// The loss scale, or nullopt when the loss is not scaled.
    std::optional<double> lossScale() const;

    /// Everything resume needs beyond the configuration: the weights (and the average), AdamW's
    /// moments and step counts, and the loss scaler, as tensors under "model.", "ema.", "adamw."
    /// and "scaler." prefixes. On the CPU whatever the device, so it resumes on any.
    safetensors::TensorMap state() const;
    /// Restores what state() returned. Throws FormatError when a tensor is missing or has
    /// another shape. Tensors move to the model's device.
    void loadState(const safetensors::TensorMap& tensors, std::int64_t stepsDone, std::int64_t skippedSteps = 0);

private:
    void updateAverage();

    Classifier m_model;
    Classifier m_ema;
    OptimizationOptions m_options;
    std::vector<std::pair<std::string, torch::Tensor>> m_trainable;
    std::unique_ptr<torch::optim::AdamW> m_optimizer;
    std::optional<DynamicLossScaler> m_scaler;
    std::int64_t m_steps = 0;
    std::int64_t m_skippedSteps = 0;
    std::unique_ptr<GradientBuckets> m_buckets;
    /// Batches accumulated since the last step.
    int m_batchesThisStep = 0;
};

} // namespace vitlab
