#include "core/models/swin.h"

#include "core/models/registry.h"

#include <algorithm>
#include <cmath>
#include <regex>

namespace vitlab {

namespace F = torch::nn::functional;

namespace {

// timm builds every Swin norm with nn.LayerNorm's default eps.
constexpr double kLayerNormEps = 1e-5;

torch::nn::LayerNorm layerNorm(std::int64_t dim)
{
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(kLayerNormEps));
}

std::string sizeText(std::array<std::int64_t, 2> size)
{
    return std::to_string(size[0]) + "x" + std::to_string(size[1]);
}

/// (N, Hp, Wp, C) to (N * windows, area, C), windows row-major over the grid (timm's window_partition).
torch::Tensor partitionWindows(const torch::Tensor& x, std::array<std::int64_t, 2> window)
{
    const auto batch = x.size(0);
    const auto channels = x.size(3);
    return x.reshape({batch, x.size(1) / window[0], window[0], x.size(2) / window[1], window[1], channels})
        .permute({0, 1, 3, 2, 4, 5})
        .reshape({-1, window[0] * window[1], channels});
}

/// The inverse of partitionWindows for an (Hp, Wp) grid (timm's window_reverse).
torch::Tensor reverseWindows(const torch::Tensor& windows, std::array<std::int64_t, 2> window,
                             std::array<std::int64_t, 2> grid)
{
    const auto channels = windows.size(-1);
    return windows.reshape({-1, grid[0] / window[0], grid[1] / window[1], window[0], window[1], channels})
        .permute({0, 1, 3, 2, 4, 5})
        .reshape({-1, grid[0], grid[1], channels});
}

std::int64_t headDimOf(const SwinOptions& o, std::int64_t stage)
{
    return o.head_dim > 0 ? o.head_dim : o.stageDim(stage) / o.num_heads[static_cast<std::size_t>(stage)];
}

} // namespace

SwinOptions SwinOptions::fromArgs(ModelArgs& args)
{
    SwinOptions o;
    o.img_size = args.getSize("img_size", 224);
    o.patch_size = args.getInt("patch_size", o.patch_size, 1, 1024);
    o.in_chans = args.getInt("in_chans", o.in_chans, 1, 64);
    o.num_classes = args.getInt("num_classes", o.num_classes, 0, 1000000);
    o.global_pool = args.get<std::string>("global_pool", o.global_pool);
    if (o.global_pool != "avg")
        throw ConfigError("Swin's global_pool must be \"avg\" (\"" + o.global_pool + "\" is not supported)");
    o.embed_dim = args.getInt("embed_dim", o.embed_dim, 1, 65536);
    o.depths = args.getIntList("depths", o.depths);
    o.num_heads = args.getIntList("num_heads", o.num_heads);
    o.head_dim = args.getInt("head_dim", o.head_dim, 0, 4096);
    o.window_size = args.getSize("window_size", 7);
    o.always_partition = args.get<bool>("always_partition", o.always_partition);
    if (!args.get<bool>("strict_img_size", true))
        throw ConfigError("Swin's strict_img_size must be true: the model is built for one image size");
    o.mlp_ratio = args.getDouble("mlp_ratio", o.mlp_ratio, 0.01, 64.0);
    o.qkv_bias = args.get<bool>("qkv_bias", o.qkv_bias);
    o.drop_rate = args.getDouble("drop_rate", o.drop_rate, 0.0, 1.0);
    o.proj_drop_rate = args.getDouble("proj_drop_rate", o.proj_drop_rate, 0.0, 1.0);
    o.attn_drop_rate = args.getDouble("attn_drop_rate", o.attn_drop_rate, 0.0, 1.0);
    o.drop_path_rate = args.getDouble("drop_path_rate", o.drop_path_rate, 0.0, 1.0);

    if (o.num_heads.size() != o.depths.size())
        throw ConfigError("Swin needs one num_heads entry per stage: " + std::to_string(o.depths.size())
                          + " depths but " + std::to_string(o.num_heads.size()) + " num_heads");
    if (o.depths.size() > 8)
        throw ConfigError("Swin supports at most 8 stages");
    if (o.img_size[0] % o.patch_size != 0 || o.img_size[1] % o.patch_size != 0)
        throw ConfigError("image size " + sizeText(o.img_size) + " is not divisible by the patch size "
                          + std::to_string(o.patch_size));
    std::array<std::int64_t, 2> grid{o.img_size[0] / o.patch_size, o.img_size[1] / o.patch_size};
    for (std::int64_t stage = 0; stage < o.numStages(); ++stage) {
        if (stage > 0) {
            // timm pads odd grids before merging but sizes the next stage's windows and mask for
            // the floored grid; refuse that case rather than reproduce it.
            if (grid[0] % 2 != 0 || grid[1] % 2 != 0)
                throw ConfigError("Swin stage " + std::to_string(stage) + " merges a " + sizeText(grid)
                                  + " token grid; patch merging needs even sides (use another image or patch size)");
            grid = {grid[0] / 2, grid[1] / 2};
        }
        if (o.head_dim == 0 && o.num_heads[static_cast<std::size_t>(stage)] > o.stageDim(stage))
            throw ConfigError("Swin stage " + std::to_string(stage) + " has more heads than its "
                              + std::to_string(o.stageDim(stage)) + " channels");
    }
    return o;
}

