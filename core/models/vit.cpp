#include "core/models/vit.h"

#include "core/models/fused_bf16.h"
#include "core/models/registry.h"

#include <algorithm>
#include <cmath>
#include <regex>

namespace vitlab {

VitOptions VitOptions::fromArgs(ModelArgs& args)
{
    VitOptions o;
    o.img_size = args.getSize("img_size", 224);
    o.patch_size = args.getInt("patch_size", o.patch_size, 1, 1024);
    o.in_chans = args.getInt("in_chans", o.in_chans, 1, 64);
    o.num_classes = args.getInt("num_classes", o.num_classes, 0, 1000000);
    o.global_pool = args.get<std::string>("global_pool", o.global_pool);
    if (o.global_pool != "token" && o.global_pool != "avg" && !o.global_pool.empty())
        throw ConfigError("global_pool must be \"token\", \"avg\" or \"\", not \"" + o.global_pool + "\"");
    o.embed_dim = args.getInt("embed_dim", o.embed_dim, 1, 65536);
    o.depth = args.getInt("depth", o.depth, 0, 1024);
    o.num_heads = args.getInt("num_heads", o.num_heads, 1, 1024);
    o.mlp_ratio = args.getDouble("mlp_ratio", o.mlp_ratio, 0.01, 64.0);
    o.qkv_bias = args.get<bool>("qkv_bias", o.qkv_bias);
    o.qk_norm = args.get<bool>("qk_norm", o.qk_norm);
    o.init_values = args.getDouble("init_values", o.init_values, 0.0, 1e3);
    o.class_token = args.get<bool>("class_token", o.class_token);
    o.pre_norm = args.get<bool>("pre_norm", o.pre_norm);
    o.fc_norm = args.getOptionalBool("fc_norm");
    o.drop_rate = args.getDouble("drop_rate", o.drop_rate, 0.0, 1.0);
    o.pos_drop_rate = args.getDouble("pos_drop_rate", o.pos_drop_rate, 0.0, 1.0);
    o.proj_drop_rate = args.getDouble("proj_drop_rate", o.proj_drop_rate, 0.0, 1.0);
    o.attn_drop_rate = args.getDouble("attn_drop_rate", o.attn_drop_rate, 0.0, 1.0);
    o.drop_path_rate = args.getDouble("drop_path_rate", o.drop_path_rate, 0.0, 1.0);
    if (o.global_pool == "token" && !o.class_token)
        throw ConfigError("global_pool \"token\" needs class_token: true (use \"avg\" without a class token)");
    if (o.embed_dim % o.num_heads != 0)
        throw ConfigError("embed_dim " + std::to_string(o.embed_dim) + " is not divisible by num_heads "
                          + std::to_string(o.num_heads));
    return o;
}

VisionTransformerImpl::VisionTransformerImpl(const VitOptions& options, std::shared_ptr<TokenEmbedder> embedder,
                                             std::int64_t extraPrefixTokens)
    : m_options(options)
    , m_numPrefixTokens((options.class_token ? 1 : 0) + extraPrefixTokens)
{
    m_imageSize = options.img_size;
    m_inputChannels = options.in_chans;
    const auto dim = options.embed_dim;
    if (!embedder)
        // timm drops the patch embedding's bias when a norm follows it (pre_norm).
        embedder = std::make_shared<PatchEmbedImpl>(options.img_size, options.patch_size, options.in_chans, dim,
                                                    /*flatten=*/true, /*bias=*/!options.pre_norm);
    patch_embed = register_module("patch_embed", embedder);
    if (options.class_token) {
        cls_token = register_parameter("cls_token", torch::zeros({1, 1, dim}));
        torch::NoGradGuard noGrad;
        cls_token.normal_(0.0, 1e-6);
    }
    pos_embed = register_parameter("pos_embed", torch::empty({1, patch_embed->numPatches() + m_numPrefixTokens, dim}));
    truncNormal_(pos_embed, 0.02);
    if (options.pre_norm)
        norm_pre = register_module("norm_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)));

    blocks = register_module("blocks", torch::nn::ModuleList());
    const auto rates = dropPathRates(options.drop_path_rate, options.depth);
    for (std::int64_t i = 0; i < options.depth; ++i) {
        auto block = Block(BlockOptions(dim, options.num_heads)
                               .mlp_ratio(options.mlp_ratio)
                               .qkv_bias(options.qkv_bias)
                               .qk_norm(options.qk_norm)
                               .init_values(options.init_values)
                               .proj_drop(options.proj_drop_rate)
                               .attn_drop(options.attn_drop_rate)
                               .drop_path(rates[static_cast<std::size_t>(i)]));
        blocks->push_back(block);
        initLinearTimm(block->attn->qkv);
        initLinearTimm(block->attn->proj);
        initLinearTimm(block->mlp->fc1);
        initLinearTimm(block->mlp->fc2);
    }
    const bool useFcNorm = options.fc_norm.value_or(options.global_pool == "avg");
    const auto layerNorm = torch::nn::LayerNormOptions({dim}).eps(1e-6);
    if (useFcNorm)
        fc_norm = register_module("fc_norm", torch::nn::LayerNorm(layerNorm));
    else
        norm = register_module("norm", torch::nn::LayerNorm(layerNorm));
    if (options.num_classes > 0)
        head = register_module("head", makeHead(options.num_classes));
}

torch::nn::Linear VisionTransformerImpl::makeHead(std::int64_t classes) const
{
    auto linear = torch::nn::Linear(m_options.embed_dim, classes);
    initLinearTimm(linear);
    return linear;
}

std::vector<torch::Tensor> VisionTransformerImpl::extraPrefixTokens(std::int64_t) const
{
    return {};
}

torch::Tensor VisionTransformerImpl::forward_features(const torch::Tensor& images)
{
    checkImageBatch(*this, images);
    auto x = patch_embed->forward(images);
    const auto batch = x.size(0);
    std::vector<torch::Tensor> parts;
    if (cls_token.defined())
        parts.push_back(cls_token.expand({batch, -1, -1}));
    for (auto& token : extraPrefixTokens(batch))
        parts.push_back(std::move(token));
    if (!parts.empty()) {
        parts.push_back(x);
        x = torch::cat(parts, 1);
    }
    x = x + pos_embed;
    x = applyDropout(x, m_options.pos_drop_rate, is_training());
    if (norm_pre)
        x = norm_pre(x);
    return norm ? norm(forwardBlocks(x)) : forwardBlocks(x);
}

torch::Tensor VisionTransformerImpl::forwardBlocks(torch::Tensor x)
{
    std::vector<BlockImpl*> chain;
    for (const auto& block : *blocks)
        chain.push_back(block->as<BlockImpl>());
    const bool allFused = !chain.empty() && fused::bf16InferenceApplies(x)
        && std::all_of(chain.begin(), chain.end(), [](const BlockImpl* b) { return b->fusedBf16Eligible(); });
    if (!allFused) {
        for (auto* block : chain)
            x = block->forward(x);
        return x;
    }
    // Each block's last residual add also normalises its output for the next block.
    auto normed = fused::layerNormToBf16(x, chain.front()->norm1->weight, chain.front()->norm1->bias,
                                         chain.front()->norm1->options.eps());
    for (std::size_t i = 0; i < chain.size(); ++i) {
        const auto next = i + 1 < chain.size() ? chain[i + 1]->norm1 : torch::nn::LayerNorm(nullptr);
        std::tie(x, normed) = chain[i]->forwardFusedBf16(x, normed, next);
    }
    return x;
}

torch::Tensor VisionTransformerImpl::forward_head(const torch::Tensor& features, bool preLogits)
{
    auto x = features;
    if (m_options.global_pool == "avg")
        x = features.narrow(1, m_numPrefixTokens, features.size(1) - m_numPrefixTokens).mean(1);
    else if (m_options.global_pool == "token")
        x = features.select(1, 0);
    if (fc_norm)
        x = fc_norm(x);
    x = applyDropout(x, m_options.drop_rate, is_training());
    if (preLogits || !head)
        return x;
    return applyLinear(head, x);
}

void VisionTransformerImpl::resetClassifier(std::int64_t classes)
{
    m_options.num_classes = classes;
    const bool registered = named_children().contains("head");
    if (classes > 0)
        head = registered ? replace_module("head", makeHead(classes)) : register_module("head", makeHead(classes));
    else if (registered)
        unregister_module("head"), head = nullptr;
}

ParameterGroup VisionTransformerImpl::parameterGroup(const std::string& name) const
{
    static const std::regex blockKey(R"(^blocks\.(\d+)\.)");
    std::smatch match;
    if (std::regex_search(name, match, blockKey))
        return {ParameterGroup::Role::Unit, std::stoi(match[1].str())};
    if (name.rfind("norm.", 0) == 0 || name.rfind("fc_norm.", 0) == 0 || name.rfind("head", 0) == 0)
        return {ParameterGroup::Role::Head, 0};
    return {ParameterGroup::Role::Stem, 0};
}

void VisionTransformerImpl::adaptStateDict(StateDict& stateDict, std::vector<std::string>& notes) const
{
    const auto isSquareGrid = [this](const torch::Tensor& posEmbed) {
        const auto tokens = posEmbed.dim() == 3 ? posEmbed.size(1) - m_numPrefixTokens : -1;
        const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<std::int64_t>(tokens, 0)))));
        return tokens > 0 && side * side == tokens;
    };
    // Only a square grid with our prefix tokens is resized; anything else (another token
    // layout) is left for the loader to report as a mismatch.
    if (auto it = stateDict.find("pos_embed"); it != stateDict.end() && it->second.sizes() != pos_embed.sizes()
        && isSquareGrid(it->second) && it->second.size(2) == pos_embed.size(2)) {
        const auto grid = gridSize();
        it->second = resamplePositionEmbedding(it->second, grid, m_numPrefixTokens);
        notes.push_back("pos_embed resized to a " + std::to_string(grid[0]) + "x" + std::to_string(grid[1])
                        + " grid");
    }
    // Only a plain patch embedding reads the image; the hybrid's proj reads backbone features.
    const std::string patchKey = "patch_embed.proj.weight";
    const bool readsImage = std::dynamic_pointer_cast<PatchEmbedImpl>(patch_embed) != nullptr;
    if (auto it = stateDict.find(patchKey); readsImage && it != stateDict.end() && it->second.dim() == 4
        && it->second.size(1) != m_options.in_chans) {
        it->second = adaptInputConv(it->second, m_options.in_chans);
        notes.push_back("patch embedding adapted from its channels to " + std::to_string(m_options.in_chans));
    }
}

