#include "app/cli/commands.h"
#include "app/cli/hub_weights.h"

#include "core/attention/explain.h"
#include "core/attention/overlay.h"
#include "core/errors.h"
#include "core/models/registry.h"
#include "core/models/weights.h"
#include "core/train/run_model.h"

#include <nlohmann/json.hpp>

#include <opencv2/imgproc.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

namespace vitlab::cli {

namespace {

struct ExplainCliOptions {
    std::string run;
    std::string model;
    std::string weights;
    std::string image;
    std::string out;
    std::string method = "rollout";
    int layer = -1;
    int head = -1;
    int classIndex = -1;
    std::string fusion = "mean";
    double discard = 0.0;
    std::string token = "class";
    std::vector<double> query;
    bool inner = false;
    double opacity = 0.5;
    bool json = false;
};

HeadFusion parseFusion(const std::string& name)
{
    if (name == "mean")
        return HeadFusion::Mean;
    if (name == "max")
        return HeadFusion::Max;
    if (name == "min")
        return HeadFusion::Min;
    throw ConfigError("head fusion must be mean, max or min, not \"" + name + "\"");
}

QueryToken parseToken(const std::string& name)
{
    if (name == "class")
        return QueryToken::Class;
    if (name == "dist" || name == "distillation")
        return QueryToken::Distillation;
    if (name == "mean")
        return QueryToken::Mean;
    throw ConfigError("the token must be class, dist or mean, not \"" + name + "\"");
}

int runExplain(const ExplainCliOptions& options)
{
    auto modelName = options.model;
    if (modelName.empty() && options.weights.rfind("hub:", 0) == 0)
        modelName = options.weights.substr(4, options.weights.find('.') - 4); // hub:NAME.TAG names its model
    if (options.run.empty() == (modelName.empty() || options.weights.empty()))
        throw ConfigError("give either --run DIR, or --model NAME with --weights FILE (or --weights hub:NAME.TAG)");
    ModelSpec spec;
    Classifier model;
    std::vector<std::string> classNames;
    if (!options.run.empty()) {
        auto run = loadRun(options.run);
        spec = run.spec;
        model = run.model;
        classNames = run.classNames;
    } else {
        const auto weights = resolveWeights(options.weights, modelName);
        spec = resolveModelSpec(modelName);
        if (weights.pretrained)
            spec = withPreprocessingOf(spec, *weights.pretrained);
        model = createModelWithWeights(spec, weights.file);
        spec = withNumClasses(spec, model->numClasses());
    }

    ExplainOptions explainOptions;
    explainOptions.method = parseExplainMethod(options.method);
    explainOptions.layer = options.layer;
    explainOptions.head = options.head;
    explainOptions.classIndex = options.classIndex;
    explainOptions.fusion = parseFusion(options.fusion);
    explainOptions.discardRatio = options.discard;
    explainOptions.token = parseToken(options.token);
    explainOptions.innerAttention = options.inner;
    if (!options.query.empty())
        explainOptions.queryPoint = std::make_pair(options.query[0], options.query[1]);

    const auto input = evaluationInput(options.image, spec);
    const auto explanation = explain(*model, input, explainOptions);

    // Shown at least 224 px wide so the grid reads, pixels kept square.
    cv::Mat image = displayImage(input, spec);
    const int scale = std::max(1, 224 / std::max(1, image.cols));
    if (scale > 1)
        cv::resize(image, image, {image.cols * scale, image.rows * scale}, 0, 0, cv::INTER_NEAREST);
    const auto map = explanation.map.contiguous();
    const std::vector<float> values(map.data_ptr<float>(), map.data_ptr<float>() + map.numel());
    OverlayOptions overlay;
    overlay.opacity = options.opacity;
    saveRgbPng(options.out, overlayMap(image, values, static_cast<int>(map.size(0)), static_cast<int>(map.size(1)), overlay));

    const auto className = [&](std::int64_t index) {
        return index < static_cast<std::int64_t>(classNames.size()) ? classNames[static_cast<std::size_t>(index)]
                                                                      : std::to_string(index);
    };
    const double probability = explanation.probabilities[explanation.classIndex].item<double>();
    if (options.json) {
        std::cout << nlohmann::json{{"out", options.out},
                                    {"method", options.method},
                                    {"class", className(explanation.classIndex)},
                                    {"class_index", explanation.classIndex},
                                    {"probability", probability},
                                    {"grid", {map.size(0), map.size(1)}},
                                    {"layers", explanation.layers},
                                    {"heads", explanation.heads},
                                    {"map", values}}
                         .dump(2)
                  << "\n";
    } else {
        std::printf("%s: %s of class %s (%.1f%%) on a %lldx%lld grid written to %s\n", options.image.c_str(),
                    options.method.c_str(), className(explanation.classIndex).c_str(), 100.0 * probability,
                    static_cast<long long>(map.size(0)), static_cast<long long>(map.size(1)), options.out.c_str());
    }
    return 0;
}

} // namespace

Command addExplainCommand(CLI::App& parent)
{
    auto options = std::make_shared<ExplainCliOptions>();
    auto* app = parent.add_subcommand("explain", "See where a model looks in an image; writes the overlay as a PNG");
    app->add_option("--run", options->run, "A run folder (its best weights)");
    app->add_option("--model", options->model, "A registry name or a JSON model config (with --weights)");
    app->add_option("--weights", options->weights, kWeightsHelp);
    app->add_option("image", options->image, "The image file")->required();
    app->add_option("--out", options->out, "Where to write the overlay (.png)")->required();
    app->add_option("--method", options->method, "attention, rollout, relevance or gradcam")->capture_default_str();
    app->add_option("--layer", options->layer, "attention: the block (-1: the last)")->capture_default_str();
    app->add_option("--head", options->head, "attention: one head (-1: fuse the heads)")->capture_default_str();
    app->add_option("--class", options->classIndex, "relevance, gradcam: the class (-1: the predicted)")
        ->capture_default_str();
    app->add_option("--fusion", options->fusion, "How heads combine: mean, max or min")->capture_default_str();
    app->add_option("--discard", options->discard, "rollout: share of the weakest weights dropped")
        ->check(CLI::Range(0.0, 0.99));
    app->add_option("--token", options->token, "Distilled DeiT: class, dist or mean")->capture_default_str();
    app->add_option("--query", options->query, "attention: the query point X Y as fractions of the image")
        ->expected(2)
        ->check(CLI::Range(0.0, 1.0));
    app->add_flag("--inner", options->inner, "TNT: the inner (pixel) attention");
    app->add_option("--opacity", options->opacity, "Share of the map in the overlay")->check(CLI::Range(0.0, 1.0));
    app->add_flag("--json", options->json, "Print the class, the grid and the map as JSON");
    return {app, [options](const RuntimeInfo&) { return runExplain(*options); }};
}

} // namespace vitlab::cli
