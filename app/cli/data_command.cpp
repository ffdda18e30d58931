#include "app/cli/commands.h"

#include "core/data/inspect.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <memory>

namespace vitlab::cli {

namespace {

struct DataOptions {
    std::string data;
    bool json = false;
    double validationFraction = 0.2;
    std::uint64_t seed = 0;
};

nlohmann::json reportJson(const ScanReport& report)
{
    nlohmann::json classes = nlohmann::json::array();
    for (const auto& entry : report.classes)
        classes.push_back({{"name", entry.name},
                           {"count", entry.train + entry.validation},
                           {"train", entry.train},
                           {"validation", entry.validation}});
    nlohmann::json skipped = nlohmann::json::array();
    for (const auto& file : report.skipped)
        skipped.push_back({{"path", file.path}, {"reason", file.reason}, {"link", file.link}});
    nlohmann::json leakage = nlohmann::json::array();
    for (const auto& [train, validation] : report.leakage)
        leakage.push_back({{"train", train}, {"validation", validation}});
    return {{"root", report.root.string()},
            {"explicit_splits", report.explicitSplits},
            {"classes", classes},
            {"skipped", skipped},
            {"duplicates", report.duplicateGroups},
            {"leakage", leakage},
            {"empty_classes", report.emptyClasses},
            {"imbalance_ratio", report.imbalanceRatio},
            {"image_size",
             {{"min_width", report.minWidth},
              {"max_width", report.maxWidth},
              {"min_height", report.minHeight},
              {"max_height", report.maxHeight},
              {"mean_width", report.meanWidth},
              {"mean_height", report.meanHeight}}}};
}

void printReport(const ScanReport& report)
{
    std::printf("%s: %zu classes%s\n", report.root.c_str(), report.classes.size(),
                report.explicitSplits ? " (train and validation folders)" : "");
    std::printf("  %-28s %9s %11s\n", "class", "train", "validation");
    for (const auto& entry : report.classes)
        std::printf("  %-28s %9lld %11lld\n", entry.name.c_str(), static_cast<long long>(entry.train),
                    static_cast<long long>(entry.validation));
    std::printf("image size: %lldx%lld to %lldx%lld (mean %.0fx%.0f); largest class / smallest: %.2f\n",
                static_cast<long long>(report.minWidth), static_cast<long long>(report.minHeight),
                static_cast<long long>(report.maxWidth), static_cast<long long>(report.maxHeight), report.meanWidth,
                report.meanHeight, report.imbalanceRatio);
    for (const auto& name : report.emptyClasses)
        std::printf("empty class: %s\n", name.c_str());
    for (const auto& group : report.duplicateGroups) {
        std::printf("identical files:");
        for (const auto& path : group)
            std::printf(" %s", path.c_str());
        std::printf("\n");
    }
    for (const auto& [train, validation] : report.leakage)
        std::printf("in both training and validation: %s = %s\n", train.c_str(), validation.c_str());
    for (const auto& file : report.skipped)
        std::printf("%s %s: %s\n", file.link ? "link not followed" : "skipped", file.path.c_str(), file.reason.c_str());
}

} // namespace

Command addDataCommand(CLI::App& parent)
{
    auto options = std::make_shared<DataOptions>();
    auto* data = parent.add_subcommand("data", "Datasets: inspect an image folder or an IDX set");
    data->require_subcommand(1);
    auto* inspect = data->add_subcommand("inspect", "Classes, counts, image sizes and every problem file");
    inspect->add_option("--data", options->data, "An image folder (one sub-folder per class) or fashion-mnist")
        ->required();
    inspect->add_option("--val-fraction", options->validationFraction,
                        "Share of each class held out when the folder has no train/val split")
        ->check(CLI::Range(0.0, 0.95));
    inspect->add_option("--seed", options->seed, "Seed of the validation split");
    inspect->add_flag("--json", options->json, "Print one JSON object");
    return {data, [options](const RuntimeInfo&) {
                ScanOptions scan;
                scan.validationFraction = options->validationFraction;
                scan.seed = options->seed;
                const auto report = inspectDataset(options->data, scan);
                if (options->json)
                    std::cout << reportJson(report).dump(2) << "\n";
                else
                    printReport(report);
                return 0;
            }};
}

} // namespace vitlab::cli
