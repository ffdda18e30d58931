#pragma once

// Float32 matrix products through oneDNN on the CPU: linear layers and attention's products.
// LibTorch's own float32 products go to its BLAS: OpenBLAS pinned to its Haswell kernels
// (Debian's 1.13) or MKL, which runs its AVX2 kernels on AMD (PyPI's 2.x). oneDNN picks its
// kernels by the instruction set (AVX-512 where there is one, AMX for bf16): on Zen 5, 2 threads,
// a 6304x192 by 192x768 product ran at 380-400 GFLOP/s there against 100-200 in LibTorch. oneDNN
// reads the tensors' own memory (row-major with any strides), so nothing is converted or
// reordered, forward or backward.
#include <torch/torch.h>

#include <string>

namespace vitlab {

/// Whether the oneDNN path runs `x`'s product: this build has oneDNN, it is not switched off
/// (VITLAB_ONEDNN=0), and `x` and `weight` are float32 CPU tensors outside CPU autocast.
bool onednnLinearApplies(const torch::Tensor& x, const torch::Tensor& weight);

/// x W^T + b over the last dimension of `x`, differentiable (its backward also through oneDNN);
/// `bias` may be undefined. Call only where onednnLinearApplies.
torch::Tensor onednnLinear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

/// Whether onednnMatmul runs `a` (... x m x k) times `b` (... x k x n): as onednnLinearApplies,
/// and the same leading (batch) dimensions.
bool onednnMatmulApplies(const torch::Tensor& a, const torch::Tensor& b);

/// alpha a b over the last two dimensions, differentiable (attention's q k^T * scale and p v);
/// the operands may be views (transposed, heads interleaved). Call only where onednnMatmulApplies.
torch::Tensor onednnMatmul(const torch::Tensor& a, const torch::Tensor& b, double alpha = 1.0);

/// Whether this build has the oneDNN path at all.
bool onednnLinearBuilt();

/// What runs float32 products on the CPU, in words: "oneDNN 2.6.3", or LibTorch's BLAS and why.
std::string float32ProductsDescription();

} // namespace vitlab
