#include "core/models/tnt.h"

#include "core/models/registry.h"

#include <cmath>
#include <regex>

namespace vitlab {

namespace F = torch::nn::functional;

namespace {

// timm's TNT uses nn.LayerNorm with its default eps, unlike ViT's 1e-6.
constexpr double kLayerNormEps = 1e-5;

torch::nn::LayerNorm layerNorm(std::int64_t dim)
{
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(kLayerNormEps));
}

void replaceAll(std::string& text, const std::string& from, const std::string& to)
{
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
}

} // namespace

TntOptions TntOptions::fromArgs(ModelArgs& args)
{
    TntOptions o;
    o.img_size = args.getSize("img_size", 224);
    o.patch_size = args.getInt("patch_size", o.patch_size, 1, 1024);
    o.in_chans = args.getInt("in_chans", o.in_chans, 1, 64);
    o.num_classes = args.getInt("num_classes", o.num_classes, 0, 1000000);
    o.global_pool = args.get<std::string>("global_pool", o.global_pool);
    if (o.global_pool != "token" && o.global_pool != "avg" && !o.global_pool.empty())
        throw ConfigError("global_pool must be \"token\", \"avg\" or \"\", not \"" + o.global_pool + "\"");
    o.embed_dim = args.getInt("embed_dim", o.embed_dim, 1, 65536);
    o.inner_dim = args.getInt("inner_dim", o.inner_dim, 1, 65536);
    o.depth = args.getInt("depth", o.depth, 0, 1024);
    o.num_heads_inner = args.getInt("num_heads_inner", o.num_heads_inner, 1, 1024);
    o.num_heads_outer = args.getInt("num_heads_outer", o.num_heads_outer, 1, 1024);
    o.mlp_ratio = args.getDouble("mlp_ratio", o.mlp_ratio, 0.01, 64.0);
    o.qkv_bias = args.get<bool>("qkv_bias", o.qkv_bias);
    o.drop_rate = args.getDouble("drop_rate", o.drop_rate, 0.0, 1.0);
    o.pos_drop_rate = args.getDouble("pos_drop_rate", o.pos_drop_rate, 0.0, 1.0);
    o.proj_drop_rate = args.getDouble("proj_drop_rate", o.proj_drop_rate, 0.0, 1.0);
    o.attn_drop_rate = args.getDouble("attn_drop_rate", o.attn_drop_rate, 0.0, 1.0);
    o.drop_path_rate = args.getDouble("drop_path_rate", o.drop_path_rate, 0.0, 1.0);
    o.first_stride = args.getInt("first_stride", o.first_stride, 1, 1024);
    if (args.get<bool>("legacy", false))
        throw ConfigError("TNT's legacy layout (tnt_s_legacy_patch16_224: convolution over the whole image, "
                          "per-pixel norm1_proj in the blocks) is not supported; use the current layout");
    if (o.img_size[0] % o.patch_size != 0 || o.img_size[1] % o.patch_size != 0)
        throw ConfigError("image size " + std::to_string(o.img_size[0]) + "x" + std::to_string(o.img_size[1])
                          + " is not divisible by the patch size " + std::to_string(o.patch_size));
    if (o.embed_dim % o.num_heads_outer != 0)
        throw ConfigError("embed_dim " + std::to_string(o.embed_dim) + " is not divisible by num_heads_outer "
                          + std::to_string(o.num_heads_outer));
    if (o.inner_dim % o.num_heads_inner != 0)
        throw ConfigError("inner_dim " + std::to_string(o.inner_dim) + " is not divisible by num_heads_inner "
                          + std::to_string(o.num_heads_inner));
    return o;
}

TntAttentionImpl::TntAttentionImpl(std::int64_t dim, std::int64_t numHeads, bool qkvBias, double attnDrop,
                                   double projDrop)
    : m_numHeads(numHeads)
    , m_headDim(dim / numHeads)
    , m_scale(1.0 / std::sqrt(static_cast<double>(dim / numHeads)))
    , m_attnDrop(attnDrop)
    , m_projDrop(projDrop)
{
    qk = register_module("qk", torch::nn::Linear(torch::nn::LinearOptions(dim, 2 * dim).bias(qkvBias)));
    v = register_module("v", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(qkvBias)));
    proj = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor TntAttentionImpl::forward(const torch::Tensor& x)
{
    const auto batch = x.size(0);
    const auto tokens = x.size(1);
    const auto qkSplit = applyLinear(qk, x).reshape({batch, tokens, 2, m_numHeads, m_headDim}).permute({2, 0, 3, 1, 4}).unbind(0);
    const auto q = qkSplit[0];
    const auto k = qkSplit[1];
    const auto values = applyLinear(v, x).reshape({batch, tokens, m_numHeads, m_headDim}).permute({0, 2, 1, 3});
    auto out = attend(q, k, values, m_scale, m_attnDrop, is_training());
    out = applyLinear(proj, out.transpose(1, 2).reshape({batch, tokens, -1}));
    return applyDropout(out, m_projDrop, is_training());
}

