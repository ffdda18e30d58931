#pragma once

// Where and in what precision the engine computes: the device from "auto", "cpu", "cuda" or
// "cuda:N", and the autocast dtype that suits it.
#include "core/train/train_config.h"

#include <torch/torch.h>

#include <string>

namespace vitlab {

/// "auto" is the first CUDA device when LibTorch sees one, else the CPU. Throws ConfigError for
/// an unknown name or a CUDA device this LibTorch cannot use, saying why.
torch::Device resolveDevice(const std::string& name);

/// True when bfloat16 matrix products run natively on this CPU (see bfloat16OnCpu).
bool cpuHasNativeBfloat16();

/// What a run computes in: float32, or autocast's bfloat16 or float16 for matrix products and
/// convolutions (norms, softmax and the loss stay float32).
struct ComputePrecision {
    /// kFloat (no autocast), kBFloat16 or kHalf.
    at::ScalarType dtype = at::kFloat;

    bool autocasts() const { return dtype != at::kFloat; }
    /// float16's narrow range loses small gradients: its loss is scaled (DynamicLossScaler).
    bool scalesLoss() const { return dtype == at::kHalf; }
    /// "fp32", "bf16" or "fp16", as --precision spells them.
    std::string name() const;
};

/// The precision for `precision` on `device`. "auto" is bfloat16 on CUDA devices of compute
/// capability 8.0 and up, float16 (with loss scaling) on older ones, bfloat16 on CPUs that run
/// it natively and float32 on the others, where bfloat16 would be emulated. Throws ConfigError
/// for float16 on a CPU whose LibTorch cannot autocast to it (1.13).
ComputePrecision resolvePrecision(Precision precision, const torch::Device& device);

/// The Fashion-MNIST recipe (fashionMnistRecipe) for the device and precision `config` resolves
/// to: what a run that names no model trains.
TrainConfig fashionMnistRecipeFor(const TrainConfig& config);

/// The precision to run a trained model in: the run's own, except that float16 falls back to
/// "auto" on a CPU whose LibTorch cannot autocast to it (a model trained in fp16 on a GPU).
ComputePrecision inferencePrecision(Precision precision, const torch::Device& device);

/// Whether `error` is an allocation that failed: CUDA's out-of-memory error, the CPU
/// allocator's, or std::bad_alloc.
bool isOutOfMemory(const std::exception& error);

/// Hands the CUDA caching allocator's unused blocks back to the driver after an out-of-memory
/// error, so the process (the app) can go on. Nothing to do on the CPU or without CUDA headers.
void releaseCachedDeviceMemory();

/// Lets float32 matrix products and convolutions on CUDA use TF32 (10-bit mantissa products,
/// about 8x the float32 rate on Ampere and later), or keeps them exact. No effect on the CPU.
void allowTf32(bool allowed);

} // namespace vitlab
