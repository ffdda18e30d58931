#pragma once

// The one place for calls whose spelling differs between Debian's LibTorch 1.13 and the official
// LibTorch 2.x. Everything else uses the API common to both.
#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <type_traits>

namespace vitlab::compat {

/// The CUDA runtime version this LibTorch was built with (13020 for 13.2), 0 when it has no
/// CUDA. Asked of the CUDA hooks, which need no device (hasCUDA() is false without one on 2.x).
inline long cudaVersionBuiltWith()
{
    try {
        return at::detail::getCUDAHooks().versionCUDART();
    } catch (const c10::Error&) {
        return 0;
    }
}

/// The cuDNN version this LibTorch was built with (92600 for 9.26), 0 without cuDNN.
inline long cudnnVersionBuiltWith()
{
    try {
        return cudaVersionBuiltWith() > 0 ? at::detail::getCUDAHooks().versionCuDNN() : 0;
    } catch (const c10::Error&) {
        return 0;
    }
}

/// True when this LibTorch was built with CUDA support (not whether a device is present).
inline bool builtWithCuda()
{
    return cudaVersionBuiltWith() > 0;
}

inline std::string torchVersionString()
{
    return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "."
        + std::to_string(TORCH_VERSION_PATCH);
}

namespace detail {
// LibTorch 2.4 made the autocast state per device type; older versions have one call per device.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
inline bool autocastEnabled(c10::DeviceType device) { return at::autocast::is_autocast_enabled(device); }
inline at::ScalarType autocastDtype(c10::DeviceType device) { return at::autocast::get_autocast_dtype(device); }
inline void setAutocast(c10::DeviceType device, bool enabled, at::ScalarType dtype)
{
    at::autocast::set_autocast_enabled(device, enabled);
    at::autocast::set_autocast_dtype(device, dtype);
}
#else
inline bool autocastEnabled(c10::DeviceType device)
{
    return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
inline at::ScalarType autocastDtype(c10::DeviceType device)
{
    return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                           : at::autocast::get_autocast_cpu_dtype();
}
inline void setAutocast(c10::DeviceType device, bool enabled, at::ScalarType dtype)
{
    if (device == c10::DeviceType::CUDA) {
        at::autocast::set_enabled(enabled);
        at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
        at::autocast::set_cpu_enabled(enabled);
        at::autocast::set_autocast_cpu_dtype(dtype);
    }
}
#endif
} // namespace detail

/// The dtype CPU autocast runs matrix products in, or nullopt when CPU autocast is off.
inline c10::optional<at::ScalarType> cpuAutocastDtype()
{
    if (!detail::autocastEnabled(c10::DeviceType::CPU))
        return c10::nullopt;
    return detail::autocastDtype(c10::DeviceType::CPU);
}

/// Whether CPU autocast can run in float16 (LibTorch 2.x; 1.13's CPU autocast knows bfloat16 only).
constexpr bool kCpuAutocastsToHalf = TORCH_VERSION_MAJOR >= 2;

/// Mixed precision for the scope: matrix products and convolutions on `device` run in `dtype`
/// (bfloat16 on CPUs with AMX or AVX-512 BF16, float16 or bfloat16 on CUDA).
class AutocastGuard {
public:
    AutocastGuard(c10::DeviceType device, at::ScalarType dtype, bool enabled = true)
        : m_device(device)
    {
        m_wasEnabled = detail::autocastEnabled(device);
        m_previousDtype = detail::autocastDtype(device);
        // A disabled scope keeps the dtype: 1.13's CPU autocast refuses any but bfloat16.
        detail::setAutocast(device, enabled, enabled ? dtype : m_previousDtype);
        at::autocast::increment_nesting();
    }
    ~AutocastGuard()
    {
        // As Python's torch.autocast: the cast-weight cache lives until the outermost scope ends.
        if (at::autocast::decrement_nesting() == 0)
            at::autocast::clear_cache();
        detail::setAutocast(m_device, m_wasEnabled, m_previousDtype);
    }
    AutocastGuard(const AutocastGuard&) = delete;
    AutocastGuard& operator=(const AutocastGuard&) = delete;

private:
    c10::DeviceType m_device;
    bool m_wasEnabled = false;
    at::ScalarType m_previousDtype = at::kFloat;
};

/// Whether this LibTorch has at::scaled_dot_product_attention (2.0 and later): flash or
/// memory-efficient kernels on CUDA, flash attention on the CPU, without the score matrix.
constexpr bool kHasFusedAttention = TORCH_VERSION_MAJOR >= 2;

/// softmax(q k^T * scale + additive) v through the fused kernel, for (N, heads, tokens, head_dim)
/// inputs; `additive` is undefined or broadcasts to (N, heads, queries, keys). Only call where
/// kHasFusedAttention holds.
inline torch::Tensor fusedAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                    double scale, double dropout, const torch::Tensor& additive)
{
#if TORCH_VERSION_MAJOR >= 2
    const auto mask = additive.defined() ? c10::optional<torch::Tensor>(additive.to(q.scalar_type())) : c10::nullopt;
#if TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 1
    return at::scaled_dot_product_attention(q, k, v, mask, dropout, /*is_causal=*/false, scale);
#else
    // 2.0 has no scale argument: it always scales by 1/sqrt(head_dim).
    return at::scaled_dot_product_attention(q * (scale * std::sqrt(static_cast<double>(q.size(-1)))), k, v, mask,
                                            dropout);
#endif
#else
    (void)q, (void)k, (void)v, (void)scale, (void)dropout, (void)additive;
    throw std::logic_error("fused attention needs LibTorch 2.0 or later");
#endif
}

/// The key of a parameter in an optimiser's state map: LibTorch 1.13 keys it by the printed
/// address of the TensorImpl, 2.x by the address itself. Derived from the map's key type, so
/// both compile without a version check.
template <typename StateMap>
typename StateMap::key_type optimizerStateKey(const StateMap&, const torch::Tensor& parameter)
{
    using Key = typename StateMap::key_type;
    if constexpr (std::is_same_v<Key, std::string>) {
        std::ostringstream address;
        address << parameter.unsafeGetTensorImpl();
        return address.str();
    } else {
        return static_cast<Key>(parameter.unsafeGetTensorImpl());
    }
}

} // namespace vitlab::compat
