#pragma once

// Hybrid ViT: timm's VisionTransformer whose patch embedding is a HybridEmbed over a ResNetV2
// backbone without pre-activation (timm/models/vision_transformer_hybrid.py, resnetv2.py).
#include "core/models/vit.h"

#include <nlohmann/json.hpp>

#include <vector>

namespace vitlab {

class ModelRegistry;

/// VisionTransformer's arguments plus the backbone's depth. patch_size defaults to 1 here, as in
/// timm's hybrid models, and counts backbone feature pixels, not image pixels.
struct HybridOptions {
    VitOptions vit;
    /// Bottleneck blocks per ResNetV2 stage (at most 4 stages); empty: the stem alone.
    std::vector<std::int64_t> backbone_layers{3, 4, 9};

    /// Reads the arguments it knows; the caller calls args.rejectUnknown() when done.
    static HybridOptions fromArgs(ModelArgs& args, const nlohmann::json& json);
};

/// timm's StdConv2dSame: a bias-free convolution whose kernel is standardised per output channel
/// (zero mean, unit variance, eps 1e-8 in the hybrid) and whose input gets TensorFlow's 'SAME' padding.
class StdConv2dSameImpl : public torch::nn::Module {
public:
    StdConv2dSameImpl(std::int64_t inChannels, std::int64_t outChannels, std::int64_t kernel, std::int64_t stride = 1,
                      double eps = 1e-8);
    torch::Tensor forward(const torch::Tensor& x);
    /// The kernel the convolution actually applies.
    torch::Tensor standardizedWeight() const;

    torch::Tensor weight;

private:
    std::int64_t m_kernel;
    std::int64_t m_stride;
    double m_eps;
};
TORCH_MODULE(StdConv2dSame);

/// timm's GroupNormAct: GroupNorm (32 groups, eps 1e-5), then ReLU when `applyAct`.
class GroupNormActImpl : public torch::nn::Module {
public:
    explicit GroupNormActImpl(std::int64_t channels, bool applyAct = true);
    torch::Tensor forward(const torch::Tensor& x);

    torch::Tensor weight, bias;

private:
    bool m_applyAct;
};
TORCH_MODULE(GroupNormAct);

/// The projection shortcut of a stage's first block: 1x1 convolution and norm without activation.
class DownsampleConvImpl : public torch::nn::Module {
public:
    DownsampleConvImpl(std::int64_t inChannels, std::int64_t outChannels, std::int64_t stride);
    torch::Tensor forward(const torch::Tensor& x) { return norm(conv(x)); }

    StdConv2dSame conv{nullptr};
    GroupNormAct norm{nullptr};
};
TORCH_MODULE(DownsampleConv);

/// ResNetV2's non-pre-activation bottleneck: conv-norm (x3, stride on the 3x3), the residual
/// add, then ReLU.
class BottleneckImpl : public torch::nn::Module {
public:
    BottleneckImpl(std::int64_t inChannels, std::int64_t outChannels, std::int64_t stride, bool projectShortcut);
    torch::Tensor forward(const torch::Tensor& x);

    DownsampleConv downsample{nullptr};
    StdConv2dSame conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
    GroupNormAct norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
};
TORCH_MODULE(Bottleneck);

/// A stage: its bottlenecks under "blocks"; the first may change width and stride.
class ResNetStageImpl : public torch::nn::Module {
public:
    ResNetStageImpl(std::int64_t inChannels, std::int64_t outChannels, std::int64_t stride, std::int64_t depth);
    torch::Tensor forward(const torch::Tensor& x);

    torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(ResNetStage);

/// The 7x7 stride-2 convolution, norm with ReLU and 3x3 stride-2 max pool, all 'SAME' padded.
class ResNetStemImpl : public torch::nn::Module {
public:
    ResNetStemImpl(std::int64_t inChannels, std::int64_t outChannels);
    torch::Tensor forward(const torch::Tensor& x);

    StdConv2dSame conv{nullptr};
    GroupNormAct norm{nullptr};
};
TORCH_MODULE(ResNetStem);

/// ResNetV2 as the hybrid's backbone: stem and stages of bottlenecks, no final norm or head.
class ResNetV2BackboneImpl : public torch::nn::Module {
public:
    ResNetV2BackboneImpl(const std::vector<std::int64_t>& layers, std::int64_t inChannels);
    torch::Tensor forward(const torch::Tensor& x);

    ResNetStem stem{nullptr};
    torch::nn::ModuleList stages{nullptr};
};
TORCH_MODULE(ResNetV2Backbone);

/// timm's HybridEmbed: backbone features, then `proj` (kernel and stride patch_size) to tokens.
/// With no stages the backbone is the stem itself, so its keys lose the "stem." level, as in timm.
class HybridEmbedImpl : public TokenEmbedder {
public:
    explicit HybridEmbedImpl(const HybridOptions& options);
    torch::Tensor forward(const torch::Tensor& images) override;
    std::array<std::int64_t, 2> gridSize() const override { return m_grid; }
    /// Backbone features (N, C, h, w) before the projection.
    torch::Tensor features(const torch::Tensor& images);
    /// The image-facing convolution of the backbone.
    StdConv2dSame stemConv() const;
    /// Keep the backbone's last feature map of each forward pass (Grad-CAM reads it, with its
    /// graph); off by default, and then nothing is kept.
    void setFeatureCapture(bool on)
    {
        m_captureFeatures = on;
        m_capturedFeatures = torch::Tensor();
    }
    const torch::Tensor& capturedFeatures() const { return m_capturedFeatures; }

    /// Exactly one of these is registered as "backbone".
    ResNetV2Backbone resnet{nullptr};
    ResNetStem stemOnly{nullptr};
    torch::nn::Conv2d proj{nullptr};

private:
    std::array<std::int64_t, 2> m_grid{};
    bool m_captureFeatures = false;
    torch::Tensor m_capturedFeatures;
};
TORCH_MODULE(HybridEmbed);

class HybridVisionTransformerImpl : public VisionTransformerImpl {
public:
    explicit HybridVisionTransformerImpl(const HybridOptions& options);

    /// Resizes pos_embed (ViT's filter) and adapts the backbone's stem convolution, not
    /// patch_embed.proj, to another channel count.
    void adaptStateDict(StateDict& stateDict, std::vector<std::string>& notes) const override;

    HybridEmbedImpl& hybridEmbed() const;
    const HybridOptions& hybridOptions() const { return m_hybrid; }

private:
    HybridOptions m_hybrid;
};
TORCH_MODULE(HybridVisionTransformer);

/// The state-dict key of the backbone's image-facing convolution for these options.
std::string hybridStemConvKey(const HybridOptions& options);

void registerHybridFamily(ModelRegistry& registry);

} // namespace vitlab
