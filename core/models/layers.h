#pragma once

// Building blocks shared by the families, with timm's module names (they are the checkpoint keys).
#include "core/models/classifier.h"
#include "core/models/onednn_products.h"

#include <torch/torch.h>

namespace vitlab {

/// timm's trunc_normal_: normal(0, std) truncated to [a, b] (absolute bounds).
void truncNormal_(torch::Tensor tensor, double std, double a = -2.0, double b = 2.0);

/// Dropout with probability `p`, active only while `training` (nn.Dropout's behaviour).
inline torch::Tensor applyDropout(const torch::Tensor& x, double p, bool training)
{
    return p > 0.0 && training ? torch::dropout(x, p, true) : x;
}

/// A Linear layer: in float32 on the CPU through oneDNN (onednn_products.h), otherwise through
/// ATen's linear, which fuses the bias into the matrix product for 3-D input. The C++ frontend's
/// Linear::forward multiplies, then adds the bias in a second pass: that pass alone took 150 ms of
/// a 380 ms bf16 ViT-Tiny batch of 32 here.
inline torch::Tensor applyLinear(const torch::nn::Linear& layer, const torch::Tensor& x)
{
    return onednnLinearApplies(x, layer->weight) ? onednnLinear(x, layer->weight, layer->bias)
                                                 : torch::linear(x, layer->weight, layer->bias);
}

/// Whether this LibTorch's CPU bfloat16 convolution sums its products in float32. LibTorch 1.13's
/// own kernel (slow_conv2d over its bf16 matrix product), which it takes wherever oneDNN does not
/// (CPUs without AVX-512, or oneDNN switched off), sums in bfloat16: 5% relative error at 576
/// products per output, where oneDNN and LibTorch 2.x stay near bf16's 0.2% rounding. Found by
/// convolving ones once per oneDNN setting: a bf16 running sum of 576 ones sticks at 256.
bool cpuBf16ConvolutionSumsInFloat();

/// A 2-D convolution as autocast runs it, except that CPU bfloat16 convolutions whose sums would
/// be kept in bfloat16 (cpuBf16ConvolutionSumsInFloat) run in float32, as autocast keeps
/// precision-sensitive work in float32. There float32 is also the faster of the two.
torch::Tensor conv2dWithFloatSums(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     torch::IntArrayRef stride, torch::IntArrayRef padding = 0);
/// `layer`'s convolution, in float32 where conv2dWithFloatSums would convolve in float32.
torch::Tensor applyConv2d(torch::nn::Conv2d& layer, const torch::Tensor& x);

/// The input of a norm in the norm's own precision. Under CPU autocast, LibTorch 1.13 returns
/// bfloat16 from convolutions and linear layers but runs LayerNorm and GroupNorm as they come,
/// and they refuse bfloat16 input with float32 weights; norms then run in float32, as autocast
/// does on CUDA.
inline torch::Tensor normInput(const torch::Tensor& x, const torch::Tensor& normWeight)
{
    return normWeight.defined() && x.scalar_type() != normWeight.scalar_type() ? x.to(normWeight.scalar_type()) : x;
}

/// timm's init for Linear layers in transformers: truncated normal weights (std 0.02), zero bias.
void initLinearTimm(torch::nn::Linear& linear);

/// Stochastic depth: drops whole residual branches per sample while training.
class DropPathImpl : public torch::nn::Module {
public:
    explicit DropPathImpl(double probability = 0.0)
        : m_probability(probability)
    {
    }
    torch::Tensor forward(const torch::Tensor& x);

private:
    double m_probability;
};
TORCH_MODULE(DropPath);

/// Per-channel learnable scale of a residual branch (CaiT's LayerScale, key "gamma").
class LayerScaleImpl : public torch::nn::Module {
public:
    LayerScaleImpl(std::int64_t dim, double initValue);
    torch::Tensor forward(const torch::Tensor& x) { return x * gamma; }
    torch::Tensor gamma;
};
TORCH_MODULE(LayerScale);

struct MlpOptions {
    MlpOptions(std::int64_t inFeatures, std::int64_t hiddenFeatures)
        : in_features_(inFeatures)
        , hidden_features_(hiddenFeatures)
    {
    }
    TORCH_ARG(std::int64_t, in_features);
    TORCH_ARG(std::int64_t, hidden_features);
    /// Defaults to in_features.
    TORCH_ARG(std::int64_t, out_features) = 0;
    TORCH_ARG(double, drop) = 0.0;
};

/// fc1, exact GELU, dropout, fc2, dropout.
class MlpImpl : public torch::nn::Module {
public:
    explicit MlpImpl(const MlpOptions& options);
    torch::Tensor forward(const torch::Tensor& x);
    /// The bf16 inference path (fused::bf16InferenceApplies) for bf16 tokens (..., in_features):
    /// fc2's product without its bias, (tokens, out_features), for the caller to fuse into the
    /// residual add.
    torch::Tensor forwardBf16WithoutOutputBias(const torch::Tensor& x);