std::array<std::int64_t, 2> SwinOptions::stageResolution(std::int64_t stage) const
{
    return {(img_size[0] / patch_size) >> stage, (img_size[1] / patch_size) >> stage};
}

WindowGeometry windowGeometry(std::array<std::int64_t, 2> resolution, std::array<std::int64_t, 2> window,
                              bool shiftedBlock, bool alwaysPartition)
{
    WindowGeometry g;
    for (std::size_t d = 0; d < 2; ++d) {
        const auto targetShift = shiftedBlock ? window[d] / 2 : 0;
        if (alwaysPartition) {
            g.window[d] = window[d];
            g.shift[d] = targetShift;
        } else {
            g.window[d] = std::min(resolution[d], window[d]);
            g.shift[d] = resolution[d] <= g.window[d] ? 0 : targetShift;
        }
        g.padded[d] = (resolution[d] + g.window[d] - 1) / g.window[d] * g.window[d];
    }
    return g;
}

torch::Tensor relativePositionIndex(std::array<std::int64_t, 2> window)
{
    const auto area = window[0] * window[1];
    auto index = torch::empty({area, area}, torch::kLong);
    auto out = index.accessor<std::int64_t, 2>();
    for (std::int64_t i = 0; i < area; ++i) {
        for (std::int64_t j = 0; j < area; ++j) {
            // Offsets shifted to start at 0, rows of the table first (timm's relative_coords).
            const auto dy = i / window[1] - j / window[1] + window[0] - 1;
            const auto dx = i % window[1] - j % window[1] + window[1] - 1;
            out[i][j] = dy * (2 * window[1] - 1) + dx;
        }
    }
    return index;
}

torch::Tensor shiftedWindowMask(const WindowGeometry& g)
{
    if (!g.shifted())
        return {};
    // timm labels the rolled grid with Python slices (0, -window), (-window, -shift), (-shift, None).
    // -0 is 0 there, so on an axis without shift the last slice spans the whole axis: kept as is.
    const auto regions = [](std::int64_t length, std::int64_t window, std::int64_t shift) {
        const auto fromEnd = [length](std::int64_t n) { return n == 0 ? 0 : std::max<std::int64_t>(length - n, 0); };
        return std::array<std::pair<std::int64_t, std::int64_t>, 3>{
            {{0, fromEnd(window)}, {fromEnd(window), fromEnd(shift)}, {fromEnd(shift), length}}};
    };
    auto labels = torch::zeros({1, g.padded[0], g.padded[1], 1});
    float label = 0;
    for (const auto& [top, bottom] : regions(g.padded[0], g.window[0], g.shift[0])) {
        for (const auto& [left, right] : regions(g.padded[1], g.window[1], g.shift[1])) {
            if (bottom > top && right > left)
                labels.narrow(1, top, bottom - top).narrow(2, left, right - left).fill_(label);
            label += 1;
        }
    }
    const auto windows = partitionWindows(labels, g.window).squeeze(-1); // (windows, area)
    const auto difference = windows.unsqueeze(1) - windows.unsqueeze(2);
    return torch::zeros_like(difference).masked_fill(difference != 0, -100.0);
}

