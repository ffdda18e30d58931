#include "core/models/hybrid.h"

#include "core/models/registry.h"
#include "core/models/same_padding.h"

#include <cmath>

namespace vitlab {

namespace {

constexpr std::int64_t kStemChannels = 64;
constexpr std::int64_t kStemKernel = 7;
constexpr std::int64_t kGroups = 32;
/// ResNetV2's stage widths; a bottleneck's middle width is a quarter of its stage's.
constexpr std::array<std::int64_t, 4> kStageChannels{256, 512, 1024, 2048};

struct StagePlan {
    std::int64_t in = 0, out = 0, mid = 0, stride = 1, blocks = 0;
    /// Input and output feature sizes (height, width).
    std::array<std::int64_t, 2> inSize{}, outSize{};
};

/// The backbone's shapes, derived once for building, counting parameters and counting MACs.
struct BackbonePlan {
    std::array<std::int64_t, 2> stemConvSize{};
    std::vector<StagePlan> stages;
    std::int64_t featureChannels = kStemChannels;
    std::array<std::int64_t, 2> featureSize{};
};

BackbonePlan planBackbone(const HybridOptions& o)
{
    BackbonePlan plan;
    plan.stemConvSize = {sameOutput(o.vit.img_size[0], 2), sameOutput(o.vit.img_size[1], 2)};
    auto size = std::array<std::int64_t, 2>{sameOutput(plan.stemConvSize[0], 2), sameOutput(plan.stemConvSize[1], 2)};
    auto channels = kStemChannels;
    for (std::size_t i = 0; i < o.backbone_layers.size(); ++i) {
        StagePlan stage;
        stage.in = channels;
        stage.out = kStageChannels[i];
        stage.mid = stage.out / 4;
        stage.stride = i == 0 ? 1 : 2;
        stage.blocks = o.backbone_layers[i];
        stage.inSize = size;
        size = {sameOutput(size[0], stage.stride), sameOutput(size[1], stage.stride)};
        stage.outSize = size;
        channels = stage.out;
        plan.stages.push_back(stage);
    }
    plan.featureChannels = channels;
    plan.featureSize = size;
    return plan;
}

} // namespace

HybridOptions HybridOptions::fromArgs(ModelArgs& args, const nlohmann::json& json)
{
    HybridOptions o;
    o.vit = VitOptions::fromArgs(args);
    // timm's hybrid models default to 1-pixel patches of the backbone's feature map.
    if (const auto it = json.find("patch_size"); it == json.end() || it->is_null())
        o.vit.patch_size = 1;
    // An empty list is meaningful here (stem only), so this is not ModelArgs::getIntList.
    o.backbone_layers = args.get<std::vector<std::int64_t>>("backbone_layers", o.backbone_layers);
    if (o.backbone_layers.size() > kStageChannels.size())
        throw ConfigError("backbone_layers has " + std::to_string(o.backbone_layers.size())
                          + " stages; ResNetV2 has at most 4");
    for (const auto blocks : o.backbone_layers) {
        if (blocks < 1 || blocks > 64)
            throw ConfigError("backbone_layers must hold block counts between 1 and 64");
    }
    const auto feature = planBackbone(o).featureSize;
    if (feature[0] % o.vit.patch_size != 0 || feature[1] % o.vit.patch_size != 0)
        throw ConfigError("the backbone's " + std::to_string(feature[0]) + "x" + std::to_string(feature[1])
                          + " feature map is not divisible by the patch size " + std::to_string(o.vit.patch_size));
    return o;
}

StdConv2dSameImpl::StdConv2dSameImpl(std::int64_t inChannels, std::int64_t outChannels, std::int64_t kernel,
                                     std::int64_t stride, double eps)
    : m_kernel(kernel)
    , m_stride(stride)
    , m_eps(eps)
{
    weight = register_parameter("weight", torch::empty({outChannels, inChannels, kernel, kernel}));
    // PyTorch's Conv2d default; ResNetV2 replaces it, timm's stem-only backbone keeps it.
    torch::NoGradGuard noGrad;
    torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
}

torch::Tensor StdConv2dSameImpl::standardizedWeight() const
{
    const auto flat = weight.reshape({weight.size(0), -1});
    const auto centred = flat - flat.mean(1, /*keepdim=*/true);
    const auto variance = centred.pow(2).mean(1, /*keepdim=*/true);
    return (centred / (variance + m_eps).sqrt()).reshape_as(weight);
}

torch::Tensor StdConv2dSameImpl::forward(const torch::Tensor& x)
{
    return conv2dWithFloatSums(padSame(x, m_kernel, m_stride), standardizedWeight(), {}, m_stride);
}

GroupNormActImpl::GroupNormActImpl(std::int64_t channels, bool applyAct)
    : m_applyAct(applyAct)
{
    weight = register_parameter("weight", torch::ones({channels}));
    bias = register_parameter("bias", torch::zeros({channels}));
}

torch::Tensor GroupNormActImpl::forward(const torch::Tensor& x)
{
    auto y = torch::group_norm(normInput(x, weight), kGroups, weight, bias, 1e-5);
    return m_applyAct ? torch::relu(y) : y;
}

DownsampleConvImpl::DownsampleConvImpl(std::int64_t inChannels, std::int64_t outChannels, std::int64_t stride)
{
    conv = register_module("conv", StdConv2dSame(inChannels, outChannels, 1, stride));
    norm = register_module("norm", GroupNormAct(outChannels, /*applyAct=*/false));
}

BottleneckImpl::BottleneckImpl(std::int64_t inChannels, std::int64_t outChannels, std::int64_t stride,
                               bool projectShortcut)
{
    const auto mid = outChannels / 4;
    if (projectShortcut)
        downsample = register_module("downsample", DownsampleConv(inChannels, outChannels, stride));
    conv1 = register_module("conv1", StdConv2dSame(inChannels, mid, 1));
    norm1 = register_module("norm1", GroupNormAct(mid));
    conv2 = register_module("conv2", StdConv2dSame(mid, mid, 3, stride));
    norm2 = register_module("norm2", GroupNormAct(mid));
    conv3 = register_module("conv3", StdConv2dSame(mid, outChannels, 1));
    norm3 = register_module("norm3", GroupNormAct(outChannels, /*applyAct=*/false));
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x)
{
    const auto shortcut = downsample ? downsample(x) : x;
    auto y = norm1(conv1(x));
    y = norm2(conv2(y));
    y = norm3(conv3(y));
    return torch::relu(y + shortcut);
}

ResNetStageImpl::ResNetStageImpl(std::int64_t inChannels, std::int64_t outChannels, std::int64_t stride,
                                 std::int64_t depth)
{
    blocks = register_module("blocks", torch::nn::ModuleList());
    // timm gives the first block a projection shortcut even when neither width nor stride changes.
    for (std::int64_t i = 0; i < depth; ++i)
        blocks->push_back(Bottleneck(i == 0 ? inChannels : outChannels, outChannels, i == 0 ? stride : 1, i == 0));
}

torch::Tensor ResNetStageImpl::forward(const torch::Tensor& x)
{
    auto y = x;
    for (const auto& block : *blocks)
        y = block->as<BottleneckImpl>()->forward(y);
    return y;
}

ResNetStemImpl::ResNetStemImpl(std::int64_t inChannels, std::int64_t outChannels)
{
    conv = register_module("conv", StdConv2dSame(inChannels, outChannels, kStemKernel, 2));
    norm = register_module("norm", GroupNormAct(outChannels));
}

torch::Tensor ResNetStemImpl::forward(const torch::Tensor& x)
{
    return maxPool2dSame(norm(conv(x)), 3, 2);
}

ResNetV2BackboneImpl::ResNetV2BackboneImpl(const std::vector<std::int64_t>& layers, std::int64_t inChannels)
{
    stem = register_module("stem", ResNetStem(inChannels, kStemChannels));
    stages = register_module("stages", torch::nn::ModuleList());
    // Only the widths and strides matter here, not the image size.
    HybridOptions shape;
    shape.backbone_layers = layers;
    for (const auto& plan : planBackbone(shape).stages)
        stages->push_back(ResNetStage(plan.in, plan.out, plan.stride, plan.blocks));
    // timm's ResNetV2.init_weights(), which the ViT's init calls again with zero_init_last: Kaiming
    // normal (fan out) convolutions, unit norms, and each block's last norm zeroed so it starts
    // as its shortcut.
    for (auto& module : modules(/*include_self=*/false)) {
        if (auto* conv = module->as<StdConv2dSameImpl>()) {
            torch::NoGradGuard noGrad;
            torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
        } else if (auto* block = module->as<BottleneckImpl>()) {
            torch::NoGradGuard noGrad;
            block->norm3->weight.zero_();
        }
    }
}

torch::Tensor ResNetV2BackboneImpl::forward(const torch::Tensor& x)
{
    auto y = stem(x);
    for (const auto& stage : *stages)
        y = stage->as<ResNetStageImpl>()->forward(y);
    return y;
}

HybridEmbedImpl::HybridEmbedImpl(const HybridOptions& options)
{
    const auto& o = options.vit;
    if (options.backbone_layers.empty())
        stemOnly = register_module("backbone", ResNetStem(o.in_chans, kStemChannels));
    else
        resnet = register_module("backbone", ResNetV2Backbone(options.backbone_layers, o.in_chans));
    const auto plan = planBackbone(options);
    m_grid = {plan.featureSize[0] / o.patch_size, plan.featureSize[1] / o.patch_size};
    // timm drops the projection's bias when a norm follows the embedding (pre_norm).
    proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(plan.featureChannels, o.embed_dim,
                                                                              o.patch_size)
                                                         .stride(o.patch_size)
                                                         .bias(!o.pre_norm)));
}

