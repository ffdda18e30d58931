#pragma once

// TNT: timm's Transformer in Transformer (timm/models/tnt.py, the current non-legacy layout). An
// inner transformer attends over the "pixels" (sub-patch embeddings) of each patch, an outer one
// over the patches; every block folds the pixels back into their patch token.
#include "core/models/layers.h"
#include "core/models/model_args.h"

namespace vitlab {

class ModelRegistry;

/// timm's TNT constructor arguments that ViTLab supports.
struct TntOptions {
    std::array<std::int64_t, 2> img_size{224, 224};
    std::int64_t patch_size = 16;
    std::int64_t in_chans = 3;
    std::int64_t num_classes = 1000;
    /// "token" (class token), "avg" (mean of patch tokens) or "" (no pooling).
    std::string global_pool = "token";
    std::int64_t embed_dim = 768;
    /// Width of a pixel embedding (timm's inner_dim).
    std::int64_t inner_dim = 48;
    std::int64_t depth = 12;
    std::int64_t num_heads_inner = 4;
    std::int64_t num_heads_outer = 12;
    double mlp_ratio = 4.0;
    bool qkv_bias = false;
    double drop_rate = 0.0;
    double pos_drop_rate = 0.0;
    double proj_drop_rate = 0.0;
    double attn_drop_rate = 0.0;
    double drop_path_rate = 0.0;
    /// Stride of the 7x7 pixel-embedding convolution inside each patch.
    std::int64_t first_stride = 4;

    /// Reads the arguments it knows; the caller calls args.rejectUnknown() when done.
    static TntOptions fromArgs(ModelArgs& args);

    /// Patches per side (height, width).
    std::array<std::int64_t, 2> gridSize() const { return {img_size[0] / patch_size, img_size[1] / patch_size}; }
    std::int64_t numPatches() const { return gridSize()[0] * gridSize()[1]; }
    /// Pixels per patch side: ceil(patch_size / first_stride), timm's new_patch_size.
    std::int64_t pixelSide() const { return (patch_size + first_stride - 1) / first_stride; }
    std::int64_t numPixels() const { return pixelSide() * pixelSide(); }
};

/// TNT's attention: separate "qk" and "v" projections, then "proj". Used over the pixels of a
/// patch (attn_in) and over the patch tokens (attn_out).
class TntAttentionImpl : public torch::nn::Module, public AttentionCaptureSite {
public:
    TntAttentionImpl(std::int64_t dim, std::int64_t numHeads, bool qkvBias, double attnDrop, double projDrop);
    torch::Tensor forward(const torch::Tensor& x);

    torch::nn::Linear qk{nullptr}, v{nullptr}, proj{nullptr};

private:
    std::int64_t m_numHeads;
    std::int64_t m_headDim;
    double m_scale;
    double m_attnDrop;
    double m_projDrop;
};
TORCH_MODULE(TntAttention);

/// One TNT block: the inner transformer on the pixels, the pixels projected into their patch
/// token (norm1_proj, proj, norm2_proj), then the outer transformer on the patch tokens.
class TntBlockImpl : public torch::nn::Module {
public:
    TntBlockImpl(const TntOptions& options, double dropPath);
    /// (pixels (N*patches, pixels, inner_dim), patches (N, 1 + patches, embed_dim)) to the same.
    std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& pixels, const torch::Tensor& patches);

    torch::nn::LayerNorm norm_in{nullptr}, norm_mlp_in{nullptr}, norm1_proj{nullptr}, norm2_proj{nullptr};
    TntAttention attn_in{nullptr}, attn_out{nullptr};
    Mlp mlp_in{nullptr}, mlp{nullptr};
    torch::nn::Linear proj{nullptr};
    torch::nn::LayerNorm norm_out{nullptr}, norm_mlp{nullptr};
    DropPath drop_path{nullptr};
};
TORCH_MODULE(TntBlock);

/// Cuts the image into patches, then embeds each patch on its own with a 7x7 convolution
/// (padding 3, stride first_stride): zero padding at every patch border, nothing leaks between
/// patches. Adds pixel_pos and returns (N*patches, pixels, inner_dim).
class PixelEmbedImpl : public torch::nn::Module {
public:
    explicit PixelEmbedImpl(const TntOptions& options);
    torch::Tensor forward(const torch::Tensor& images, const torch::Tensor& pixelPos);

    torch::nn::Conv2d proj{nullptr};

private:
    std::int64_t m_patchSize;
};
TORCH_MODULE(PixelEmbed);

class TntImpl : public ClassifierImpl {
public:
    explicit TntImpl(const TntOptions& options);

    /// The patch tokens after the final norm, (N, 1 + patches, embed_dim).
    torch::Tensor forward_features(const torch::Tensor& images) override;
    torch::Tensor forward_head(const torch::Tensor& features, bool preLogits = false) override;

    std::int64_t numClasses() const override { return m_options.num_classes; }
    void resetClassifier(std::int64_t classes) override;
    int numUnits() const override { return static_cast<int>(m_options.depth); }
    ParameterGroup parameterGroup(const std::string& parameterName) const override;
    /// timm's filter: renames the official checkpoints' keys (outer_pos, inner_attn, ...),
    /// resizes patch_pos for another patch grid and pixel_pos for another pixel grid, and adapts
    /// pixel_embed.proj to the input channels.
    void adaptStateDict(StateDict& stateDict, std::vector<std::string>& notes) const override;

    /// The patch-level attention of each block (attn_out): (N, heads, 1 + patches, 1 + patches).
    std::vector<AttentionCaptureSite*> outerAttentionSites() const;
    /// The pixel-level attention of each block (attn_in): (N*patches, heads, pixels, pixels).
    std::vector<AttentionCaptureSite*> innerAttentionSites() const;

    std::array<std::int64_t, 2> gridSize() const { return m_options.gridSize(); }
    const TntOptions& options() const { return m_options; }

    PixelEmbed pixel_embed{nullptr};
    torch::nn::LayerNorm norm1_proj{nullptr};
    torch::nn::Linear proj{nullptr};
    torch::nn::LayerNorm norm2_proj{nullptr};
    torch::Tensor cls_token, patch_pos, pixel_pos;
    torch::nn::ModuleList blocks{nullptr};
    torch::nn::LayerNorm norm{nullptr};
    torch::nn::Linear head{nullptr};

private:
    torch::nn::Linear makeHead(std::int64_t classes) const;

    TntOptions m_options;
};
TORCH_MODULE(Tnt);

void registerTntFamily(ModelRegistry& registry);

} // namespace vitlab
