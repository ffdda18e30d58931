#pragma once

// The training step and inference timed on random images, without data: what `vitlab-cli bench
// train` / `bench infer` and the GPU check measure, so all time the same thing.
#include "core/models/registry.h"
#include "core/train/execution.h"

#include <torch/torch.h>

#include <cstdint>

namespace vitlab {

/// Seconds that `steps` training steps (forward under `precision`, soft-target loss, backward,
/// clipping at 1, AdamW) of a fresh `spec` take at `batch` random images on `device`, after two
/// steps of warm-up. Each step reads its loss, as the trainer does: one synchronisation per step.
double secondsOfTrainingSteps(const ModelSpec& spec, std::int64_t batch, int steps, const ComputePrecision& precision,
                              const torch::Device& device);

/// Seconds that `iterations` eval-mode forward passes (no gradients, autocast under `precision`, as
/// the predictor runs them) of a fresh `spec` take at `batch` random images on `device`, after three
/// of warm-up. Each reads its logits back, as a prediction does.
double secondsOfInference(const ModelSpec& spec, std::int64_t batch, int iterations, const ComputePrecision& precision,
                          const torch::Device& device);

} // namespace vitlab