torch::Tensor resizeRelativePositionBiasTable(const torch::Tensor& table, std::array<std::int64_t, 2> window)
{
    const auto side = table.dim() == 2
        ? static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(table.size(0)))))
        : 0;
    if (side == 0 || side * side != table.size(0) || side % 2 == 0)
        throw ShapeError("a relative position bias table must be (S*S, heads) with odd S");
    const std::array<std::int64_t, 2> target{2 * window[0] - 1, 2 * window[1] - 1};
    if (target[0] == side && target[1] == side)
        return table;

    // Source offsets on a geometric progression stretched (or squeezed) to the target's half
    // width; target offsets are integers; linear interpolation, clamped beyond the ends.
    const auto weights = [side](std::int64_t targetSide) {
        double left = 1.01, right = 1.5, q = 1.0;
        while (right - left > 1e-6) {
            q = (left + right) / 2.0;
            const double progression = (1.0 - std::pow(q, static_cast<double>(side / 2))) / (1.0 - q);
            (progression > static_cast<double>(targetSide / 2) ? right : left) = q;
        }
        std::vector<double> positions(static_cast<std::size_t>(side), 0.0);
        double current = 1.0;
        for (std::int64_t i = 0; i < side / 2; ++i) {
            // timm holds the positions in float32.
            const double position = static_cast<float>(current);
            positions[static_cast<std::size_t>(side / 2 + 1 + i)] = position;
            positions[static_cast<std::size_t>(side / 2 - 1 - i)] = -position;
            current += std::pow(q, static_cast<double>(i + 1));
        }
        auto matrix = torch::zeros({targetSide, side}, torch::kFloat64);
        auto m = matrix.accessor<double, 2>();
        for (std::int64_t t = 0; t < targetSide; ++t) {
            const double x = static_cast<double>(t - targetSide / 2);
            if (x <= positions.front()) {
                m[t][0] = 1.0;
            } else if (x >= positions.back()) {
                m[t][side - 1] = 1.0;
            } else {
                std::int64_t upper = 1;
                while (positions[static_cast<std::size_t>(upper)] < x)
                    ++upper;
                const double low = positions[static_cast<std::size_t>(upper - 1)];
                const double high = positions[static_cast<std::size_t>(upper)];
                m[t][upper] = (x - low) / (high - low);
                m[t][upper - 1] = (high - x) / (high - low);
            }
        }
        return matrix;
    };
    const auto rows = weights(target[0]).to(table.device());
    const auto columns = weights(target[1]).to(table.device());
    const auto heads = table.size(1);
    const auto grid = table.detach().to(torch::kFloat64).t().reshape({heads, side, side});
    const auto resized = torch::matmul(torch::matmul(rows, grid), columns.t());
    return resized.reshape({heads, target[0] * target[1]}).t().contiguous().to(table.scalar_type());
}

WindowAttentionImpl::WindowAttentionImpl(std::int64_t dim, std::int64_t numHeads, std::int64_t headDim,
                                         std::array<std::int64_t, 2> window, bool qkvBias, double attnDrop,
                                         double projDrop)
    : m_numHeads(numHeads)
    , m_headDim(headDim)
    , m_window(window)
    , m_attnDrop(attnDrop)
    , m_projDrop(projDrop)
    , m_relativeIndex(relativePositionIndex(window).view(-1))
{
    const auto attnDim = headDim * numHeads;
    relative_position_bias_table = register_parameter(
        "relative_position_bias_table", torch::zeros({(2 * window[0] - 1) * (2 * window[1] - 1), numHeads}));
    truncNormal_(relative_position_bias_table, 0.02);
    qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * attnDim).bias(qkvBias)));
    proj = register_module("proj", torch::nn::Linear(attnDim, dim));
}

