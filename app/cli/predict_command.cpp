#include "app/cli/commands.h"

#include "core/data/dataset.h"
#include "core/errors.h"
#include "core/train/evaluator.h"
#include "core/train/execution.h"
#include "core/train/predictor.h"
#include "core/train/run_model.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>

namespace vitlab::cli {

namespace {

struct EvalOptions {
    std::string run;
    std::string data;
    std::string weights = "best";
    std::string device = "auto";
    bool json = false;
    bool samples = false;
};

void printEvaluation(const EvaluationResult& result)
{
    std::printf("%lld images: top-1 %.2f%%, top-5 %.2f%%, loss %.4f, macro F1 %.4f\n",
                static_cast<long long>(result.count), 100.0 * result.top1, 100.0 * result.top5, result.loss,
                result.macroF1);
    std::printf("  %-24s %9s %9s %9s %8s\n", "class", "precision", "recall", "F1", "support");
    for (const auto& c : result.perClass)
        std::printf("  %-24s %9.4f %9.4f %9.4f %8lld\n", c.name.c_str(), c.precision, c.recall, c.f1,
                    static_cast<long long>(c.support));
    std::printf("confusion (rows: true class, columns: predicted)\n");
    for (std::int64_t row = 0; row < result.classCount(); ++row) {
        std::printf("  %-24s", result.classNames[static_cast<std::size_t>(row)].c_str());
        for (std::int64_t column = 0; column < result.classCount(); ++column)
            std::printf(" %6lld", static_cast<long long>(result.cell(row, column)));
        std::printf("\n");
    }
}

int runEval(const EvalOptions& options)
{
    const auto device = resolveDevice(options.device);
    auto run = loadRun(options.run, device, options.weights);
    const bool ownData = options.data.empty();
    DatasetOptions dataOptions;
    dataOptions.storageSide = storageSideFor(run.spec.input.size[0]);
    dataOptions.channels = run.spec.input.channels;
    dataOptions.validationFraction = run.config.validationFraction;
    dataOptions.splitSeed = run.config.splitSeed;
    const auto data = Dataset::open(ownData ? run.config.data : options.data, dataOptions);
    if (data.classNames() != run.classNames)
        throw ConfigError("the data's classes differ from the run's (" + std::to_string(data.classNames().size())
                          + " vs " + std::to_string(run.classNames.size()) + "); name the same class folders");
    // The run's own data: its validation split. Other data: every image in it.
    std::vector<std::size_t> samples = data.validationSamples();
    if (!ownData) {
        samples.insert(samples.end(), data.trainSamples().begin(), data.trainSamples().end());
        std::sort(samples.begin(), samples.end());
    }
    EvaluateOptions evaluate;
    evaluate.device = device;
    evaluate.precision = inferencePrecision(run.config.precision, device);
    const auto result = evaluateModel(*run.model, data, samples, evaluationView(run.spec), evaluate);
    if (options.json)
        std::cout << result.toJson(options.samples).dump(2) << "\n";
    else
        printEvaluation(result);
    return 0;
}

struct PredictOptions {
    std::string run;
    std::vector<std::string> images;
    int topK = 5;
    std::string device = "auto";
    bool json = false;
    bool csv = false;
};

std::string csvField(const std::string& text)
{
    if (text.find_first_of(",\"\n") == std::string::npos)
        return text;
    std::string quoted = "\"";
    for (const char c : text)
        quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
}

int runPredict(const PredictOptions& options)
{
    Predictor predictor(options.run, options.device);
    const auto sources = expandImagePaths(options.images);
    if (sources.empty())
        throw IoError("no images found in what was given");
    const auto predictions = predictor.predict(sources, options.topK);
    int unreadable = 0;
    if (options.json) {
        nlohmann::json all = nlohmann::json::array();
        for (const auto& p : predictions) {
            nlohmann::json top = nlohmann::json::array();
            for (const auto& score : p.top)
                top.push_back({{"class", score.name}, {"index", score.index}, {"probability", score.probability}});
            all.push_back({{"path", p.source}, {"top", top}});
            if (!p.error.empty())
                all.back()["error"] = p.error;
        }
        std::cout << all.dump(2) << "\n";
    } else if (options.csv) {
        std::cout << "path";
        for (int k = 1; k <= options.topK; ++k)
            std::cout << ",class_" << k << ",probability_" << k;
        std::cout << ",error\n";
        for (const auto& p : predictions) {
            std::cout << csvField(p.source);
            for (int k = 0; k < options.topK; ++k) {
                if (k < static_cast<int>(p.top.size()))
                    std::cout << "," << csvField(p.top[static_cast<std::size_t>(k)].name) << ","
                              << p.top[static_cast<std::size_t>(k)].probability;
                else
                    std::cout << ",,";
            }
            std::cout << "," << csvField(p.error) << "\n";
        }
    } else {
        for (const auto& p : predictions) {
            std::cout << p.source << ":";
            if (!p.error.empty())
                std::cout << " error: " << p.error;
            for (const auto& score : p.top) {
                char probability[32];
                std::snprintf(probability, sizeof probability, "%.1f%%", 100.0 * score.probability);
                std::cout << " " << score.name << " (" << probability << ")";
            }
            std::cout << "\n";
        }
    }
    for (const auto& p : predictions)
        unreadable += p.error.empty() ? 0 : 1;
    if (unreadable > 0)
        std::cerr << "warning: " << unreadable << " of " << predictions.size() << " images could not be read\n";
    return unreadable == static_cast<int>(predictions.size()) ? 1 : 0;
}

} // namespace

Command addEvalCommand(CLI::App& parent)
{
    auto options = std::make_shared<EvalOptions>();
    auto* app = parent.add_subcommand("eval", "Evaluate a run: top-1/top-5, per-class metrics, confusion matrix");
    app->add_option("--run", options->run, "The run folder")->required();
    app->add_option("--data", options->data, "Other data with the same classes (default: the run's validation split)");
    app->add_option("--weights", options->weights, "best or last")->capture_default_str();
    app->add_option("--device", options->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
    app->add_flag("--json", options->json, "Print one JSON object");
    app->add_flag("--samples", options->samples, "With --json: every image's prediction too");
    return {app, [options](const RuntimeInfo&) { return runEval(*options); }};
}

Command addPredictCommand(CLI::App& parent)
{
    auto options = std::make_shared<PredictOptions>();
    auto* app = parent.add_subcommand("predict", "Classify images (files or folders) with a trained run");
    app->add_option("--run", options->run, "The run folder")->required();
    app->add_option("images", options->images, "Image files or folders")->required();
    app->add_option("--topk", options->topK, "Classes per image")->capture_default_str()->check(CLI::Range(1, 1000));
    app->add_option("--device", options->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
    auto* json = app->add_flag("--json", options->json, "Print JSON");
    app->add_flag("--csv", options->csv, "Print CSV")->excludes(json);
    return {app, [options](const RuntimeInfo&) { return runPredict(*options); }};
}

} // namespace vitlab::cli