TntBlockImpl::TntBlockImpl(const TntOptions& o, double dropPath)
{
    const auto inner = o.inner_dim;
    const auto dim = o.embed_dim;
    norm_in = register_module("norm_in", layerNorm(inner));
    attn_in = register_module(
        "attn_in", TntAttention(inner, o.num_heads_inner, o.qkv_bias, o.attn_drop_rate, o.proj_drop_rate));
    norm_mlp_in = register_module("norm_mlp_in", layerNorm(inner));
    // The inner MLP is always 4x wide; mlp_ratio only sets the outer one.
    mlp_in = register_module("mlp_in", Mlp(MlpOptions(inner, 4 * inner).drop(o.proj_drop_rate)));
    // Non-legacy: the whole patch's pixels are normalised together, the projection has no bias
    // and its output is normalised again.
    norm1_proj = register_module("norm1_proj", layerNorm(inner * o.numPixels()));
    proj = register_module("proj", torch::nn::Linear(torch::nn::LinearOptions(inner * o.numPixels(), dim).bias(false)));
    norm2_proj = register_module("norm2_proj", layerNorm(dim));
    norm_out = register_module("norm_out", layerNorm(dim));
    attn_out = register_module(
        "attn_out", TntAttention(dim, o.num_heads_outer, o.qkv_bias, o.attn_drop_rate, o.proj_drop_rate));
    drop_path = register_module("drop_path", DropPath(dropPath));
    norm_mlp = register_module("norm_mlp", layerNorm(dim));
    const auto hidden = static_cast<std::int64_t>(dim * o.mlp_ratio);
    mlp = register_module("mlp", Mlp(MlpOptions(dim, hidden).drop(o.proj_drop_rate)));
}

std::pair<torch::Tensor, torch::Tensor> TntBlockImpl::forward(const torch::Tensor& pixelsIn,
                                                              const torch::Tensor& patchesIn)
{
    auto pixels = pixelsIn + drop_path(attn_in(norm_in(pixelsIn)));
    pixels = pixels + drop_path(mlp_in(norm_mlp_in(pixels)));

    const auto batch = patchesIn.size(0);
    const auto numPatches = patchesIn.size(1) - 1;
    const auto fromPixels = norm2_proj(
        normInput(applyLinear(proj, norm1_proj(pixels.reshape({batch, numPatches, -1}))), norm2_proj->weight));
    auto patches = torch::cat({patchesIn.narrow(1, 0, 1), patchesIn.narrow(1, 1, numPatches) + fromPixels}, 1);
    patches = patches + drop_path(attn_out(norm_out(patches)));
    patches = patches + drop_path(mlp(norm_mlp(patches)));
    return {pixels, patches};
}

PixelEmbedImpl::PixelEmbedImpl(const TntOptions& o)
    : m_patchSize(o.patch_size)
{
    proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in_chans, o.inner_dim, 7)
                                                         .padding(3)
                                                         .stride(o.first_stride)));
}

torch::Tensor PixelEmbedImpl::forward(const torch::Tensor& images, const torch::Tensor& pixelPos)
{
    const auto batch = images.size(0);
    const auto channels = images.size(1);
    const auto p = m_patchSize;
    const auto rows = images.size(2) / p;
    const auto cols = images.size(3) / p;
    // nn.Unfold's order: patches row-major over the grid, each patch as (C, p, p).
    auto x = images.reshape({batch, channels, rows, p, cols, p})
                 .permute({0, 2, 4, 1, 3, 5})
                 .reshape({batch * rows * cols, channels, p, p});
    x = applyConv2d(proj, x) + pixelPos;
    return x.flatten(2).transpose(1, 2);
}