torch::Tensor WindowAttentionImpl::relativePositionBias()
{
    if (m_relativeIndex.device() != relative_position_bias_table.device())
        m_relativeIndex = m_relativeIndex.to(relative_position_bias_table.device());
    const auto area = m_window[0] * m_window[1];
    return relative_position_bias_table.index_select(0, m_relativeIndex)
        .view({area, area, m_numHeads})
        .permute({2, 0, 1})
        .unsqueeze(0); // (1, heads, area, area)
}

torch::Tensor WindowAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask)
{
    const auto batchWindows = x.size(0);
    const auto tokens = x.size(1);
    const auto qkvSplit = applyLinear(qkv, x).reshape({batchWindows, tokens, 3, m_numHeads, m_headDim}).permute({2, 0, 3, 1, 4}).unbind(0);
    const auto q = qkvSplit[0];
    const auto k = qkvSplit[1];
    const auto v = qkvSplit[2];
    // The relative position bias, plus the shifted-window mask of each window (windows repeat
    // over the batch).
    auto additive = relativePositionBias();
    if (mask.defined()) {
        const auto windows = mask.size(0);
        additive = (additive.unsqueeze(1) + mask.view({1, windows, 1, tokens, tokens}))
                       .expand({batchWindows / windows, windows, m_numHeads, tokens, tokens})
                       .reshape({batchWindows, m_numHeads, tokens, tokens});
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(m_headDim));
    auto out = attend(q, k, v, scale, m_attnDrop, is_training(), additive);
    out = applyLinear(proj, out.transpose(1, 2).reshape({batchWindows, tokens, -1}));
    return applyDropout(out, m_projDrop, is_training());
}

SwinTransformerBlockImpl::SwinTransformerBlockImpl(std::int64_t dim, std::int64_t numHeads, std::int64_t headDim,
                                                   const WindowGeometry& geometry, const SwinOptions& options,
                                                   double dropPath)
    : m_geometry(geometry)
    , m_mask(shiftedWindowMask(geometry))
{
    norm1 = register_module("norm1", layerNorm(dim));
    attn = register_module("attn", WindowAttention(dim, numHeads, headDim, geometry.window, options.qkv_bias,
                                                   options.attn_drop_rate, options.proj_drop_rate));
    drop_path1 = register_module("drop_path1", DropPath(dropPath));
    norm2 = register_module("norm2", layerNorm(dim));
    const auto hidden = static_cast<std::int64_t>(static_cast<double>(dim) * options.mlp_ratio);
    mlp = register_module("mlp", Mlp(MlpOptions(dim, hidden).drop(options.proj_drop_rate)));
    drop_path2 = register_module("drop_path2", DropPath(dropPath));
}

const torch::Tensor& SwinTransformerBlockImpl::maskFor(const torch::Tensor& x)
{
    if (m_mask.defined() && (!m_maskOnDevice.defined() || m_maskOnDevice.device() != x.device()
                             || m_maskOnDevice.scalar_type() != x.scalar_type()))
        m_maskOnDevice = m_mask.to(x.device(), x.scalar_type());
    return m_maskOnDevice;
}

torch::Tensor SwinTransformerBlockImpl::windowAttention(const torch::Tensor& input)
{
    const auto height = input.size(1);
    const auto width = input.size(2);
    const auto& g = m_geometry;
    auto x = g.shifted() ? torch::roll(input, {-g.shift[0], -g.shift[1]}, {1, 2}) : input;
    // Grids that are not whole windows are padded with zeros after the shift, as timm does.
    const auto padHeight = (g.window[0] - height % g.window[0]) % g.window[0];
    const auto padWidth = (g.window[1] - width % g.window[1]) % g.window[1];
    if (padHeight > 0 || padWidth > 0)
        x = F::pad(x, F::PadFuncOptions({0, 0, 0, padWidth, 0, padHeight}));
    const std::array<std::int64_t, 2> padded{height + padHeight, width + padWidth};
    auto windows = attn(partitionWindows(x, g.window), maskFor(x));
    x = reverseWindows(windows, g.window, padded);
    if (padHeight > 0 || padWidth > 0)
        x = x.narrow(1, 0, height).narrow(2, 0, width);
    return g.shifted() ? torch::roll(x, {g.shift[0], g.shift[1]}, {1, 2}) : x;
}