    torch::nn::Linear fc1{nullptr}, fc2{nullptr};

private:
    double m_drop;
};
TORCH_MODULE(Mlp);

struct AttentionOptions {
    AttentionOptions(std::int64_t dim, std::int64_t numHeads)
        : dim_(dim)
        , num_heads_(numHeads)
    {
    }
    TORCH_ARG(std::int64_t, dim);
    TORCH_ARG(std::int64_t, num_heads);
    TORCH_ARG(bool, qkv_bias) = false;
    /// LayerNorm on queries and keys per head (timm's qk_norm).
    TORCH_ARG(bool, qk_norm) = false;
    TORCH_ARG(double, attn_drop) = 0.0;
    TORCH_ARG(double, proj_drop) = 0.0;
};

/// Multi-head self-attention over all tokens: qkv, softmax(q k^T / sqrt(d)) v, proj.
class AttentionImpl : public torch::nn::Module, public AttentionCaptureSite {
public:
    explicit AttentionImpl(const AttentionOptions& options);
    torch::Tensor forward(const torch::Tensor& x);
    /// The bf16 inference path (fused::bf16InferenceApplies) for bf16 tokens (batch, tokens, dim),
    /// without qk_norm: proj's product without its bias, (batch*tokens, dim), for the caller to
    /// fuse into the residual add.
    torch::Tensor forwardBf16WithoutOutputBias(const torch::Tensor& x);

    torch::nn::Linear qkv{nullptr}, proj{nullptr};
    torch::nn::LayerNorm q_norm{nullptr}, k_norm{nullptr};

private:
    std::int64_t m_numHeads;
    std::int64_t m_headDim;
    double m_scale;
    double m_attnDrop;
    double m_projDrop;
};
TORCH_MODULE(Attention);

struct BlockOptions {
    BlockOptions(std::int64_t dim, std::int64_t numHeads)
        : dim_(dim)
        , num_heads_(numHeads)
    {
    }
    TORCH_ARG(std::int64_t, dim);
    TORCH_ARG(std::int64_t, num_heads);
    TORCH_ARG(double, mlp_ratio) = 4.0;
    TORCH_ARG(bool, qkv_bias) = false;
    TORCH_ARG(bool, qk_norm) = false;
    /// LayerScale initial value; 0 means no LayerScale.
    TORCH_ARG(double, init_values) = 0.0;
    TORCH_ARG(double, proj_drop) = 0.0;
    TORCH_ARG(double, attn_drop) = 0.0;
    TORCH_ARG(double, drop_path) = 0.0;
    TORCH_ARG(double, norm_eps) = 1e-6;
};

/// The pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)).
class BlockImpl : public torch::nn::Module {
public:
    explicit BlockImpl(const BlockOptions& options);
    torch::Tensor forward(const torch::Tensor& x);

    /// Whether forwardFusedBf16 computes this block (no LayerScale or qk_norm, eval, not
    /// capturing attention); the caller also checks fused::bf16InferenceApplies on the input.
    bool fusedBf16Eligible() const;
    /// forward() in bf16 inference through the fused kernels: six matrix products, a head merge
    /// and five fused passes instead of some thirty ATen ops. Takes the stream `x` and
    /// norm1(x) in bf16; returns the new stream and, when `nextNorm` is given, its LayerNorm in
    /// bf16 from the same pass (the next block's norm1), else an undefined tensor.
    std::pair<torch::Tensor, torch::Tensor> forwardFusedBf16(const torch::Tensor& x, const torch::Tensor& normed1,
                                                              const torch::nn::LayerNorm& nextNorm);

    torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
    Attention attn{nullptr};
    Mlp mlp{nullptr};
    LayerScale ls1{nullptr}, ls2{nullptr};
    DropPath drop_path1{nullptr}, drop_path2{nullptr};
};
TORCH_MODULE(Block);

/// Turns images (N, C, H, W) into a grid of tokens: ViT's patch embedding, or the hybrid's
/// backbone plus projection. Registered as "patch_embed".
class TokenEmbedder : public torch::nn::Module {
public:
    virtual torch::Tensor forward(const torch::Tensor& images) = 0;
    /// Tokens per side (height, width).
    virtual std::array<std::int64_t, 2> gridSize() const = 0;
    std::int64_t numPatches() const { return gridSize()[0] * gridSize()[1]; }
};

/// Non-overlapping patches by a strided convolution ("proj"): tokens (N, L, D) when `flatten`,
/// else the (N, D, h, w) map.
class PatchEmbedImpl : public TokenEmbedder {
public:
    PatchEmbedImpl(std::array<std::int64_t, 2> imageSize, std::int64_t patchSize, std::int64_t inChannels,
                   std::int64_t embedDim, bool flatten = true, bool bias = true);
    torch::Tensor forward(const torch::Tensor& images) override;
    std::array<std::int64_t, 2> gridSize() const override { return m_grid; }

    torch::nn::Conv2d proj{nullptr};

private:
    std::array<std::int64_t, 2> m_grid;
    bool m_flatten;
};
TORCH_MODULE(PatchEmbed);

/// Linearly increasing stochastic-depth rates over `depth` blocks, as timm's dpr.
std::vector<double> dropPathRates(double maxRate, std::int64_t depth);

/// timm's resample_abs_pos_embed: bicubic resize of the grid part of a (1, prefix + H*W, D)
/// position embedding to `newGrid`, prefix tokens kept.
torch::Tensor resamplePositionEmbedding(const torch::Tensor& posEmbed, std::array<std::int64_t, 2> newGrid,
                                        std::int64_t numPrefixTokens);

/// timm's adapt_input_conv: sums an RGB patch-embedding kernel over channels for grey input,
/// or repeats it for more channels, keeping the activation scale.
torch::Tensor adaptInputConv(const torch::Tensor& weight, std::int64_t inChannels);

} // namespace vitlab