std::int64_t vitEncoderMacs(const VitOptions& o, std::int64_t tokens)
{
    const auto d = o.embed_dim;
    const auto hidden = static_cast<std::int64_t>(d * o.mlp_ratio);
    const std::int64_t perBlock = tokens * d * 3 * d // qkv
        + 2 * tokens * tokens * d                    // q k^T and attention times v
        + tokens * d * d                             // proj
        + 2 * tokens * d * hidden;                   // mlp
    return o.depth * perBlock;
}

std::int64_t vitEncoderParameters(const VitOptions& o, std::int64_t heads)
{
    const auto d = o.embed_dim;
    const auto hidden = static_cast<std::int64_t>(d * o.mlp_ratio);
    const auto headDim = d / o.num_heads;
    const std::int64_t perBlock = 2 * d                   // norm1
        + 3 * d * d + (o.qkv_bias ? 3 * d : 0)            // qkv
        + (o.qk_norm ? 4 * headDim : 0)                   // q_norm, k_norm
        + d * d + d                                       // proj
        + (o.init_values > 0.0 ? 2 * d : 0)               // ls1, ls2
        + 2 * d                                           // norm2
        + d * hidden + hidden + hidden * d + d;           // mlp
    const std::int64_t norms = 2 * d + (o.pre_norm ? 2 * d : 0);
    const std::int64_t head = o.num_classes > 0 ? heads * (d * o.num_classes + o.num_classes) : 0;
    return o.depth * perBlock + norms + head;
}