torch::Tensor SwinTransformerBlockImpl::forward(const torch::Tensor& input)
{
    const auto sizes = input.sizes().vec();
    auto x = input + drop_path1(windowAttention(norm1(input)));
    x = x.reshape({sizes[0], -1, sizes[3]});
    x = x + drop_path2(mlp(norm2(x)));
    return x.reshape(sizes);
}

PatchMergingImpl::PatchMergingImpl(std::int64_t dim, std::int64_t outDim)
{
    norm = register_module("norm", layerNorm(4 * dim));
    reduction = register_module("reduction", torch::nn::Linear(torch::nn::LinearOptions(4 * dim, outDim).bias(false)));
}

torch::Tensor PatchMergingImpl::forward(const torch::Tensor& x)
{
    const auto batch = x.size(0);
    const auto channels = x.size(3);
    // Channel order of each 2x2 neighbourhood: (0,0), (1,0), (0,1), (1,1), as timm's x0..x3.
    const auto merged = x.reshape({batch, x.size(1) / 2, 2, x.size(2) / 2, 2, channels})
                            .permute({0, 1, 3, 4, 2, 5})
                            .flatten(3);
    // Back to the parameters' precision: under autocast the reduction returns bfloat16, and the
    // next stage's residual stream and norms work in float32.
    return normInput(applyLinear(reduction, norm(merged)), norm->weight);
}

SwinTransformerStageImpl::SwinTransformerStageImpl(const SwinOptions& options, std::int64_t stage,
                                                   const std::vector<double>& dropPaths)
{
    const auto dim = options.stageDim(stage);
    if (stage > 0)
        downsample = register_module("downsample", PatchMerging(options.stageDim(stage - 1), dim));
    blocks = register_module("blocks", torch::nn::ModuleList());
    const auto depth = options.depths[static_cast<std::size_t>(stage)];
    for (std::int64_t i = 0; i < depth; ++i) {
        const auto geometry = windowGeometry(options.stageResolution(stage), options.window_size, i % 2 == 1,
                                             options.always_partition);
        blocks->push_back(SwinTransformerBlock(dim, options.num_heads[static_cast<std::size_t>(stage)],
                                               headDimOf(options, stage), geometry, options,
                                               dropPaths[static_cast<std::size_t>(i)]));
    }
}

torch::Tensor SwinTransformerStageImpl::forward(torch::Tensor x)
{
    if (downsample)
        x = downsample(x);
    for (const auto& block : *blocks)
        x = block->as<SwinTransformerBlockImpl>()->forward(x);
    return x;
}

