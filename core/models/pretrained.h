#pragma once

// timm's pretrained weights for the registry's standard models: for each, the tags timm publishes
// on the Hugging Face Hub (the default first) and the preprocessing the weights were trained with.
// Fine-tuning and inference take their normalisation from here (or from the repository's own
// config.json), never from a copy by hand.
#include "core/models/registry.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace vitlab {

struct PretrainedWeights {
    /// The registry's model name: "vit_tiny_patch16_224".
    std::string model;
    /// timm's tag: "augreg_in21k_ft_in1k".
    std::string tag;
    /// The preprocessing of the weights: size, mean, std, crop fraction, interpolation.
    InputConfig input;
    /// Classes of the file's head; 0 for a file without a head (self-supervised weights).
    std::int64_t numClasses = 1000;
    /// What they were trained on, in a few words.
    std::string description;
    std::string license;

    /// "vit_tiny_patch16_224.augreg_in21k_ft_in1k", timm's pretrained name.
    std::string name() const { return model + "." + tag; }
    /// The Hub repository: "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k".
    std::string repository() const { return "timm/" + name(); }
};

/// The file timm publishes in every repository.
inline constexpr const char* kPretrainedWeightsFile = "model.safetensors";
/// The repository's description of the weights (architecture, classes, preprocessing).
inline constexpr const char* kPretrainedConfigFile = "config.json";

/// The model's tags, timm's default first; empty for a model without published weights (presets).
std::vector<PretrainedWeights> pretrainedWeightsOf(const std::string& model);
/// Every tag of every model whose name matches a shell wildcard, by model then timm's order.
std::vector<PretrainedWeights> pretrainedWeights(const std::string& pattern = "*");

/// "NAME" (its default tag) or "NAME.TAG". Throws ConfigError naming the choices when the model
/// has no published weights or no such tag.
PretrainedWeights findPretrainedWeights(const std::string& nameOrNameDotTag);

/// The weights' preprocessing as timm writes it in a repository's config.json
/// ({"architecture", "num_classes", "pretrained_cfg": {"input_size", "mean", "std", "crop_pct",
/// "interpolation", ...}}), over `known` (the registry's entry, or a bare one). Throws FormatError
/// for a config that is not timm's.
PretrainedWeights readHubConfig(const nlohmann::json& config, PretrainedWeights known);

/// `spec` with the weights' normalisation, crop fraction and interpolation (size and classes kept:
/// fine-tuning may change both).
ModelSpec withPreprocessingOf(ModelSpec spec, const PretrainedWeights& weights);

/// Bytes of the float32 .safetensors file of these weights, counted from the architecture (the
/// Hub's exact size is known once asked for or cached).
std::int64_t estimatedFileBytes(const PretrainedWeights& weights);

} // namespace vitlab