TntImpl::TntImpl(const TntOptions& options)
    : m_options(options)
{
    m_imageSize = options.img_size;
    m_inputChannels = options.in_chans;
    const auto dim = options.embed_dim;
    const auto pixelWidth = options.numPixels() * options.inner_dim;
    pixel_embed = register_module("pixel_embed", PixelEmbed(options));
    norm1_proj = register_module("norm1_proj", layerNorm(pixelWidth));
    proj = register_module("proj", torch::nn::Linear(pixelWidth, dim));
    norm2_proj = register_module("norm2_proj", layerNorm(dim));
    cls_token = register_parameter("cls_token", torch::empty({1, 1, dim}));
    patch_pos = register_parameter("patch_pos", torch::empty({1, options.numPatches() + 1, dim}));
    pixel_pos = register_parameter("pixel_pos",
                                   torch::empty({1, options.inner_dim, options.pixelSide(), options.pixelSide()}));
    truncNormal_(cls_token, 0.02);
    truncNormal_(patch_pos, 0.02);
    truncNormal_(pixel_pos, 0.02);

    blocks = register_module("blocks", torch::nn::ModuleList());
    const auto rates = dropPathRates(options.drop_path_rate, options.depth);
    for (std::int64_t i = 0; i < options.depth; ++i)
        blocks->push_back(TntBlock(options, rates[static_cast<std::size_t>(i)]));
    norm = register_module("norm", layerNorm(dim));
    if (options.num_classes > 0)
        head = register_module("head", makeHead(options.num_classes));

    // timm's _init_weights: every Linear truncated normal, LayerNorms at their (1, 0) default;
    // the pixel-embedding convolution keeps PyTorch's default init.
    for (const auto& module : modules(/*include_self=*/false)) {
        if (auto* linear = module->as<torch::nn::LinearImpl>()) {
            truncNormal_(linear->weight, 0.02);
            if (linear->bias.defined()) {
                torch::NoGradGuard noGrad;
                linear->bias.zero_();
            }
        }
    }
}

torch::nn::Linear TntImpl::makeHead(std::int64_t classes) const
{
    auto linear = torch::nn::Linear(m_options.embed_dim, classes);
    initLinearTimm(linear);
    return linear;
}

torch::Tensor TntImpl::forward_features(const torch::Tensor& images)
{
    checkImageBatch(*this, images);
    const auto batch = images.size(0);
    auto pixels = pixel_embed(images, pixel_pos);
    auto patches = norm2_proj(
        normInput(applyLinear(proj, norm1_proj(pixels.reshape({batch, m_options.numPatches(), -1}))), norm2_proj->weight));
    patches = torch::cat({cls_token.expand({batch, -1, -1}), patches}, 1) + patch_pos;
    patches = applyDropout(patches, m_options.pos_drop_rate, is_training());
    for (const auto& block : *blocks)
        std::tie(pixels, patches) = block->as<TntBlockImpl>()->forward(pixels, patches);
    return norm(patches);
}

torch::Tensor TntImpl::forward_head(const torch::Tensor& features, bool preLogits)
{
    auto x = features;
    if (m_options.global_pool == "avg")
        x = features.narrow(1, 1, features.size(1) - 1).mean(1);
    else if (m_options.global_pool == "token")
        x = features.select(1, 0);
    x = applyDropout(x, m_options.drop_rate, is_training());
    if (preLogits || !head)
        return x;
    return applyLinear(head, x);
}

void TntImpl::resetClassifier(std::int64_t classes)
{
    m_options.num_classes = classes;
    const bool registered = named_children().contains("head");
    if (classes > 0) {
        head = registered ? replace_module("head", makeHead(classes)) : register_module("head", makeHead(classes));
    } else if (registered) {
        unregister_module("head");
        head = nullptr;
    }
}

ParameterGroup TntImpl::parameterGroup(const std::string& name) const
{
    static const std::regex blockKey(R"(^blocks\.(\d+)\.)");
    std::smatch match;
    if (std::regex_search(name, match, blockKey))
        return {ParameterGroup::Role::Unit, std::stoi(match[1].str())};
    // "norm." only: norm1_proj and norm2_proj belong to the stem.
    if (name.rfind("norm.", 0) == 0 || name.rfind("head.", 0) == 0)
        return {ParameterGroup::Role::Head, 0};
    return {ParameterGroup::Role::Stem, 0};
}

std::vector<AttentionCaptureSite*> TntImpl::outerAttentionSites() const
{
    std::vector<AttentionCaptureSite*> sites;
    for (const auto& block : *blocks)
        sites.push_back(block->as<TntBlockImpl>()->attn_out.get());
    return sites;
}

