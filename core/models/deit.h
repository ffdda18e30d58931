#pragma once

// DeiT with distillation: timm's VisionTransformerDistilled (timm/models/deit.py), a ViT with a
// distillation token and a second head.
#include "core/models/vit.h"

namespace vitlab {

class VisionTransformerDistilledImpl : public VisionTransformerImpl {
public:
    explicit VisionTransformerDistilledImpl(const VitOptions& options);

    /// In eval (and in training unless distilledTraining) the mean of both heads, as timm.
    torch::Tensor forward_head(const torch::Tensor& features, bool preLogits = false) override;
    /// Both heads' logits: the class head and the distillation head, for hard distillation.
    std::pair<torch::Tensor, torch::Tensor> forwardBothHeads(const torch::Tensor& features);
    void resetClassifier(std::int64_t classes) override;

    torch::Tensor dist_token;
    torch::nn::Linear head_dist{nullptr};

protected:
    std::vector<torch::Tensor> extraPrefixTokens(std::int64_t batch) const override;
};
TORCH_MODULE(VisionTransformerDistilled);

/// DeiT's hard distillation: the class head learns the labels, the distillation head the
/// teacher's top-1 class; each term weighs half. `labels` are class indices (N) or soft targets
/// (N, classes, from mixup); `teacherLogits` are (N, classes).
torch::Tensor hardDistillationLoss(const torch::Tensor& classLogits, const torch::Tensor& distillationLogits,
                                   const torch::Tensor& labels, const torch::Tensor& teacherLogits);

void registerDeitFamily(ModelRegistry& registry);

} // namespace vitlab
