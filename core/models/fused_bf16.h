#pragma once

// Fused CPU kernels for bfloat16 inference under autocast. Autocast runs the matrix products in
// bf16 but leaves everything between them to separate ATen passes: the bias copied into every
// product's output, casts of the normalised activations, permuted q/k/v copies, the q*scale
// product, LibTorch 1.13's slow bf16 softmax and GELU, mixed-type residual adds. These kernels do
// that work in one pass each, computing in float and rounding to bf16 once. Most are for inference
// only: they have no autograd, so callers check bf16InferenceApplies() and keep the ATen path
// otherwise. biasGelu(), trainableLayerNormToBf16() and scaledSoftmax() are differentiable, for
// training in bf16 (bf16TrainingApplies()); biasGelu() also trains in float32.
#include <torch/torch.h>

#include <array>
#include <utility>

namespace vitlab::fused {

/// True when the fused bf16 path may replace the ATen ops for `x`: CPU autocast in bfloat16,
/// gradients off, `x` a float32 CPU tensor (the residual stream autocast keeps in float32).
bool bf16InferenceApplies(const torch::Tensor& x);

/// LayerNorm over the last dimension of float32 `x`, written as bf16.
torch::Tensor layerNormToBf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps);

/// The residual add `x + branch + branchBias` in float32 (`branch` bf16 of x's shape; the bias,
/// optional, broadcasts over the last dimension) and the LayerNorm of that sum in bf16, in one pass.
std::pair<torch::Tensor, torch::Tensor> addResidualLayerNormToBf16(const torch::Tensor& x, const torch::Tensor& branch,
                                                                    const torch::Tensor& branchBias,
                                                                    const torch::Tensor& weight,
                                                                    const torch::Tensor& bias, double eps);

/// The residual add `x + branch + branchBias` in float32, as above without the norm.
torch::Tensor addResidual(const torch::Tensor& x, const torch::Tensor& branch, const torch::Tensor& branchBias);

/// Splits the bf16 output of a qkv product without bias, (batch*tokens, 3*heads*headDim), into
/// contiguous q, k and v of (batch, heads, tokens, headDim), adding `bias` (optional, 3*heads*headDim).
std::array<torch::Tensor, 3> splitHeads(const torch::Tensor& qkv, const torch::Tensor& bias, std::int64_t batch,
                                        std::int64_t heads);

/// In place over the last dimension of bf16 `scores`: softmax(scale * scores), scale > 0.
void scaledSoftmax_(torch::Tensor& scores, double scale);

/// In place on bf16 `x` (contiguous, last dimension = bias length): exact GELU of x + bias.
void biasGelu_(torch::Tensor& x, const torch::Tensor& bias);

/// True when the differentiable fused bf16 kernels may replace the ATen ops for `x`: CPU autocast
/// in bfloat16, gradients on.
bool bf16TrainingApplies(const torch::Tensor& x);

/// LayerNorm over the last dimension of float32 `x` written as bf16, differentiable: where the
/// products that read a norm's output run in bf16, one pass forward and one backward replace
/// ATen's float32 LayerNorm, autocast's cast of its output and both their gradients (the input's
/// gradient in float32, the weight's and bias's summed in fixed blocks of rows).
torch::Tensor trainableLayerNormToBf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                       double eps);

/// softmax(scale * scores) over the last dimension of bf16 `scores`, differentiable, its gradient
/// in bf16: attention's scale, softmax and their gradients in one pass each (LibTorch 1.13's bf16
/// softmax and its backward take several times longer; 2.x attends through its fused kernel).
torch::Tensor scaledSoftmax(const torch::Tensor& scores, double scale);

/// gelu(preActivation + bias) in bf16 or float32, differentiable: `preActivation` is the output of
/// a linear layer computed without its bias, `bias` that layer's float32 bias. One pass forward
/// and one backward, where ATen takes a bias pass, a GELU pass and a slow GELU gradient (bf16's,
/// and 1.13's float32 one: 9.5 ms for 32x197x768 values on Zen 5, 2 threads).
torch::Tensor biasGelu(const torch::Tensor& preActivation, const torch::Tensor& bias);

} // namespace vitlab::fused