SwinPatchEmbedImpl::SwinPatchEmbedImpl(std::int64_t patchSize, std::int64_t inChannels, std::int64_t embedDim)
{
    proj = register_module(
        "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(inChannels, embedDim, patchSize).stride(patchSize)));
    norm = register_module("norm", layerNorm(embedDim));
}

torch::Tensor SwinPatchEmbedImpl::forward(const torch::Tensor& images)
{
    return norm(normInput(applyConv2d(proj, images).permute({0, 2, 3, 1}), norm->weight));
}

SwinClassifierHeadImpl::SwinClassifierHeadImpl(std::int64_t features, std::int64_t classes, double dropRate)
    : m_features(features)
    , m_dropRate(dropRate)
{
    reset(classes);
}

void SwinClassifierHeadImpl::reset(std::int64_t classes)
{
    const bool registered = named_children().contains("fc");
    if (classes > 0) {
        auto linear = torch::nn::Linear(m_features, classes);
        initLinearTimm(linear);
        fc = registered ? replace_module("fc", linear) : register_module("fc", linear);
    } else if (registered) {
        unregister_module("fc");
        fc = nullptr;
    }
}

torch::Tensor SwinClassifierHeadImpl::forward(const torch::Tensor& features, bool preLogits)
{
    const auto pooled = applyDropout(features.mean({1, 2}), m_dropRate, is_training());
    return preLogits || !fc ? pooled : applyLinear(fc, pooled);
}

SwinTransformerImpl::SwinTransformerImpl(const SwinOptions& options)
    : m_options(options)
{
    m_imageSize = options.img_size;
    m_inputChannels = options.in_chans;
    patch_embed = register_module("patch_embed", SwinPatchEmbed(options.patch_size, options.in_chans, options.embed_dim));
    layers = register_module("layers", torch::nn::ModuleList());
    std::int64_t totalDepth = 0;
    for (const auto depth : options.depths)
        totalDepth += depth;
    const auto rates = dropPathRates(options.drop_path_rate, totalDepth);
    auto next = rates.begin();
    for (std::int64_t stage = 0; stage < options.numStages(); ++stage) {
        const std::vector<double> stageRates(next, next + options.depths[static_cast<std::size_t>(stage)]);
        next += options.depths[static_cast<std::size_t>(stage)];
        layers->push_back(SwinTransformerStage(options, stage, stageRates));
    }
    const auto features = options.stageDim(options.numStages() - 1);
    norm = register_module("norm", layerNorm(features));
    head = register_module("head", SwinClassifierHead(features, options.num_classes, options.drop_rate));

    // timm's init_weights_vit_timm: every Linear gets trunc_normal(0.02) and a zero bias; the
    // convolution keeps PyTorch's default, as in timm.
    for (const auto& module : modules(/*include_self=*/false)) {
        if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(module)) {
            torch::nn::Linear holder(linear);
            initLinearTimm(holder);
        }
    }
}

SwinTransformerBlockImpl& SwinTransformerImpl::block(std::int64_t stage, std::int64_t index) const
{
    const auto& blocks = layers->ptr(static_cast<std::size_t>(stage))->as<SwinTransformerStageImpl>()->blocks;
    return *blocks->ptr(static_cast<std::size_t>(index))->as<SwinTransformerBlockImpl>();
}

torch::Tensor SwinTransformerImpl::forward_features(const torch::Tensor& images)
{
    checkImageBatch(*this, images);
    auto x = patch_embed(images);
    for (const auto& stage : *layers)
        x = stage->as<SwinTransformerStageImpl>()->forward(x);
    return norm(x);
}

torch::Tensor SwinTransformerImpl::forward_head(const torch::Tensor& features, bool preLogits)
{
    return head->forward(features, preLogits);
}

void SwinTransformerImpl::resetClassifier(std::int64_t classes)
{
    m_options.num_classes = classes;
    head->reset(classes);
}

ParameterGroup SwinTransformerImpl::parameterGroup(const std::string& name) const
{
    static const std::regex stageKey(R"(^layers\.(\d+)\.)");
    std::smatch match;
    if (std::regex_search(name, match, stageKey))
        return {ParameterGroup::Role::Unit, std::stoi(match[1].str())};
    if (name.rfind("norm.", 0) == 0 || name.rfind("head.", 0) == 0)
        return {ParameterGroup::Role::Head, 0};
    return {ParameterGroup::Role::Stem, 0};
}

