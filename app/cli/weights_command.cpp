#include "app/cli/commands.h"
#include "app/cli/hub_weights.h"

#include "core/hub/hf_cache.h"
#include "core/hub/pretrained_files.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

namespace vitlab::cli {

namespace {

struct WeightsOptions {
    std::string pattern = "*";
    std::string name;
    bool json = false;
};

int listWeights(const WeightsOptions& options)
{
    const auto cache = hub::cacheDirectory();
    nlohmann::json list = nlohmann::json::array();
    if (!options.json)
        std::printf("%-50s %8s %11s  %-7s %s\n", "name", "classes", "size", "cached", "trained on");
    for (const auto& weights : pretrainedWeights(options.pattern)) {
        const auto cached = hub::cachedPretrainedFiles(cache, weights);
        std::error_code error;
        const auto exact = cached ? static_cast<std::int64_t>(std::filesystem::file_size(cached->weights, error)) : -1;
        const bool isDefault = pretrainedWeightsOf(weights.model).front().tag == weights.tag;
        if (options.json) {
            list.push_back({{"name", weights.name()},
                            {"model", weights.model},
                            {"tag", weights.tag},
                            {"default", isDefault},
                            {"repository", weights.repository()},
                            {"num_classes", weights.numClasses},
                            {"input_size", {weights.input.channels, weights.input.size[0], weights.input.size[1]}},
                            {"mean", weights.input.mean},
                            {"std", weights.input.std},
                            {"crop_pct", weights.input.cropPct},
                            {"interpolation", weights.input.interpolation},
                            {"license", weights.license},
                            {"bytes", cached && !error ? exact : estimatedFileBytes(weights)},
                            {"bytes_exact", cached && !error},
                            {"cached", cached ? cached->weights.string() : std::string{}},
                            {"description", weights.description}});
            continue;
        }
        const auto size = cached && !error ? hub::formatBytes(exact) : "~" + hub::formatBytes(estimatedFileBytes(weights));
        std::printf("%-50s %8lld %11s  %-7s %s%s\n", weights.name().c_str(), static_cast<long long>(weights.numClasses),
                    size.c_str(), cached ? "yes" : "no", weights.description.c_str(), isDefault ? " (default)" : "");
    }
    if (options.json)
        std::cout << list.dump(2) << "\n";
    else
        std::printf("cache: %s\n", cache.string().c_str());
    return 0;
}

int pullWeights(const WeightsOptions& options)
{
    std::string model;
    const auto resolved = resolveWeights("hub:" + options.name, model);
    std::cout << resolved.file.string() << "\n";
    return 0;
}

} // namespace

Command addWeightsCommand(CLI::App& parent)
{
    auto options = std::make_shared<WeightsOptions>();
    auto* app = parent.add_subcommand("weights", "timm's pretrained weights on the Hugging Face Hub, and the cache");
    app->require_subcommand(1);
    auto* list = app->add_subcommand("list", "Published tags of the registry's models: classes, size, cached or not");
    list->add_option("pattern", options->pattern, "Only models matching this wildcard, e.g. 'swin_*'");
    list->add_flag("--json", options->json, "Print a JSON array");
    auto* pull = app->add_subcommand("pull", "Download weights into the Hugging Face cache; prints their path");
    pull->add_option("name", options->name, "NAME (its default tag) or NAME.TAG, as vitlab-cli weights list shows")
        ->required();
    return {app, [options, list](const RuntimeInfo&) { return list->parsed() ? listWeights(*options) : pullWeights(*options); }};
}

} // namespace vitlab::cli