torch::Tensor HybridEmbedImpl::features(const torch::Tensor& images)
{
    return resnet ? resnet(images) : stemOnly(images);
}

torch::Tensor HybridEmbedImpl::forward(const torch::Tensor& images)
{
    auto backbone = features(images);
    if (m_captureFeatures)
        m_capturedFeatures = backbone;
    return applyConv2d(proj, backbone).flatten(2).transpose(1, 2);
}

StdConv2dSame HybridEmbedImpl::stemConv() const
{
    return resnet ? resnet->stem->conv : stemOnly->conv;
}

HybridVisionTransformerImpl::HybridVisionTransformerImpl(const HybridOptions& options)
    : VisionTransformerImpl(options.vit, std::make_shared<HybridEmbedImpl>(options))
    , m_hybrid(options)
{
}

HybridEmbedImpl& HybridVisionTransformerImpl::hybridEmbed() const
{
    return static_cast<HybridEmbedImpl&>(*patch_embed);
}

std::string hybridStemConvKey(const HybridOptions& options)
{
    return options.backbone_layers.empty() ? "patch_embed.backbone.conv.weight"
                                           : "patch_embed.backbone.stem.conv.weight";
}

void HybridVisionTransformerImpl::adaptStateDict(StateDict& stateDict, std::vector<std::string>& notes) const
{
    VisionTransformerImpl::adaptStateDict(stateDict, notes);

    // Grey (or more channels) from an RGB stem, as timm's adapt_input_conv. Weight standardisation
    // makes summing the raw kernels the same as summing the standardised ones, but then
    // renormalises the sum per output channel: the grey stem computes the RGB stem's response to
    // the grey image repeated, divided per channel by that summed kernel's standard deviation.
    // The stem's GroupNorm cancels the part of this scale shared within a group, not the rest,
    // so grey input is close to, not equal to, the RGB model on repeated grey. No 1-channel
    // standardised kernel can be exact: its variance is pinned to 1.
    const auto stemKey = hybridStemConvKey(m_hybrid);
    if (auto it = stateDict.find(stemKey); it != stateDict.end() && it->second.dim() == 4
        && it->second.size(1) != m_options.in_chans) {
        const auto from = it->second.size(1);
        it->second = adaptInputConv(it->second, m_options.in_chans);
        notes.push_back(stemKey + " adapted from " + std::to_string(from) + " to "
                        + std::to_string(m_options.in_chans) + " input channels");
    }
}

