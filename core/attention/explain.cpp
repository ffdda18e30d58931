#include "core/attention/explain.h"

#include "core/errors.h"
#include "core/models/deit.h"
#include "core/models/hybrid.h"
#include "core/models/swin.h"
#include "core/models/tnt.h"
#include "core/models/vit.h"

#include <cmath>

namespace vitlab {

ExplainMethod parseExplainMethod(const std::string& name)
{
    if (name == "attention")
        return ExplainMethod::Attention;
    if (name == "rollout")
        return ExplainMethod::Rollout;
    if (name == "relevance")
        return ExplainMethod::Relevance;
    if (name == "gradcam")
        return ExplainMethod::GradCam;
    throw ConfigError("the method must be attention, rollout, relevance or gradcam, not \"" + name + "\"");
}

std::string explainMethodName(ExplainMethod method)
{
    switch (method) {
    case ExplainMethod::Attention:
        return "attention";
    case ExplainMethod::Rollout:
        return "rollout";
    case ExplainMethod::Relevance:
        return "relevance";
    case ExplainMethod::GradCam:
        break;
    }
    return "gradcam";
}

namespace {

/// Switches attention capture on for a scope, and the model to eval mode.
class CaptureScope {
public:
    explicit CaptureScope(ClassifierImpl& model)
        : m_model(model)
        , m_wasTraining(model.is_training())
    {
        m_model.eval();
        m_model.setAttentionCapture(true);
    }
    ~CaptureScope()
    {
        m_model.setAttentionCapture(false);
        m_model.train(m_wasTraining);
    }
    CaptureScope(const CaptureScope&) = delete;
    CaptureScope& operator=(const CaptureScope&) = delete;

private:
    ClassifierImpl& m_model;
    bool m_wasTraining;
};

/// A family whose attention spans every token of a sequence: prefix tokens, then a patch grid.
struct GlobalLayout {
    std::vector<AttentionCaptureSite*> sites;
    std::int64_t prefix = 0;
    std::array<std::int64_t, 2> grid{};
    bool classToken = false;
    bool distilled = false;
};

std::optional<GlobalLayout> globalLayout(ClassifierImpl& model)
{
    if (auto* vit = dynamic_cast<VisionTransformerImpl*>(&model)) {
        return GlobalLayout{model.attentionSites(), vit->numPrefixTokens(), vit->gridSize(), vit->options().class_token,
                            dynamic_cast<VisionTransformerDistilledImpl*>(&model) != nullptr};
    }
    if (auto* tnt = dynamic_cast<TntImpl*>(&model))
        return GlobalLayout{tnt->outerAttentionSites(), 1, tnt->gridSize(), true, false};
    return std::nullopt;
}

torch::Tensor scaledToOne(torch::Tensor map)
{
    map = map.to(torch::kFloat32).clamp_min(0.0);
    const double peak = map.max().item<double>();
    return peak > 1e-12 ? map / peak : map;
}

int resolveLayer(int layer, std::size_t count)
{
    const int n = static_cast<int>(count);
    const int resolved = layer < 0 ? n + layer : layer;
    if (n == 0)
        throw ConfigError("this model has no attention to show");
    if (resolved < 0 || resolved >= n)
        throw ConfigError("layer " + std::to_string(layer) + " is outside the model's " + std::to_string(n)
                          + " attention blocks");
    return resolved;
}

/// (heads, q, k) to (q, k): one head, or the heads fused.
torch::Tensor fuseHeads(const torch::Tensor& attention, int head, HeadFusion fusion)
{
    if (head >= 0) {
        if (head >= attention.size(0))
            throw ConfigError("head " + std::to_string(head) + " is outside the block's "
                              + std::to_string(attention.size(0)) + " heads");
        return attention.select(0, head);
    }
    switch (fusion) {
    case HeadFusion::Max:
        return std::get<0>(attention.max(0));
    case HeadFusion::Min:
        return std::get<0>(attention.min(0));
    case HeadFusion::Mean:
        break;
    }
    return attention.mean(0);
}

std::int64_t cellAt(double fraction, std::int64_t cells)
{
    return std::clamp<std::int64_t>(static_cast<std::int64_t>(std::floor(fraction * static_cast<double>(cells))), 0,
                                    cells - 1);
}

/// A (tokens, tokens) matrix's row for the chosen query, over the patch tokens, as the grid.
torch::Tensor queryRowOnGrid(const torch::Tensor& matrix, const GlobalLayout& layout, const ExplainOptions& options)
{
    const auto patches = layout.grid[0] * layout.grid[1];
    torch::Tensor row;
    if (options.queryPoint) {
        const auto y = cellAt(options.queryPoint->second, layout.grid[0]);
        const auto x = cellAt(options.queryPoint->first, layout.grid[1]);
        row = matrix.select(0, layout.prefix + y * layout.grid[1] + x);
    } else if (!layout.classToken) {
        // Average pooling: every patch speaks for the prediction, so their rows are averaged.
        row = matrix.narrow(0, layout.prefix, patches).mean(0);
    } else if (options.token == QueryToken::Class || !layout.distilled) {
        if (options.token != QueryToken::Class)
            throw ConfigError("only a distilled DeiT has a distillation token");
        row = matrix.select(0, 0);
    } else {
        row = options.token == QueryToken::Distillation ? matrix.select(0, 1) : matrix.narrow(0, 0, 2).mean(0);
    }
    return row.narrow(0, layout.prefix, patches).reshape({layout.grid[0], layout.grid[1]});
}

/// Swin: one block's window attention (windows, heads, area, area) of a single image back on the
/// block's grid, the cyclic shift undone. Without a query point, what each position receives
/// from the queries of its window (the column mean).
torch::Tensor swinMap(const torch::Tensor& captured, const WindowGeometry& geometry,
                      std::array<std::int64_t, 2> resolution, int head, HeadFusion fusion,
                      const std::optional<std::pair<double, double>>& queryPoint)
{
    const auto& window = geometry.window;
    const auto windowsY = geometry.padded[0] / window[0], windowsX = geometry.padded[1] / window[1];
    std::vector<torch::Tensor> perWindow;
    for (std::int64_t w = 0; w < captured.size(0); ++w)
        perWindow.push_back(fuseHeads(captured[w], head, fusion));
    const auto fused = torch::stack(perWindow); // (windows, area, area)
    torch::Tensor received;
    if (!queryPoint) {
        received = fused.mean(1);
    } else {
        // Where the query sits in the shifted frame: torch.roll(x, -shift) moved p to p - shift.
        const auto py = cellAt(queryPoint->second, resolution[0]), px = cellAt(queryPoint->first, resolution[1]);
        const auto sy = (py - geometry.shift[0] + resolution[0]) % resolution[0];
        const auto sx = (px - geometry.shift[1] + resolution[1]) % resolution[1];
        const auto windowIndex = (sy / window[0]) * windowsX + sx / window[1];
        const auto inWindow = (sy % window[0]) * window[1] + sx % window[1];
        received = torch::zeros({fused.size(0), fused.size(2)}, fused.options());
        received[windowIndex] = fused[windowIndex][inWindow];
    }
    auto grid = received.reshape({windowsY, windowsX, window[0], window[1]})
                    .permute({0, 2, 1, 3})
                    .reshape({geometry.padded[0], geometry.padded[1]})
                    .narrow(0, 0, resolution[0])
                    .narrow(1, 0, resolution[1]);
    if (geometry.shifted())
        grid = torch::roll(grid, {geometry.shift[0], geometry.shift[1]}, {0, 1});
    return grid;
}

/// TNT's inner attention of one block (patches, heads, pixels, pixels) on the full pixel grid.
torch::Tensor tntInnerMap(const torch::Tensor& captured, const TntImpl& tnt, int head, HeadFusion fusion,
                          const std::optional<std::pair<double, double>>& queryPoint)
{
    const auto grid = tnt.gridSize();
    const auto side = tnt.options().pixelSide();
    std::vector<torch::Tensor> perPatch;
    for (std::int64_t p = 0; p < captured.size(0); ++p)
        perPatch.push_back(fuseHeads(captured[p], head, fusion));
    const auto fused = torch::stack(perPatch); // (patches, pixels, pixels)
    torch::Tensor received;
    if (!queryPoint) {
        received = fused.mean(1);
    } else {
        const auto y = cellAt(queryPoint->second, grid[0] * side), x = cellAt(queryPoint->first, grid[1] * side);
        const auto patch = (y / side) * grid[1] + x / side;
        received = torch::zeros({fused.size(0), fused.size(2)}, fused.options());
        received[patch] = fused[patch][(y % side) * side + x % side];
    }
    return received.reshape({grid[0], grid[1], side, side}).permute({0, 2, 1, 3}).reshape({grid[0] * side, grid[1] * side});
}

torch::Tensor toModelDevice(const ClassifierImpl& model, const torch::Tensor& image)
{
    if (image.dim() != 4 || image.size(0) != 1)
        throw ShapeError("explaining takes one image as (1, channels, height, width)");
    const auto parameters = model.parameters();
    const auto device = parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
    return image.to(device, torch::kFloat32);
}

std::int64_t chosenClass(const torch::Tensor& logits, int requested)
{
    const auto classes = logits.size(-1);
    if (requested >= classes)
        throw ConfigError("class " + std::to_string(requested) + " is outside the model's " + std::to_string(classes)
                          + " classes");
    return requested >= 0 ? requested : logits.argmax(-1).item<std::int64_t>();
}

/// One block's attention map (raw attention), for one head or the heads fused.
torch::Tensor attentionMap(ClassifierImpl& model, const ExplainOptions& options, int head, int* layers, int* heads)
{
    if (auto* swin = dynamic_cast<SwinTransformerImpl*>(&model)) {
        const auto sites = model.attentionSites();
        const int layer = resolveLayer(options.layer, sites.size());
        *layers = static_cast<int>(sites.size());
        int index = 0;
        for (std::int64_t stage = 0; stage < swin->options().numStages(); ++stage) {
            for (std::int64_t b = 0; b < swin->options().depths[static_cast<std::size_t>(stage)]; ++b, ++index) {
                if (index != layer)
                    continue;
                const auto& captured = sites[static_cast<std::size_t>(layer)]->captured();
                *heads = static_cast<int>(captured.size(1));
                return swinMap(captured, swin->block(stage, b).geometry(), swin->options().stageResolution(stage), head,
                               options.fusion, options.queryPoint);
            }
        }
    }
    auto* tnt = dynamic_cast<TntImpl*>(&model);
    if (tnt && options.innerAttention) {
        const auto sites = tnt->innerAttentionSites();
        const int layer = resolveLayer(options.layer, sites.size());
        *layers = static_cast<int>(sites.size());
        const auto& captured = sites[static_cast<std::size_t>(layer)]->captured();
        *heads = static_cast<int>(captured.size(1));
        return tntInnerMap(captured, *tnt, head, options.fusion, options.queryPoint);
    }
    const auto layout = globalLayout(model);
    if (!layout)
        throw ConfigError("this model family has no attention map to show");
    const int layer = resolveLayer(options.layer, layout->sites.size());
    *layers = static_cast<int>(layout->sites.size());
    const auto& captured = layout->sites[static_cast<std::size_t>(layer)]->captured();
    *heads = static_cast<int>(captured.size(1));
    return queryRowOnGrid(fuseHeads(captured[0], head, options.fusion), *layout, options);
}

GlobalLayout requireGlobal(ClassifierImpl& model, const char* method)
{
    const auto layout = globalLayout(model);
    if (!layout)
        throw ConfigError(std::string(method)
                          + " needs attention over the whole image; Swin attends within windows: use gradcam or attention");
    return *layout;
}

torch::Tensor rolloutMap(const GlobalLayout& layout, const ExplainOptions& options)
{
    if (!layout.classToken)
        throw ConfigError("rollout reads the class token's row, and this model pools its patches instead: use "
                          "relevance or attention");
    std::vector<torch::Tensor> maps;
    for (auto* site : layout.sites)
        maps.push_back(site->captured());
    RolloutOptions rollout;
    rollout.fusion = options.fusion;
    rollout.discardRatio = options.discardRatio;
    const auto forToken = [&](std::int64_t token) {
        rollout.queryToken = token;
        return attentionRollout(maps, layout.prefix, layout.grid, rollout)[0];
    };
    if (options.token == QueryToken::Class || !layout.distilled) {
        if (options.token != QueryToken::Class)
            throw ConfigError("only a distilled DeiT has a distillation token");
        return forToken(0);
    }
    return options.token == QueryToken::Distillation ? forToken(1) : (forToken(0) + forToken(1)) / 2;
}

torch::Tensor relevanceMap(const GlobalLayout& layout, const torch::Tensor& score, const ExplainOptions& options)
{
    std::vector<torch::Tensor> maps;
    for (auto* site : layout.sites)
        maps.push_back(site->captured());
    const auto gradients = torch::autograd::grad({score}, maps, {}, /*retain_graph=*/false, /*create_graph=*/false,
                                                 /*allow_unused=*/true);
    const auto tokens = maps.front().size(-1);
    auto relevance = torch::eye(tokens, maps.front().options().dtype(torch::kFloat32));
    torch::NoGradGuard noGrad;
    for (std::size_t block = 0; block < maps.size(); ++block) {
        if (!gradients[block].defined())
            continue; // a block the explained score does not depend on
        const auto weighted = (gradients[block][0] * maps[block][0]).to(torch::kFloat32).clamp_min(0.0).mean(0);
        relevance = relevance + torch::matmul(weighted, relevance);
    }
    return queryRowOnGrid(relevance, layout, options);
}

/// Grad-CAM of `features` for `score`: channels weighted by their mean gradient, summed, relu.
/// `channelsLast` features are (1, H, W, C) (or tokens (1, T, C) reshaped by the caller),
/// otherwise (1, C, H, W).
torch::Tensor gradCam(const torch::Tensor& features, const torch::Tensor& score, bool channelsLast)
{
    const auto gradient = torch::autograd::grad({score}, {features})[0];
    torch::NoGradGuard noGrad;
    if (channelsLast) {
        const auto weights = gradient.mean({1, 2}, /*keepdim=*/true);
        return (features * weights).sum(-1)[0].clamp_min(0.0);
    }
    const auto weights = gradient.mean({2, 3}, /*keepdim=*/true);
    return (features * weights).sum(1)[0].clamp_min(0.0);
}

} // namespace

Explanation explain(ClassifierImpl& model, const torch::Tensor& image, const ExplainOptions& options)
{
    checkImageBatch(model, image);
    const auto input = toModelDevice(model, image);
    CaptureScope capture(model);
    Explanation explanation;
    explanation.layers = static_cast<int>(model.attentionSites().size());
    const bool needsGradient = options.method == ExplainMethod::Relevance || options.method == ExplainMethod::GradCam;

    if (!needsGradient) {
        torch::NoGradGuard noGrad;
        const auto logits = model.forward(input).to(torch::kFloat32);
        explanation.probabilities = logits.softmax(-1)[0];
        explanation.classIndex = chosenClass(logits, -1);
        if (options.method == ExplainMethod::Attention) {
            explanation.map = attentionMap(model, options, options.head, &explanation.layers, &explanation.heads);
        } else {
            const auto layout = requireGlobal(model, "rollout");
            explanation.map = rolloutMap(layout, options);
            explanation.heads = static_cast<int>(layout.sites.front()->captured().size(1));
        }
        explanation.map = scaledToOne(explanation.map);
        return explanation;
    }

    torch::AutoGradMode gradients(true);
    if (options.method == ExplainMethod::Relevance) {
        const auto layout = requireGlobal(model, "relevance");
        const auto logits = model.forward(input);
        explanation.classIndex = chosenClass(logits, options.classIndex);
        explanation.probabilities = logits.detach().to(torch::kFloat32).softmax(-1)[0];
        explanation.map = scaledToOne(relevanceMap(layout, logits[0][explanation.classIndex], options));
        explanation.heads = static_cast<int>(layout.sites.front()->captured().size(1));
        return explanation;
    }

    // Grad-CAM.
    torch::Tensor features, logits;
    bool channelsLast = true;
    if (dynamic_cast<SwinTransformerImpl*>(&model)) {
        features = model.forward_features(input);
        logits = model.forward_head(features);
    } else if (auto* hybrid = dynamic_cast<HybridVisionTransformerImpl*>(&model)) {
        hybrid->hybridEmbed().setFeatureCapture(true);
        logits = model.forward(input);
        features = hybrid->hybridEmbed().capturedFeatures();
        hybrid->hybridEmbed().setFeatureCapture(false);
        channelsLast = false;
    } else {
        // With class-token pooling the last block's patch tokens never reach the head, so their
        // gradient is zero: global-attention models are explained by relevance instead.
        throw ConfigError("Grad-CAM is for Swin and the ResNet+ViT hybrid; use relevance for this model");
    }
    explanation.classIndex = chosenClass(logits, options.classIndex);
    explanation.probabilities = logits.detach().to(torch::kFloat32).softmax(-1)[0];
    explanation.map = scaledToOne(gradCam(features, logits[0][explanation.classIndex], channelsLast));
    return explanation;
}

torch::Tensor attentionPerHead(ClassifierImpl& model, const torch::Tensor& image, ExplainOptions options)
{
    checkImageBatch(model, image);
    const auto input = toModelDevice(model, image);
    CaptureScope capture(model);
    torch::NoGradGuard noGrad;
    model.forward(input);
    int layers = 0, heads = 0;
    attentionMap(model, options, 0, &layers, &heads);
    std::vector<torch::Tensor> maps;
    for (int head = 0; head < heads; ++head)
        maps.push_back(scaledToOne(attentionMap(model, options, head, &layers, &heads)));
    return torch::stack(maps);
}

} // namespace vitlab
