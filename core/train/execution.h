#pragma once

// Where and in what precision the engine computes: the device from "auto", "cpu", "cuda" or
// "cuda:N", and bfloat16 autocast where the hardware does it natively.
#include "core/train/train_config.h"

#include <torch/torch.h>

#include <string>

namespace vitlab {

/// "auto" is the first CUDA device when LibTorch sees one, else the CPU. Throws ConfigError for
/// an unknown name or a CUDA device this LibTorch cannot use, saying why.
torch::Device resolveDevice(const std::string& name);

/// True when bfloat16 matrix products run natively on this CPU (see bfloat16OnCpu).
bool cpuHasNativeBfloat16();

/// Whether to run under bfloat16 autocast: "auto" picks it on CUDA and on CPUs with native
/// bfloat16, float32 where bfloat16 would be emulated.
bool useBfloat16(Precision precision, const torch::Device& device);

} // namespace vitlab