namespace {

HybridOptions hybridOptions(const nlohmann::json& json)
{
    ModelArgs args(json, "hybrid");
    auto options = HybridOptions::fromArgs(args, json);
    args.rejectUnknown();
    return options;
}

std::int64_t hybridParameters(const nlohmann::json& json)
{
    const auto o = hybridOptions(json);
    const auto plan = planBackbone(o);
    const auto d = o.vit.embed_dim;
    std::int64_t backbone = kStemChannels * o.vit.in_chans * kStemKernel * kStemKernel + 2 * kStemChannels;
    for (const auto& s : plan.stages) {
        const auto body = [&](std::int64_t in) {
            return in * s.mid + 2 * s.mid + s.mid * s.mid * 9 + 2 * s.mid + s.mid * s.out + 2 * s.out;
        };
        backbone += body(s.in) + s.in * s.out + 2 * s.out + (s.blocks - 1) * body(s.out);
    }
    const auto p = o.vit.patch_size;
    const auto proj = plan.featureChannels * d * p * p + (o.vit.pre_norm ? 0 : d);
    const auto prefix = o.vit.class_token ? 1 : 0;
    const auto grid = (plan.featureSize[0] / p) * (plan.featureSize[1] / p);
    return backbone + proj + prefix * d + (grid + prefix) * d + vitEncoderParameters(o.vit);
}

std::int64_t hybridMacs(const nlohmann::json& json)
{
    const auto o = hybridOptions(json);
    const auto plan = planBackbone(o);
    const auto area = [](const std::array<std::int64_t, 2>& size) { return size[0] * size[1]; };
    std::int64_t macs = area(plan.stemConvSize) * kStemChannels * o.vit.in_chans * kStemKernel * kStemKernel;
    for (const auto& s : plan.stages) {
        for (std::int64_t i = 0; i < s.blocks; ++i) {
            const bool first = i == 0;
            const auto in = first ? s.in : s.out;
            const auto inArea = first ? area(s.inSize) : area(s.outSize);
            macs += inArea * in * s.mid                       // conv1, before the stride
                + area(s.outSize) * s.mid * s.mid * 9          // conv2
                + area(s.outSize) * s.mid * s.out              // conv3
                + (first ? area(s.outSize) * in * s.out : 0); // downsample
        }
    }
    const auto p = o.vit.patch_size;
    const auto grid = (plan.featureSize[0] / p) * (plan.featureSize[1] / p);
    const auto tokens = grid + (o.vit.class_token ? 1 : 0);
    macs += grid * o.vit.embed_dim * plan.featureChannels * p * p;
    return macs + vitEncoderMacs(o.vit, tokens) + o.vit.embed_dim * o.vit.num_classes;
}

nlohmann::json hybridArgs(std::int64_t imgSize, std::vector<std::int64_t> layers, std::int64_t patch,
                          std::int64_t dim, std::int64_t depth, std::int64_t heads, std::int64_t inChans = 3)
{
    return {{"img_size", imgSize}, {"backbone_layers", layers}, {"patch_size", patch}, {"embed_dim", dim},
            {"depth", depth},      {"num_heads", heads},        {"in_chans", inChans}};
}

} // namespace