void SwinTransformerImpl::adaptStateDict(StateDict& stateDict, std::vector<std::string>& notes) const
{
    // Older timm saved the index tables and masks as buffers; they are recomputed here.
    std::size_t stale = 0;
    for (auto it = stateDict.begin(); it != stateDict.end();) {
        if (it->first.find("relative_position_index") != std::string::npos
            || it->first.find("attn_mask") != std::string::npos) {
            it = stateDict.erase(it);
            ++stale;
        } else {
            ++it;
        }
    }
    if (stale > 0)
        notes.push_back(std::to_string(stale) + " stored index/mask buffers dropped (they are computed)");

    // The original layout merges patches at the end of a stage ("layers.0.downsample") and
    // names the classifier "head"; timm's merges at the start of the next stage and uses "head.fc".
    static const std::regex oldDownsample(R"(^layers\.(\d+)\.downsample\.(.*)$)");
    if (std::any_of(stateDict.begin(), stateDict.end(),
                    [](const auto& item) { return item.first.rfind("layers.0.downsample.", 0) == 0; })) {
        StateDict renamed;
        for (auto& [key, tensor] : stateDict) {
            std::smatch match;
            if (std::regex_match(key, match, oldDownsample))
                renamed["layers." + std::to_string(std::stoi(match[1].str()) + 1) + ".downsample." + match[2].str()] = tensor;
            else
                renamed[key] = tensor;
        }
        stateDict = std::move(renamed);
        notes.push_back("patch merging moved from the end of each stage to the start of the next (original layout)");
    }
    if (stateDict.count("head.weight") && !stateDict.count("head.fc.weight")) {
        for (const char* part : {"weight", "bias"}) {
            if (auto it = stateDict.find(std::string("head.") + part); it != stateDict.end()) {
                stateDict["head.fc." + std::string(part)] = it->second;
                stateDict.erase(it);
            }
        }
        notes.push_back("classifier \"head\" renamed to \"head.fc\"");
    }

    // Tables for another window are resampled to this model's (clamped) window. Tables that are
    // not square are left for the loader to report.
    static const std::regex tableKey(R"(^layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table$)");
    const auto parameters = named_parameters();
    std::size_t resized = 0;
    for (auto& [key, tensor] : stateDict) {
        std::smatch match;
        const auto* ours = parameters.find(key);
        if (!ours || !std::regex_match(key, match, tableKey) || tensor.sizes() == ours->sizes() || tensor.dim() != 2
            || tensor.size(1) != ours->size(1))
            continue;
        const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(tensor.size(0)))));
        if (side * side != tensor.size(0) || side % 2 == 0)
            continue;
        const auto& geometry = block(std::stoi(match[1].str()), std::stoi(match[2].str())).geometry();
        tensor = resizeRelativePositionBiasTable(tensor, geometry.window);
        ++resized;
    }
    if (resized > 0)
        notes.push_back(std::to_string(resized) + " relative position bias tables resized to this model's windows");

    const std::string patchKey = "patch_embed.proj.weight";
    if (auto it = stateDict.find(patchKey); it != stateDict.end() && it->second.dim() == 4
        && it->second.size(1) != m_options.in_chans) {
        it->second = adaptInputConv(it->second, m_options.in_chans);
        notes.push_back("patch embedding adapted from its channels to " + std::to_string(m_options.in_chans));
    }
}