std::vector<AttentionCaptureSite*> TntImpl::innerAttentionSites() const
{
    std::vector<AttentionCaptureSite*> sites;
    for (const auto& block : *blocks)
        sites.push_back(block->as<TntBlockImpl>()->attn_in.get());
    return sites;
}

void TntImpl::adaptStateDict(StateDict& stateDict, std::vector<std::string>& notes) const
{
    stateDict.erase("outer_tokens");
    // The official (huawei-noah) checkpoints: other names, pixel_pos as (1, pixels, inner_dim).
    if (stateDict.count("patch_pos") == 0 && stateDict.count("outer_pos") != 0) {
        static const std::pair<const char*, const char*> kRenames[] = {
            {"outer_pos", "patch_pos"},     {"inner_pos", "pixel_pos"},     {"patch_embed", "pixel_embed"},
            {"proj_norm1", "norm1_proj"},   {"proj_norm2", "norm2_proj"},   {"inner_norm1", "norm_in"},
            {"inner_attn", "attn_in"},      {"inner_norm2", "norm_mlp_in"}, {"inner_mlp", "mlp_in"},
            {"outer_norm1", "norm_out"},    {"outer_attn", "attn_out"},     {"outer_norm2", "norm_mlp"},
            {"outer_mlp", "mlp"}};
        StateDict renamed;
        for (auto& [key, tensor] : stateDict) {
            std::string name = key;
            for (const auto& [from, to] : kRenames)
                replaceAll(name, from, to);
            auto value = tensor;
            if (name == "pixel_pos" && value.dim() == 3) {
                const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(value.size(1)))));
                if (side * side == value.size(1))
                    value = value.permute({0, 2, 1}).reshape({value.size(0), value.size(2), side, side});
            }
            renamed[name] = value;
        }
        stateDict = std::move(renamed);
        notes.push_back("keys of the official TNT checkpoint renamed to timm's");
    }

    if (auto it = stateDict.find("patch_pos"); it != stateDict.end() && it->second.sizes() != patch_pos.sizes()
        && it->second.dim() == 3 && it->second.size(2) == patch_pos.size(2)) {
        const auto tokens = it->second.size(1) - 1;
        const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(std::max<std::int64_t>(tokens, 0)))));
        // Only a square grid behind one class token is resized; anything else is left for the
        // loader to report as a mismatch.
        if (tokens > 0 && side * side == tokens) {
            const auto grid = gridSize();
            it->second = resamplePositionEmbedding(it->second, grid, 1);
            notes.push_back("patch_pos resized to a " + std::to_string(grid[0]) + "x" + std::to_string(grid[1])
                            + " patch grid");
        }
    }

    if (auto it = stateDict.find("pixel_pos"); it != stateDict.end() && it->second.sizes() != pixel_pos.sizes()
        && it->second.dim() == 4 && it->second.size(1) == pixel_pos.size(1)) {
        const auto side = m_options.pixelSide();
        const auto original = it->second.scalar_type();
        it->second = F::interpolate(it->second.to(torch::kFloat32), F::InterpolateFuncOptions()
                                                                        .size(std::vector<std::int64_t>{side, side})
                                                                        .mode(torch::kBicubic)
                                                                        .align_corners(false)
                                                                        .antialias(true))
                         .to(original);
        notes.push_back("pixel_pos resized to a " + std::to_string(side) + "x" + std::to_string(side)
                        + " pixel grid (the pixel projections still need the checkpoint's pixel grid)");
    }

    const std::string convKey = "pixel_embed.proj.weight";
    if (auto it = stateDict.find(convKey); it != stateDict.end() && it->second.dim() == 4
        && it->second.size(1) != m_options.in_chans) {
        it->second = adaptInputConv(it->second, m_options.in_chans);
        notes.push_back("pixel embedding adapted from its channels to " + std::to_string(m_options.in_chans));
    }
}

