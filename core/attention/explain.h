#pragma once

// Where a model looks, for every family: raw attention of a layer and head, attention rollout,
// gradient-weighted attention relevance and Grad-CAM, as one map over the model's token grid.
#include "core/attention/rollout.h"
#include "core/models/classifier.h"

#include <torch/torch.h>

#include <optional>
#include <string>
#include <utility>

namespace vitlab {

enum class ExplainMethod {
    /// The softmax attention of one block: from the class token, or from a chosen query point.
    Attention,
    /// Attention rollout (Abnar & Zuidema, 2020) as in shared/fixtures/timm/README.md.
    Rollout,
    /// Gradient-weighted attention relevance for a class (Chefer et al., ICCV 2021): per block
    /// the heads' mean of relu(grad * attention), accumulated as R += A R from R = I.
    Relevance,
    /// Grad-CAM on the last stage, for the families whose attention is local: Swin's final grid
    /// and the hybrid's backbone features.
    GradCam,
};

/// "attention", "rollout", "relevance" or "gradcam"; throws ConfigError otherwise.
ExplainMethod parseExplainMethod(const std::string& name);
std::string explainMethodName(ExplainMethod method);

/// Which prefix token's row a ViT-style map reads (a distilled DeiT has two).
enum class QueryToken { Class, Distillation, Mean };

struct ExplainOptions {
    ExplainMethod method = ExplainMethod::Rollout;
    /// Attention: the block (negative counts from the end: -1 is the last).
    int layer = -1;
    /// Attention: one head, or -1 to fuse the heads with `fusion`.
    int head = -1;
    HeadFusion fusion = HeadFusion::Mean;
    /// Rollout: share of the weakest weights per row dropped.
    double discardRatio = 0.0;
    QueryToken token = QueryToken::Class;
    /// Attention: the query is the patch under this point of the image, (x, y) as fractions of
    /// its width and height, instead of the class token.
    std::optional<std::pair<double, double>> queryPoint;
    /// Relevance and Grad-CAM: the class to explain; -1 is the predicted one.
    int classIndex = -1;
    /// TNT: the inner (pixel) attention instead of the outer (patch) attention.
    bool innerAttention = false;
};

struct Explanation {
    /// (grid_h, grid_w), float, in [0, 1] with its maximum at 1 (all zero when nothing stands out).
    torch::Tensor map;
    /// (classes) softmax of the logits.
    torch::Tensor probabilities;
    /// The class explained (relevance, Grad-CAM) or predicted (otherwise).
    std::int64_t classIndex = 0;
    /// Blocks with attention, and heads of the chosen block, for the app's selectors.
    int layers = 0;
    int heads = 0;
};

/// Explains `image` (1, C, H, W), preprocessed as for evaluation. The model is put in eval mode;
/// attention capture is switched on only for the call. Throws ConfigError when the method does
/// not apply to the family (rollout and relevance need global attention), ShapeError for a bad
/// image.
Explanation explain(ClassifierImpl& model, const torch::Tensor& image, const ExplainOptions& options);

/// The attention map of every head of one block, (heads, grid_h, grid_w), each scaled to a
/// maximum of 1: the app's grid of heads. Same query choices as ExplainMethod::Attention.
torch::Tensor attentionPerHead(ClassifierImpl& model, const torch::Tensor& image, ExplainOptions options);

} // namespace vitlab