namespace {

std::int64_t vitParameters(const nlohmann::json& json)
{
    ModelArgs args(json, "vit");
    const auto o = VitOptions::fromArgs(args);
    const auto patches = (o.img_size[0] / o.patch_size) * (o.img_size[1] / o.patch_size);
    const auto prefix = o.class_token ? 1 : 0;
    const auto embed = o.embed_dim * o.in_chans * o.patch_size * o.patch_size + (o.pre_norm ? 0 : o.embed_dim);
    return embed + prefix * o.embed_dim + (patches + prefix) * o.embed_dim + vitEncoderParameters(o);
}

std::int64_t vitMacs(const nlohmann::json& json)
{
    ModelArgs args(json, "vit");
    const auto o = VitOptions::fromArgs(args);
    const auto grid = std::array<std::int64_t, 2>{o.img_size[0] / o.patch_size, o.img_size[1] / o.patch_size};
    const auto patches = grid[0] * grid[1];
    const auto tokens = patches + (o.class_token ? 1 : 0);
    const auto embed = patches * o.embed_dim * o.in_chans * o.patch_size * o.patch_size;
    return embed + vitEncoderMacs(o, tokens) + o.embed_dim * o.num_classes;
}

nlohmann::json vitArgs(std::int64_t imgSize, std::int64_t patch, std::int64_t dim, std::int64_t depth,
                       std::int64_t heads, std::int64_t inChans = 3)
{
    return {{"img_size", imgSize}, {"patch_size", patch}, {"embed_dim", dim},
            {"depth", depth},      {"num_heads", heads},  {"in_chans", inChans}};
}

} // namespace

