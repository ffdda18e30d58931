#pragma once

// A small trained run for the tests that need one: a JSON model trained for a few epochs on the
// CPU, in float32, into its own run folder.
#include "core/train/trainer.h"

#include <filesystem>
#include <fstream>
#include <string>

namespace vitlab::test {

/// A two-block ViT for 16 px images, trained in a second.
constexpr const char* kTinyVitJson =
    R"({"family": "vit", "img_size": 16, "patch_size": 4, "embed_dim": 32, "depth": 2, "num_heads": 2})";

/// Trains `modelJson` on the image folder `data` for `epochs` into root/runs/<name>. Returns the run
/// folder, or an empty path when the run did not finish.
inline std::filesystem::path trainTinyRun(const std::filesystem::path& root, const std::filesystem::path& data,
                                          const std::string& name, const std::string& modelJson, int epochs)
{
    const auto modelFile = root / (name + ".json");
    std::ofstream(modelFile) << modelJson;
    TrainConfig config;
    config.data = data.string();
    config.model = modelFile.string();
    config.epochs = epochs;
    config.batchSize = 8;
    config.precision = Precision::Float32;
    config.device = "cpu";
    config.runsDirectory = (root / "runs").string();
    config.runName = name;
    TrainControl control;
    if (trainRun(config, {}, control).outcome != RunOutcome::Finished)
        return {};
    return root / "runs" / name;
}

} // namespace vitlab::test
