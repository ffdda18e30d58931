#pragma once

// The one place for calls whose spelling differs between Debian's LibTorch 1.13 and the official
// LibTorch 2.x. Everything else uses the API common to both.
#include <torch/torch.h>
#include <torch/version.h>

namespace vitlab::compat {

/// True when this LibTorch was built with CUDA support (not whether a device is present).
inline bool builtWithCuda()
{
    return at::globalContext().hasCUDA();
}

inline std::string torchVersionString()
{
    return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "."
        + std::to_string(TORCH_VERSION_PATCH);
}

} // namespace vitlab::compat
