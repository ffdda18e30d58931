#include "core/models/pretrained.h"

#include "core/errors.h"

#include <fnmatch.h>

namespace vitlab {

namespace {

enum class Normalisation { Inception, Imagenet };

struct TagRow {
    const char* model;
    const char* tag;
    std::int64_t classes;
    Normalisation normalisation;
    const char* description;
    const char* license;
};

// timm 1.0's pretrained configurations of the registry's standard models, each model's default
// (the first in timm's default_cfgs) first. All are 224 px, bicubic, centre crop 0.9.
// tst_pretrained holds this table to timm's own where timm is installed.
constexpr TagRow kTags[] = {
    {"vit_tiny_patch16_224", "augreg_in21k_ft_in1k", 1000, Normalisation::Inception,
     "ImageNet-21k, fine-tuned on ImageNet-1k", "apache-2.0"},
    {"vit_tiny_patch16_224", "augreg_in21k", 21843, Normalisation::Inception, "ImageNet-21k", "apache-2.0"},
    {"vit_small_patch16_224", "augreg_in21k_ft_in1k", 1000, Normalisation::Inception,
     "ImageNet-21k, fine-tuned on ImageNet-1k", "apache-2.0"},
    {"vit_small_patch16_224", "augreg_in1k", 1000, Normalisation::Inception, "ImageNet-1k", "apache-2.0"},
    {"vit_small_patch16_224", "augreg_in21k", 21843, Normalisation::Inception, "ImageNet-21k", "apache-2.0"},
    {"vit_small_patch16_224", "dino", 0, Normalisation::Imagenet, "DINO self-supervised, no head", "apache-2.0"},
    {"vit_base_patch16_224", "augreg2_in21k_ft_in1k", 1000, Normalisation::Inception,
     "ImageNet-21k, fine-tuned on ImageNet-1k (AugReg 2)", "apache-2.0"},
    {"vit_base_patch16_224", "augreg_in21k_ft_in1k", 1000, Normalisation::Inception,
     "ImageNet-21k, fine-tuned on ImageNet-1k", "apache-2.0"},
    {"vit_base_patch16_224", "orig_in21k_ft_in1k", 1000, Normalisation::Inception,
     "Google's original ImageNet-21k, fine-tuned on ImageNet-1k", "apache-2.0"},
    {"vit_base_patch16_224", "orig_in21k", 0, Normalisation::Inception, "Google's original ImageNet-21k, no head",
     "apache-2.0"},
    {"vit_base_patch16_224", "augreg_in1k", 1000, Normalisation::Inception, "ImageNet-1k", "apache-2.0"},
    {"vit_base_patch16_224", "augreg_in21k", 21843, Normalisation::Inception, "ImageNet-21k", "apache-2.0"},
    {"vit_base_patch16_224", "sam_in1k", 1000, Normalisation::Inception, "ImageNet-1k, SAM optimiser", "apache-2.0"},
    {"vit_base_patch16_224", "mae", 0, Normalisation::Imagenet, "MAE self-supervised, no head", "cc-by-nc-4.0"},
    {"vit_base_patch16_224", "dino", 0, Normalisation::Imagenet, "DINO self-supervised, no head", "apache-2.0"},
    {"deit_tiny_patch16_224", "fb_in1k", 1000, Normalisation::Imagenet, "ImageNet-1k", "apache-2.0"},
    {"deit_small_patch16_224", "fb_in1k", 1000, Normalisation::Imagenet, "ImageNet-1k", "apache-2.0"},
    {"deit_tiny_distilled_patch16_224", "fb_in1k", 1000, Normalisation::Imagenet,
     "ImageNet-1k, distilled from a RegNet", "apache-2.0"},
    {"deit_small_distilled_patch16_224", "fb_in1k", 1000, Normalisation::Imagenet,
     "ImageNet-1k, distilled from a RegNet", "apache-2.0"},
    {"swin_tiny_patch4_window7_224", "ms_in1k", 1000, Normalisation::Imagenet, "ImageNet-1k", "mit"},
    {"swin_tiny_patch4_window7_224", "ms_in22k_ft_in1k", 1000, Normalisation::Imagenet,
     "ImageNet-22k, fine-tuned on ImageNet-1k", "mit"},
    {"swin_tiny_patch4_window7_224", "ms_in22k", 21841, Normalisation::Imagenet, "ImageNet-22k", "mit"},
    {"swin_small_patch4_window7_224", "ms_in22k_ft_in1k", 1000, Normalisation::Imagenet,
     "ImageNet-22k, fine-tuned on ImageNet-1k", "mit"},
    {"swin_small_patch4_window7_224", "ms_in1k", 1000, Normalisation::Imagenet, "ImageNet-1k", "mit"},
    {"swin_small_patch4_window7_224", "ms_in22k", 21841, Normalisation::Imagenet, "ImageNet-22k", "mit"},
    {"tnt_s_patch16_224", "in1k", 1000, Normalisation::Inception, "ImageNet-1k", "apache-2.0"},
    {"tnt_b_patch16_224", "in1k", 1000, Normalisation::Inception, "ImageNet-1k", "apache-2.0"},
    {"vit_tiny_r_s16_p8_224", "augreg_in21k_ft_in1k", 1000, Normalisation::Inception,
     "ImageNet-21k, fine-tuned on ImageNet-1k", "apache-2.0"},
    {"vit_tiny_r_s16_p8_224", "augreg_in21k", 21843, Normalisation::Inception, "ImageNet-21k", "apache-2.0"},
    {"vit_small_r26_s32_224", "augreg_in21k_ft_in1k", 1000, Normalisation::Inception,
     "ImageNet-21k, fine-tuned on ImageNet-1k", "apache-2.0"},
    {"vit_small_r26_s32_224", "augreg_in21k", 21843, Normalisation::Inception, "ImageNet-21k", "apache-2.0"},
};

PretrainedWeights fromRow(const TagRow& row)
{
    PretrainedWeights weights;
    weights.model = row.model;
    weights.tag = row.tag;
    weights.numClasses = row.classes;
    weights.description = row.description;
    weights.license = row.license;
    weights.input = ModelRegistry::instance().model(row.model).input;
    weights.input.size = {224, 224};
    weights.input.cropPct = 0.9;
    weights.input.interpolation = "bicubic";
    const bool inception = row.normalisation == Normalisation::Inception;
    weights.input.mean = inception ? kInceptionMean : kImagenetMean;
    weights.input.std = inception ? kInceptionStd : kImagenetStd;
    return weights;
}

std::array<double, 3> readTriple(const nlohmann::json& value, const char* key)
{
    if (!value.is_array() || value.size() != 3)
        throw FormatError(std::string("the Hub config's ") + key + " is not a list of 3 numbers");
    std::array<double, 3> triple{};
    for (std::size_t i = 0; i < 3; ++i) {
        if (!value[i].is_number())
            throw FormatError(std::string("the Hub config's ") + key + " is not a list of 3 numbers");
        triple[i] = value[i].get<double>();
    }
    return triple;
}

} // namespace

std::vector<PretrainedWeights> pretrainedWeightsOf(const std::string& model)
{
    std::vector<PretrainedWeights> found;
    for (const auto& row : kTags) {
        if (model == row.model)
            found.push_back(fromRow(row));
    }
    return found;
}

std::vector<PretrainedWeights> pretrainedWeights(const std::string& pattern)
{
    std::vector<PretrainedWeights> found;
    for (const auto& spec : ModelRegistry::instance().models(pattern)) {
        auto tags = pretrainedWeightsOf(spec.name);
        found.insert(found.end(), tags.begin(), tags.end());
    }
    return found;
}

PretrainedWeights findPretrainedWeights(const std::string& nameOrNameDotTag)
{
    const auto dot = nameOrNameDotTag.find('.');
    const auto model = nameOrNameDotTag.substr(0, dot);
    const auto tag = dot == std::string::npos ? std::string{} : nameOrNameDotTag.substr(dot + 1);
    ModelRegistry::instance().model(model); // throws, naming the closest models
    const auto tags = pretrainedWeightsOf(model);
    if (tags.empty())
        throw ConfigError("timm publishes no weights for " + model
                          + " (a small preset: train it from scratch; vitlab-cli weights list shows what is published)");
    if (tag.empty())
        return tags.front();
    std::string choices;
    for (const auto& weights : tags) {
        if (weights.tag == tag)
            return weights;
        choices += (choices.empty() ? "" : ", ") + weights.tag;
    }
    throw ConfigError("timm has no tag \"" + tag + "\" for " + model + "; its tags: " + choices);
}

PretrainedWeights readHubConfig(const nlohmann::json& config, PretrainedWeights known)
{
    if (!config.is_object() || !config.contains("pretrained_cfg") || !config["pretrained_cfg"].is_object())
        throw FormatError("the repository's config.json is not timm's (no \"pretrained_cfg\")");
    const auto& pretrained = config["pretrained_cfg"];
    if (const auto it = config.find("architecture"); it != config.end() && it->is_string() && known.model.empty())
        known.model = it->get<std::string>();
    if (const auto it = pretrained.find("tag"); it != pretrained.end() && it->is_string() && known.tag.empty())
        known.tag = it->get<std::string>();
    if (const auto it = pretrained.find("mean"); it != pretrained.end())
        known.input.mean = readTriple(*it, "mean");
    if (const auto it = pretrained.find("std"); it != pretrained.end())
        known.input.std = readTriple(*it, "std");
    if (const auto it = pretrained.find("crop_pct"); it != pretrained.end() && it->is_number()) {
        const double crop = it->get<double>();
        if (!(crop > 0.0 && crop <= 1.0))
            throw FormatError("the Hub config's crop_pct " + std::to_string(crop) + " is not in (0, 1]");
        known.input.cropPct = crop;
    }
    if (const auto it = pretrained.find("interpolation"); it != pretrained.end() && it->is_string()) {
        const auto interpolation = it->get<std::string>();
        if (interpolation != "bilinear" && interpolation != "bicubic")
            throw FormatError("the Hub config's interpolation \"" + interpolation + "\" is neither bilinear nor bicubic");
        known.input.interpolation = interpolation;
    }
    if (const auto it = pretrained.find("input_size"); it != pretrained.end()) {
        if (!it->is_array() || it->size() != 3 || !(*it)[0].is_number_integer() || !(*it)[1].is_number_integer()
            || !(*it)[2].is_number_integer())
            throw FormatError("the Hub config's input_size is not [channels, height, width]");
        known.input.channels = (*it)[0].get<std::int64_t>();
        known.input.size = {(*it)[1].get<std::int64_t>(), (*it)[2].get<std::int64_t>()};
    }
    const auto classes = config.contains("num_classes") ? config["num_classes"] : pretrained.value("num_classes", nlohmann::json{});
    if (classes.is_number_integer())
        known.numClasses = classes.get<std::int64_t>();
    return known;
}

ModelSpec withPreprocessingOf(ModelSpec spec, const PretrainedWeights& weights)
{
    spec.input.mean = weights.input.mean;
    spec.input.std = weights.input.std;
    spec.input.cropPct = weights.input.cropPct;
    spec.input.interpolation = weights.input.interpolation;
    return spec;
}

std::int64_t estimatedFileBytes(const PretrainedWeights& weights)
{
    auto spec = ModelRegistry::instance().model(weights.model);
    spec.args["num_classes"] = weights.numClasses;
    // float32 tensors and a JSON header of about 100 bytes per tensor.
    return parameterCount(spec) * 4 + 40'000;
}

} // namespace vitlab