namespace {

/// Calls `visit(stage, geometry)` for every block, in order.
template <typename Visit>
void forEachBlock(const SwinOptions& o, Visit visit)
{
    for (std::int64_t stage = 0; stage < o.numStages(); ++stage) {
        for (std::int64_t i = 0; i < o.depths[static_cast<std::size_t>(stage)]; ++i)
            visit(stage, windowGeometry(o.stageResolution(stage), o.window_size, i % 2 == 1, o.always_partition));
    }
}

SwinOptions optionsFrom(const nlohmann::json& json)
{
    ModelArgs args(json, "swin");
    auto options = SwinOptions::fromArgs(args);
    args.rejectUnknown();
    return options;
}

std::int64_t swinParameters(const nlohmann::json& json)
{
    const auto o = optionsFrom(json);
    const auto c0 = o.embed_dim;
    std::int64_t total = c0 * o.in_chans * o.patch_size * o.patch_size + c0 + 2 * c0; // proj, norm
    for (std::int64_t stage = 1; stage < o.numStages(); ++stage) {
        const auto in = o.stageDim(stage - 1);
        total += 2 * 4 * in + 4 * in * o.stageDim(stage); // merging norm, reduction without bias
    }
    forEachBlock(o, [&](std::int64_t stage, const WindowGeometry& g) {
        const auto d = o.stageDim(stage);
        const auto heads = o.num_heads[static_cast<std::size_t>(stage)];
        const auto a = headDimOf(o, stage) * heads;
        const auto hidden = static_cast<std::int64_t>(static_cast<double>(d) * o.mlp_ratio);
        total += 2 * d                                                    // norm1
            + (2 * g.window[0] - 1) * (2 * g.window[1] - 1) * heads      // bias table
            + d * 3 * a + (o.qkv_bias ? 3 * a : 0)                        // qkv
            + a * d + d                                                   // proj
            + 2 * d                                                       // norm2
            + d * hidden + hidden + hidden * d + d;                       // mlp
    });
    const auto features = o.stageDim(o.numStages() - 1);
    total += 2 * features;
    if (o.num_classes > 0)
        total += features * o.num_classes + o.num_classes;
    return total;
}

std::int64_t swinMacs(const nlohmann::json& json)
{
    const auto o = optionsFrom(json);
    const auto grid = o.stageResolution(0);
    std::int64_t macs = grid[0] * grid[1] * o.embed_dim * o.in_chans * o.patch_size * o.patch_size;
    for (std::int64_t stage = 1; stage < o.numStages(); ++stage) {
        const auto res = o.stageResolution(stage);
        macs += res[0] * res[1] * 4 * o.stageDim(stage - 1) * o.stageDim(stage);
    }
    forEachBlock(o, [&](std::int64_t stage, const WindowGeometry& g) {
        const auto d = o.stageDim(stage);
        const auto a = headDimOf(o, stage) * o.num_heads[static_cast<std::size_t>(stage)];
        const auto hidden = static_cast<std::int64_t>(static_cast<double>(d) * o.mlp_ratio);
        const auto res = o.stageResolution(stage);
        const auto paddedTokens = g.padded[0] * g.padded[1];
        macs += paddedTokens * d * 3 * a           // qkv, padding included
            + 2 * paddedTokens * g.area() * a      // q k^T and attention times v, per window
            + paddedTokens * a * d                 // proj
            + 2 * res[0] * res[1] * d * hidden;    // mlp
    });
    return macs + o.stageDim(o.numStages() - 1) * o.num_classes;
}

nlohmann::json swinArgs(std::int64_t imgSize, std::int64_t patch, std::int64_t window, std::int64_t dim,
                        std::vector<std::int64_t> depths, std::vector<std::int64_t> heads, std::int64_t inChans = 3)
{
    return {{"img_size", imgSize}, {"patch_size", patch},        {"window_size", window},
            {"embed_dim", dim},    {"depths", std::move(depths)}, {"num_heads", std::move(heads)},
            {"in_chans", inChans}};
}

} // namespace

void registerSwinFamily(ModelRegistry& registry)
{
    registry.addFamily({"swin", "Swin", kImagenetMean, kImagenetStd,
                        [](const nlohmann::json& json) -> Classifier {
                            return std::make_shared<SwinTransformerImpl>(optionsFrom(json));
                        },
                        swinMacs, swinParameters});

    // timm's standard sizes (timm/models/swin_transformer.py).
    registry.addModel("swin_tiny_patch4_window7_224", "swin", swinArgs(224, 4, 7, 96, {2, 2, 6, 2}, {3, 6, 12, 24}),
                      "Swin-T at 224 px", kImagenetMean, kImagenetStd);
    registry.addModel("swin_small_patch4_window7_224", "swin", swinArgs(224, 4, 7, 96, {2, 2, 18, 2}, {3, 6, 12, 24}),
                      "Swin-S at 224 px", kImagenetMean, kImagenetStd);

    // Small presets: 2-px patches keep enough tokens for windows and shifts on small images.
    registry.addModel("swin_micro_patch2_window4_32", "swin", swinArgs(32, 2, 4, 48, {2, 2, 2}, {3, 6, 12}),
                      "Swin, width 48, stages 2-2-2, 4x4 windows on a 16-8-4 grid, 32 px colour", kImagenetMean,
                      kImagenetStd);
    registry.addModel("swin_micro_patch2_window7_28", "swin", swinArgs(28, 2, 7, 48, {2, 4}, {3, 6}, 1),
                      "Swin, width 48, stages 2-4, 7x7 windows on a 14-7 grid, 28 px grey (Fashion-MNIST)",
                      {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5});
}

} // namespace vitlab
