#pragma once

// ViT: timm's VisionTransformer (timm/models/vision_transformer.py), class-token or average pooling.
#include "core/models/layers.h"
#include "core/models/model_args.h"

#include <optional>

namespace vitlab {

class ModelRegistry;

/// timm's VisionTransformer constructor arguments that ViTLab supports.
struct VitOptions {
    std::array<std::int64_t, 2> img_size{224, 224};
    std::int64_t patch_size = 16;
    std::int64_t in_chans = 3;
    std::int64_t num_classes = 1000;
    /// "token" (class token), "avg" (mean of patch tokens) or "" (no pooling).
    std::string global_pool = "token";
    std::int64_t embed_dim = 768;
    std::int64_t depth = 12;
    std::int64_t num_heads = 12;
    double mlp_ratio = 4.0;
    bool qkv_bias = true;
    bool qk_norm = false;
    double init_values = 0.0;
    bool class_token = true;
    bool pre_norm = false;
    /// timm's None: a LayerNorm after pooling exactly when global_pool is "avg".
    std::optional<bool> fc_norm;
    double drop_rate = 0.0;
    double pos_drop_rate = 0.0;
    double proj_drop_rate = 0.0;
    double attn_drop_rate = 0.0;
    double drop_path_rate = 0.0;

    /// Reads the arguments it knows; the caller calls args.rejectUnknown() when done.
    static VitOptions fromArgs(ModelArgs& args);
};

class VisionTransformerImpl : public ClassifierImpl {
public:
    /// `embedder` replaces the patch embedding (the hybrid's backbone); `extraPrefixTokens` are
    /// tokens a subclass inserts after the class token (DeiT's distillation token).
    explicit VisionTransformerImpl(const VitOptions& options, std::shared_ptr<TokenEmbedder> embedder = nullptr,
                                   std::int64_t extraPrefixTokens = 0);

    torch::Tensor forward_features(const torch::Tensor& images) override;
    torch::Tensor forward_head(const torch::Tensor& features, bool preLogits = false) override;

    std::int64_t numClasses() const override { return m_options.num_classes; }
    void resetClassifier(std::int64_t classes) override;
    int numUnits() const override { return static_cast<int>(m_options.depth); }
    ParameterGroup parameterGroup(const std::string& parameterName) const override;
    void adaptStateDict(StateDict& stateDict, std::vector<std::string>& notes) const override;

    /// Tokens before the patch tokens: class (and distillation) token.
    std::int64_t numPrefixTokens() const { return m_numPrefixTokens; }
    std::array<std::int64_t, 2> gridSize() const { return patch_embed->gridSize(); }
    const VitOptions& options() const { return m_options; }

    std::shared_ptr<TokenEmbedder> patch_embed;
    torch::Tensor cls_token, pos_embed;
    torch::nn::ModuleList blocks{nullptr};
    torch::nn::LayerNorm norm_pre{nullptr}, norm{nullptr}, fc_norm{nullptr};
    torch::nn::Linear head{nullptr};

protected:
    /// Tokens inserted after the class token; none for plain ViT.
    virtual std::vector<torch::Tensor> extraPrefixTokens(std::int64_t batch) const;
    torch::nn::Linear makeHead(std::int64_t classes) const;
    /// The blocks in order; chained through the fused kernels in bf16 inference.
    torch::Tensor forwardBlocks(torch::Tensor x);

    VitOptions m_options;
    std::int64_t m_numPrefixTokens = 0;
};
TORCH_MODULE(VisionTransformer);

/// The multiply-accumulates of a ViT encoder over `tokens` tokens, head excluded.
std::int64_t vitEncoderMacs(const VitOptions& options, std::int64_t tokens);
/// Parameters of a ViT's blocks, final norms and heads (`heads` classifier heads), without the
/// token embedding, tokens and position embedding.
std::int64_t vitEncoderParameters(const VitOptions& options, std::int64_t heads = 1);

void registerVitFamily(ModelRegistry& registry);

} // namespace vitlab