void registerHybridFamily(ModelRegistry& registry)
{
    registry.addFamily({"hybrid", "ResNet+ViT", kInceptionMean, kInceptionStd,
                        [](const nlohmann::json& json) -> Classifier {
                            return std::make_shared<HybridVisionTransformerImpl>(hybridOptions(json));
                        },
                        hybridMacs, hybridParameters});

    // timm's hybrids with ResNetV2 backbones (timm/models/vision_transformer_hybrid.py).
    registry.addModel("vit_tiny_r_s16_p8_224", "hybrid", hybridArgs(224, {}, 8, 192, 12, 3),
                      "R+ViT-Ti: ResNet stem (stride 4), 8-px feature patches, at 224 px", kInceptionMean,
                      kInceptionStd);
    registry.addModel("vit_small_r26_s32_224", "hybrid", hybridArgs(224, {2, 2, 2, 2}, 1, 384, 12, 6),
                      "R26+ViT-S/S32: ResNet-26 backbone (stride 32) at 224 px", kInceptionMean, kInceptionStd);

    // Small presets: a one-stage backbone for 32 px colour, the stem alone for 28 px grey; all
    // leave a grid of at least 7x7 tokens.
    registry.addModel("vit_tiny_d6_r5_s4_32", "hybrid", hybridArgs(32, {1}, 1, 192, 6, 3),
                      "R5+ViT, width 192, 6 blocks, 3 heads: stem and one bottleneck (stride 4), 32 px colour",
                      kInceptionMean, kInceptionStd);
    // Convolutions give the 7x7 tokens the local features a linear 4-px patch lacks: on
    // Fashion-MNIST this preset is 5 points ahead of vit_micro_patch4_28 after one epoch, for 40%
    // more time per epoch.
    registry.addModel("vit_micro_r5_s4_28", "hybrid", hybridArgs(28, {1}, 1, 96, 4, 3, 1),
                      "R5+ViT, width 96, 4 blocks, 3 heads: stem and one bottleneck (stride 4), 28 px grey "
                      "(Fashion-MNIST default)",
                      {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});
    // The same with 2 blocks: twice the steps per minute, so a float32 CPU fits twice the epochs
    // into a time budget (Fashion-MNIST in 15 minutes on an AVX2 Zen 3, at batch 64: 91.0% against
    // the 4-block preset's 89.8%).
    registry.addModel("vit_micro_d2_r5_s4_28", "hybrid", hybridArgs(28, {1}, 1, 96, 2, 3, 1),
                      "R5+ViT, width 96, 2 blocks, 3 heads: stem and one bottleneck (stride 4), 28 px grey "
                      "(Fashion-MNIST default for float32 on a CPU)",
                      {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});
    registry.addModel("vit_tiny_d6_r_s4_p1_28", "hybrid", hybridArgs(28, {}, 1, 192, 6, 3, 1),
                      "R+ViT, width 192, 6 blocks, 3 heads: ResNet stem (stride 4), 28 px grey", {0.5, 0.5, 0.5},
                      {0.5, 0.5, 0.5});
}

} // namespace vitlab
