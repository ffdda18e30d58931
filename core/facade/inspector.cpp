#include "core/facade/inspector.h"

#include "core/attention/explain.h"
#include "core/attention/overlay.h"
#include "core/errors.h"
#include "core/train/run_model.h"

#include <algorithm>

namespace vitlab::facade {

namespace {

ExplainOptions toOptions(const AttentionRequest& request)
{
    ExplainOptions options;
    options.method = parseExplainMethod(request.method);
    options.layer = request.layer;
    options.head = request.head;
    if (request.fusion == "mean")
        options.fusion = HeadFusion::Mean;
    else if (request.fusion == "max")
        options.fusion = HeadFusion::Max;
    else if (request.fusion == "min")
        options.fusion = HeadFusion::Min;
    else
        throw ConfigError("head fusion must be mean, max or min");
    options.discardRatio = request.discardRatio;
    if (request.token == "class")
        options.token = QueryToken::Class;
    else if (request.token == "dist")
        options.token = QueryToken::Distillation;
    else if (request.token == "mean")
        options.token = QueryToken::Mean;
    else
        throw ConfigError("the token must be class, dist or mean");
    if (request.hasQuery)
        options.queryPoint = std::make_pair(request.queryX, request.queryY);
    options.classIndex = request.classIndex;
    options.innerAttention = request.innerAttention;
    return options;
}

RgbImage toRgbImage(const cv::Mat& rgb)
{
    RgbImage image;
    image.width = rgb.cols;
    image.height = rgb.rows;
    const cv::Mat continuous = rgb.isContinuous() ? rgb : rgb.clone();
    image.pixels.assign(continuous.data, continuous.data + continuous.total() * continuous.elemSize());
    return image;
}

cv::Mat toMat(const RgbImage& image)
{
    return cv::Mat(image.height, image.width, CV_8UC3, const_cast<std::uint8_t*>(image.pixels.data()));
}

std::vector<float> toVector(const torch::Tensor& tensor)
{
    const auto flat = tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    return {flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel()};
}

AttentionView explainInput(LoadedRun& run, const torch::Tensor& input, const cv::Mat& display,
                           const AttentionRequest& request)
{
    const auto explanation = vitlab::explain(*run.model, input, toOptions(request));
    AttentionView view;
    view.image = toRgbImage(display);
    view.gridHeight = static_cast<int>(explanation.map.size(0));
    view.gridWidth = static_cast<int>(explanation.map.size(1));
    view.map = toVector(explanation.map);
    view.heatmap = toRgbImage(colouredMap(view.map, view.gridHeight, view.gridWidth, display.size()));
    view.layers = explanation.layers;
    view.heads = explanation.heads;
    view.classIndex = static_cast<int>(explanation.classIndex);
    view.probabilities = toVector(explanation.probabilities);
    return view;
}

HeadMaps headsOfInput(LoadedRun& run, const torch::Tensor& input, cv::Size displaySize, const AttentionRequest& request)
{
    auto options = toOptions(request);
    options.method = ExplainMethod::Attention;
    const auto maps = attentionPerHead(*run.model, input, options);
    HeadMaps result;
    result.heads = static_cast<int>(maps.size(0));
    result.gridHeight = static_cast<int>(maps.size(1));
    result.gridWidth = static_cast<int>(maps.size(2));
    result.maps = toVector(maps);
    const std::size_t area = static_cast<std::size_t>(result.gridHeight) * static_cast<std::size_t>(result.gridWidth);
    for (std::size_t h = 0; h < static_cast<std::size_t>(result.heads); ++h) {
        const std::vector<float> head(result.maps.begin() + static_cast<std::ptrdiff_t>(h * area),
                                      result.maps.begin() + static_cast<std::ptrdiff_t>((h + 1) * area));
        result.heatmaps.push_back(toRgbImage(colouredMap(head, result.gridHeight, result.gridWidth, displaySize)));
    }
    return result;
}

} // namespace

struct Inspector::Impl {
    explicit Impl(const std::filesystem::path& directory)
        : run(loadRun(directory))
    {
    }
    LoadedRun run;
};

Inspector::Inspector(const std::filesystem::path& runDirectory)
    : m_impl(std::make_unique<Impl>(runDirectory))
{
}

Inspector::~Inspector() = default;

const std::vector<std::string>& Inspector::classNames() const
{
    return m_impl->run.classNames;
}

std::string Inspector::family() const
{
    return m_impl->run.spec.family;
}

std::vector<std::string> Inspector::methods() const
{
    const auto& family = m_impl->run.spec.family;
    if (family == "swin")
        return {"attention", "gradcam"};
    if (family == "hybrid")
        return {"rollout", "attention", "relevance", "gradcam"};
    return {"rollout", "attention", "relevance"};
}

std::vector<std::string> Inspector::queryTokens() const
{
    // The "deit" family is the distilled one; plain DeiT is built by the ViT family.
    if (m_impl->run.spec.family == "deit")
        return {"class", "dist", "mean"};
    return {"class"};
}

bool Inspector::hasInnerAttention() const
{
    return m_impl->run.spec.family == "tnt";
}

AttentionView Inspector::explain(const std::string& source, const AttentionRequest& request)
{
    const auto input = evaluationInput(source, m_impl->run.spec);
    return explainInput(m_impl->run, input, displayImage(input, m_impl->run.spec), request);
}

HeadMaps Inspector::heads(const std::string& source, const AttentionRequest& request)
{
    const auto input = evaluationInput(source, m_impl->run.spec);
    return headsOfInput(m_impl->run, input, displayImage(input, m_impl->run.spec).size(), request);
}

Inspection Inspector::inspect(const std::string& source, const AttentionRequest& request)
{
    const auto input = evaluationInput(source, m_impl->run.spec);
    const auto display = displayImage(input, m_impl->run.spec);
    return {explainInput(m_impl->run, input, display, request), headsOfInput(m_impl->run, input, display.size(), request)};
}

void Inspector::saveOverlay(const AttentionView& view, double opacity, const std::filesystem::path& path)
{
    if (view.image.pixels.empty() || view.gridHeight <= 0 || view.gridWidth <= 0)
        throw ConfigError("there is no attention map to save yet");
    OverlayOptions options;
    options.opacity = std::clamp(opacity, 0.0, 1.0);
    saveRgbPng(path, overlayMap(toMat(view.image), view.map, view.gridHeight, view.gridWidth, options));
}

} // namespace vitlab::facade