void registerVitFamily(ModelRegistry& registry)
{
    registry.addFamily({"vit", "ViT", kInceptionMean, kInceptionStd,
                        [](const nlohmann::json& json) -> Classifier {
                            ModelArgs args(json, "vit");
                            const auto options = VitOptions::fromArgs(args);
                            args.rejectUnknown();
                            return std::make_shared<VisionTransformerImpl>(options);
                        },
                        vitMacs, vitParameters});

    // timm's standard sizes (timm/models/vision_transformer.py).
    registry.addModel("vit_tiny_patch16_224", "vit", vitArgs(224, 16, 192, 12, 3), "ViT-Ti/16 at 224 px",
                      kInceptionMean, kInceptionStd);
    registry.addModel("vit_small_patch16_224", "vit", vitArgs(224, 16, 384, 12, 6), "ViT-S/16 at 224 px",
                      kInceptionMean, kInceptionStd);
    registry.addModel("vit_base_patch16_224", "vit", vitArgs(224, 16, 768, 12, 12), "ViT-B/16 at 224 px",
                      kInceptionMean, kInceptionStd);
    // DeiT's undistilled models are plain VisionTransformers with ImageNet normalisation.
    registry.addModel("deit_tiny_patch16_224", "vit", vitArgs(224, 16, 192, 12, 3), "DeiT-Ti at 224 px",
                      kImagenetMean, kImagenetStd, "DeiT");
    registry.addModel("deit_small_patch16_224", "vit", vitArgs(224, 16, 384, 12, 6), "DeiT-S at 224 px",
                      kImagenetMean, kImagenetStd, "DeiT");

    // Small presets for small images, sized to train on a 2-core CPU in minutes.
    auto grey28 = vitArgs(28, 4, 192, 6, 3, 1);
    registry.addModel("vit_tiny_d6_patch4_28", "vit", grey28,
                      "ViT, width 192, 6 blocks, 3 heads, 4-px patches, 28 px grey",
                      {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});
    registry.addModel("vit_micro_patch4_28", "vit", vitArgs(28, 4, 96, 4, 3, 1),
                      "ViT, width 96, 4 blocks, 3 heads, 4-px patches, 28 px grey (fastest)", {0.5, 0.5, 0.5},
                      {0.5, 0.5, 0.5});
    registry.addModel("vit_tiny_d6_patch4_32", "vit", vitArgs(32, 4, 192, 6, 3),
                      "ViT, width 192, 6 blocks, 3 heads, 4-px patches, 32 px colour", kInceptionMean,
                      kInceptionStd);
    registry.addModel("vit_tiny_d6_patch8_64", "vit", vitArgs(64, 8, 192, 6, 3),
                      "ViT, width 192, 6 blocks, 3 heads, 8-px patches, 64 px colour", kInceptionMean,
                      kInceptionStd);
}

} // namespace vitlab