namespace {

TntOptions optionsFrom(const nlohmann::json& json)
{
    ModelArgs args(json, "tnt");
    return TntOptions::fromArgs(args);
}

std::int64_t tntParameters(const nlohmann::json& json)
{
    const auto o = optionsFrom(json);
    const auto d = o.embed_dim;
    const auto i = o.inner_dim;
    const auto pixelWidth = o.numPixels() * i;
    const auto hidden = static_cast<std::int64_t>(d * o.mlp_ratio);
    const auto attention = [&o](std::int64_t dim) {
        return 3 * dim * dim + (o.qkv_bias ? 3 * dim : 0) // qk, v
            + dim * dim + dim;                             // proj
    };
    const std::int64_t stem = i * o.in_chans * 49 + i // pixel_embed.proj
        + i * o.numPixels()                           // pixel_pos
        + 2 * pixelWidth + pixelWidth * d + d + 2 * d // norm1_proj, proj, norm2_proj
        + d + (o.numPatches() + 1) * d;               // cls_token, patch_pos
    const std::int64_t perBlock = 2 * i + attention(i) + 2 * i // norm_in, attn_in, norm_mlp_in
        + i * 4 * i + 4 * i + 4 * i * i + i                   // mlp_in
        + 2 * pixelWidth + pixelWidth * d + 2 * d             // norm1_proj, proj (no bias), norm2_proj
        + 2 * d + attention(d) + 2 * d                        // norm_out, attn_out, norm_mlp
        + d * hidden + hidden + hidden * d + d;               // mlp
    const std::int64_t head = o.num_classes > 0 ? d * o.num_classes + o.num_classes : 0;
    return stem + o.depth * perBlock + 2 * d + head;
}

std::int64_t tntMacs(const nlohmann::json& json)
{
    const auto o = optionsFrom(json);
    const auto d = o.embed_dim;
    const auto i = o.inner_dim;
    const auto patches = o.numPatches();
    const auto pixels = o.numPixels();
    const auto tokens = patches + 1;
    const auto hidden = static_cast<std::int64_t>(d * o.mlp_ratio);
    // qk, v and proj, then q k^T and attention times v, over `n` tokens of width `w`.
    const auto attention = [](std::int64_t n, std::int64_t w) { return 4 * n * w * w + 2 * n * n * w; };
    const std::int64_t embed = patches * pixels * i * o.in_chans * 49 // 7x7 convolution per patch
        + patches * pixels * i * d;                                    // proj
    const std::int64_t perBlock = patches * (attention(pixels, i) + 2 * pixels * i * 4 * i) // inner
        + patches * pixels * i * d                                                            // proj
        + attention(tokens, d) + 2 * tokens * d * hidden;                                     // outer
    return embed + o.depth * perBlock + d * o.num_classes;
}

nlohmann::json tntArgs(std::int64_t imgSize, std::int64_t patch, std::int64_t dim, std::int64_t innerDim,
                       std::int64_t depth, std::int64_t headsOuter, std::int64_t headsInner)
{
    return {{"img_size", imgSize}, {"patch_size", patch},          {"embed_dim", dim},
            {"inner_dim", innerDim}, {"depth", depth},            {"num_heads_outer", headsOuter},
            {"num_heads_inner", headsInner}};
}

} // namespace

void registerTntFamily(ModelRegistry& registry)
{
    registry.addFamily({"tnt", "TNT", kInceptionMean, kInceptionStd,
                        [](const nlohmann::json& json) -> Classifier {
                            ModelArgs args(json, "tnt");
                            const auto options = TntOptions::fromArgs(args);
                            args.rejectUnknown();
                            return std::make_shared<TntImpl>(options);
                        },
                        tntMacs, tntParameters});

    // timm's standard sizes (timm/models/tnt.py); timm's TNT configs use mean = std = 0.5.
    registry.addModel("tnt_s_patch16_224", "tnt", tntArgs(224, 16, 384, 24, 12, 6, 4), "TNT-S/16 at 224 px",
                      kInceptionMean, kInceptionStd);
    registry.addModel("tnt_b_patch16_224", "tnt", tntArgs(224, 16, 640, 40, 12, 10, 4), "TNT-B/16 at 224 px",
                      kInceptionMean, kInceptionStd);

    // Small presets: 4-px patches with a pixel stride of 2 give each patch a 2x2 pixel grid.
    auto grey28 = tntArgs(28, 4, 192, 12, 6, 3, 2);
    grey28["in_chans"] = 1;
    grey28["first_stride"] = 2;
    registry.addModel("tnt_tiny_d6_patch4_28", "tnt", grey28,
                      "TNT, width 192 (pixels 12), 6 blocks, 4-px patches of 2x2 pixels, 28 px grey", {0.5, 0.5, 0.5},
                      {0.5, 0.5, 0.5});
    auto colour32 = tntArgs(32, 4, 192, 12, 6, 3, 2);
    colour32["first_stride"] = 2;
    registry.addModel("tnt_tiny_d6_patch4_32", "tnt", colour32,
                      "TNT, width 192 (pixels 12), 6 blocks, 4-px patches of 2x2 pixels, 32 px colour",
                      kInceptionMean, kInceptionStd);
}

} // namespace vitlab
