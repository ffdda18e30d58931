#include "core/models/deit.h"

#include "core/errors.h"
#include "core/models/registry.h"

namespace vitlab {

VisionTransformerDistilledImpl::VisionTransformerDistilledImpl(const VitOptions& options)
    : VisionTransformerImpl(options, nullptr, /*extraPrefixTokens=*/1)
{
    if (options.global_pool != "token" || !options.class_token)
        throw ConfigError("distilled DeiT pools the class and distillation tokens: global_pool must be \"token\"");
    dist_token = register_parameter("dist_token", torch::zeros({1, 1, options.embed_dim}));
    truncNormal_(dist_token, 0.02);
    if (options.num_classes > 0)
        head_dist = register_module("head_dist", makeHead(options.num_classes));
}

std::vector<torch::Tensor> VisionTransformerDistilledImpl::extraPrefixTokens(std::int64_t batch) const
{
    return {dist_token.expand({batch, -1, -1})};
}

std::pair<torch::Tensor, torch::Tensor> VisionTransformerDistilledImpl::forwardBothHeads(const torch::Tensor& features)
{
    if (!head)
        throw ConfigError("this model has no classifier head (num_classes is 0)");
    return {applyLinear(head, features.select(1, 0)), applyLinear(head_dist, features.select(1, 1))};
}

torch::Tensor VisionTransformerDistilledImpl::forward_head(const torch::Tensor& features, bool preLogits)
{
    if (preLogits || !head)
        return (features.select(1, 0) + features.select(1, 1)) / 2;
    const auto [classLogits, distLogits] = forwardBothHeads(features);
    return (classLogits + distLogits) / 2;
}

void VisionTransformerDistilledImpl::resetClassifier(std::int64_t classes)
{
    VisionTransformerImpl::resetClassifier(classes);
    const bool registered = named_children().contains("head_dist");
    if (classes > 0) {
        head_dist = registered ? replace_module("head_dist", makeHead(classes))
                               : register_module("head_dist", makeHead(classes));
    } else if (registered) {
        unregister_module("head_dist");
        head_dist = nullptr;
    }
}

torch::Tensor hardDistillationLoss(const torch::Tensor& classLogits, const torch::Tensor& distillationLogits,
                                   const torch::Tensor& labels, const torch::Tensor& teacherLogits)
{
    if (teacherLogits.sizes() != distillationLogits.sizes())
        throw ShapeError("the teacher's logits must have the student's shape (batch, classes)");
    const auto classLoss = labels.dim() == 2
        ? -(labels * torch::log_softmax(classLogits, -1)).sum(-1).mean()
        : torch::nn::functional::cross_entropy(classLogits, labels);
    const auto teacherLabels = teacherLogits.argmax(-1).detach();
    return 0.5 * classLoss + 0.5 * torch::nn::functional::cross_entropy(distillationLogits, teacherLabels);
}

namespace {

std::int64_t deitParameters(const nlohmann::json& json)
{
    ModelArgs args(json, "deit");
    const auto o = VitOptions::fromArgs(args);
    const auto patches = (o.img_size[0] / o.patch_size) * (o.img_size[1] / o.patch_size);
    const auto embed = o.embed_dim * o.in_chans * o.patch_size * o.patch_size + (o.pre_norm ? 0 : o.embed_dim);
    return embed + 2 * o.embed_dim + (patches + 2) * o.embed_dim + vitEncoderParameters(o, 2);
}

std::int64_t deitMacs(const nlohmann::json& json)
{
    ModelArgs args(json, "deit");
    const auto o = VitOptions::fromArgs(args);
    const auto patches = (o.img_size[0] / o.patch_size) * (o.img_size[1] / o.patch_size);
    const auto embed = patches * o.embed_dim * o.in_chans * o.patch_size * o.patch_size;
    return embed + vitEncoderMacs(o, patches + 2) + 2 * o.embed_dim * o.num_classes;
}

nlohmann::json deitArgs(std::int64_t imgSize, std::int64_t patch, std::int64_t dim, std::int64_t depth,
                        std::int64_t heads, std::int64_t inChans = 3)
{
    return {{"img_size", imgSize}, {"patch_size", patch}, {"embed_dim", dim},
            {"depth", depth},      {"num_heads", heads},  {"in_chans", inChans}};
}

} // namespace

void registerDeitFamily(ModelRegistry& registry)
{
    registry.addFamily({"deit", "DeiT (distilled)", kImagenetMean, kImagenetStd,
                        [](const nlohmann::json& json) -> Classifier {
                            ModelArgs args(json, "deit");
                            const auto options = VitOptions::fromArgs(args);
                            args.rejectUnknown();
                            return std::make_shared<VisionTransformerDistilledImpl>(options);
                        },
                        deitMacs, deitParameters});
    registry.addModel("deit_tiny_distilled_patch16_224", "deit", deitArgs(224, 16, 192, 12, 3),
                      "DeiT-Ti distilled at 224 px", kImagenetMean, kImagenetStd);
    registry.addModel("deit_small_distilled_patch16_224", "deit", deitArgs(224, 16, 384, 12, 6),
                      "DeiT-S distilled at 224 px", kImagenetMean, kImagenetStd);
    registry.addModel("deit_tiny_d6_distilled_patch4_28", "deit", deitArgs(28, 4, 192, 6, 3, 1),
                      "distilled DeiT, width 192, 6 blocks, 3 heads, 4-px patches, 28 px grey", {0.5, 0.5, 0.5},
                      {0.5, 0.5, 0.5});
}

} // namespace vitlab
