#include "app/cli/commands.h"

#include "core/models/registry.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

namespace vitlab::cli {

namespace {

struct ModelsOptions {
    bool json = false;
    std::string pattern = "*";
};

nlohmann::json describe(const ModelSpec& spec, std::int64_t parameters, std::int64_t macs)
{
    return {{"name", spec.name},
            {"family", spec.family},
            {"architecture", spec.architecture},
            {"params", parameters},
            {"macs_per_image", macs},
            {"flops_per_image", 2 * macs},
            {"img_size", {spec.input.size[0], spec.input.size[1]}},
            {"in_chans", spec.input.channels},
            {"mean", spec.input.mean},
            {"std", spec.input.std},
            {"crop_pct", spec.input.cropPct},
            {"description", spec.description}};
}

} // namespace

Command addModelsCommand(CLI::App& parent)
{
    auto options = std::make_shared<ModelsOptions>();
    auto* app = parent.add_subcommand("models", "List the model registry: families, sizes, parameters, FLOPs");
    app->add_option("pattern", options->pattern, "Only names matching this wildcard, e.g. 'deit_*'");
    app->add_flag("--json", options->json, "Print a JSON array");
    return {app, [options](const RuntimeInfo&) {
                nlohmann::json list = nlohmann::json::array();
                if (!options->json)
                    std::printf("%-34s %-18s %9s %9s %9s\n", "name", "architecture", "params", "GFLOPs", "input");
                for (const auto& spec : ModelRegistry::instance().models(options->pattern)) {
                    const auto parameters = parameterCount(spec);
                    const auto macs = macsPerImage(spec);
                    if (options->json) {
                        list.push_back(describe(spec, parameters, macs));
                        continue;
                    }
                    const auto input = std::to_string(spec.input.size[0]) + "x" + std::to_string(spec.input.size[1])
                        + "x" + std::to_string(spec.input.channels);
                    std::printf("%-34s %-18s %8.2fM %9.3f %9s\n", spec.name.c_str(), spec.architecture.c_str(),
                                static_cast<double>(parameters) / 1e6, 2.0 * static_cast<double>(macs) / 1e9,
                                input.c_str());
                }
                if (options->json)
                    std::cout << list.dump(2) << "\n";
                return 0;
            }};
}

} // namespace vitlab::cli
