#pragma once

// One training step, shared by the trainer and `vitlab-cli bench train`: forward under the chosen
// precision, the loss, backward, and (every `accumulation` batches) clipping, AdamW, the moving
// average of the weights. Also the learning-rate schedule and the optimiser's saved state.
#include "core/io/safetensors.h"
#include "core/models/classifier.h"

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vitlab {

/// Linear warm-up to `peak` over `warmupSteps`, then a cosine decay to `minimum` at `totalSteps`.
struct LearningRateSchedule {
    double peak = 1e-3;
    double minimum = 1e-5;
    std::int64_t warmupSteps = 0;
    std::int64_t totalSteps = 1;
    /// The rate for optimiser step `step` (0-based).
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
    bool bfloat16 = false;
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

class Optimization {
public:
    /// `makeCopy` builds a fresh model of the same architecture, for the moving average.
    Optimization(Classifier model, const OptimizationOptions& options, const std::function<Classifier()>& makeCopy = {});

    /// Forward and backward for one batch already on the device. `targets` are soft (N, classes);
    /// `labels` (N) only count correct predictions. With `teacherLogits`, DeiT's hard
    /// distillation (the model must be a distilled DeiT). The gradients are scaled by
    /// 1/accumulation and summed until step().
    BatchOutcome accumulate(const torch::Tensor& images, const torch::Tensor& targets, const torch::Tensor& labels,
                            const torch::Tensor& teacherLogits = {});
    /// Clips, steps AdamW at `learningRate`, clears the gradients and updates the average.
    /// Returns the gradient norm before clipping.
    double step(double learningRate);
    /// Drops gradients summed since the last step (a stop in the middle of an accumulation).
    void discardGradients();

    Classifier model() const { return m_model; }
    /// The moving average when enabled, else the model: what is evaluated and saved.
    Classifier evaluationModel() const { return m_ema ? m_ema : m_model; }
    std::int64_t stepsDone() const { return m_steps; }

    /// Everything resume needs beyond the configuration: the weights (and the average), AdamW's
    /// moments and step counts, as tensors under "model.", "ema." and "adamw." prefixes.
    safetensors::TensorMap state() const;
    /// Restores what state() returned. Throws FormatError when a tensor is missing or has
    /// another shape.
    void loadState(const safetensors::TensorMap& tensors, std::int64_t stepsDone);

private:
    void updateAverage();

    Classifier m_model;
    Classifier m_ema;
    OptimizationOptions m_options;
    std::vector<std::pair<std::string, torch::Tensor>> m_trainable;
    std::unique_ptr<torch::optim::AdamW> m_optimizer;
    std::int64_t m_steps = 0;
};

} // namespace vitlab
