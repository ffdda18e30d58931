#pragma once

#include "core/models/classifier.h"

#include <nlohmann/json.hpp>

#include <array>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace vitlab {

/// What the data pipeline must feed a model: derived from the model, never copied by hand.
struct InputConfig {
    std::int64_t channels = 3;
    std::array<std::int64_t, 2> size{224, 224};
    std::array<double, 3> mean{0.485, 0.456, 0.406};
    std::array<double, 3> std{0.229, 0.224, 0.225};
    /// Fraction of the resized image kept by the evaluation centre crop.
    double cropPct = 0.9;
    /// How images are resized: "bicubic" (timm's choice at 224 px) or "bilinear" (small presets).
    std::string interpolation = "bicubic";
};

inline constexpr std::array<double, 3> kImagenetMean{0.485, 0.456, 0.406};
inline constexpr std::array<double, 3> kImagenetStd{0.229, 0.224, 0.225};
inline constexpr std::array<double, 3> kInceptionMean{0.5, 0.5, 0.5};
inline constexpr std::array<double, 3> kInceptionStd{0.5, 0.5, 0.5};

/// A model to build: its family, timm's constructor arguments and its input configuration.
struct ModelSpec {
    /// Registry name ("vit_tiny_patch16_224"), or empty for a model built from a config.
    std::string name;
    /// The builder: "vit", "deit", "swin", "tnt" or "hybrid" (as in the fixtures' index.json).
    std::string family;
    /// Display name of the architecture: "ViT", "DeiT", "DeiT (distilled)", "Swin", "TNT", "ResNet+ViT".
    std::string architecture;
    nlohmann::json args = nlohmann::json::object();
    InputConfig input;
    std::string description;
};

/// A family: how to build it from arguments and how much work one image costs.
struct FamilyInfo {
    std::string family;
    std::string architecture;
    std::array<double, 3> defaultMean = kImagenetMean;
    std::array<double, 3> defaultStd = kImagenetStd;
    std::function<Classifier(const nlohmann::json& args)> build;
    /// Multiply-accumulates of one forward pass of one image, counted analytically from the
    /// arguments (linear, convolution and attention products).
    std::function<std::int64_t(const nlohmann::json& args)> macsPerImage;
    /// Parameters of the model these arguments build, counted without building it (listing
    /// the registry must be instant; building ViT-B takes seconds). Tests hold it to the built count.
    std::function<std::int64_t(const nlohmann::json& args)> parameterCount;
};

/// Every family and named model. Families register through one explicit function each, called
/// from instance(): static self-registering objects in a static library get dropped by the linker.
class ModelRegistry {
public:
    static const ModelRegistry& instance();

    void addFamily(FamilyInfo family);
    /// Adds a named model; its input config is derived from its arguments and family.
    void addModel(const std::string& name, const std::string& family, nlohmann::json args,
                  const std::string& description, std::array<double, 3> mean, std::array<double, 3> std,
                  const std::string& architecture = {});

    /// Models whose names match a shell wildcard ("vit_*", "*distilled*"), sorted by name.
    std::vector<ModelSpec> models(const std::string& pattern = "*") const;
    /// Throws ConfigError naming the closest names when `name` is unknown.
    const ModelSpec& model(const std::string& name) const;
    const FamilyInfo& family(const std::string& family) const;
    std::vector<std::string> familyNames() const;

private:
    std::map<std::string, FamilyInfo> m_families;
    std::map<std::string, ModelSpec> m_models;
};

/// A spec from a config object: {"family": ..., timm's constructor arguments...}, optionally
/// with "mean" and "std". Throws ConfigError for an unknown family.
ModelSpec specFromConfig(const nlohmann::json& config);
/// The config that specFromConfig turns back into `spec`: family, timm's arguments, name,
/// architecture and input normalisation. Run folders keep it, so a run rebuilds its exact model.
nlohmann::json specToConfig(const ModelSpec& spec);
/// A registry name, or the path of a JSON config file.
ModelSpec resolveModelSpec(const std::string& nameOrConfigPath);

/// Copies of `spec` for another image size (square), channel count or class count.
ModelSpec withImageSize(ModelSpec spec, std::int64_t height, std::int64_t width);
ModelSpec withInputChannels(ModelSpec spec, std::int64_t channels);
ModelSpec withNumClasses(ModelSpec spec, std::int64_t classes);

/// Builds the model, freshly initialised.
Classifier createModel(const ModelSpec& spec);

std::int64_t countParameters(const ClassifierImpl& model, bool trainableOnly = false);
std::int64_t macsPerImage(const ModelSpec& spec);
/// The family's analytic count: equal to countParameters(*createModel(spec)), without building.
std::int64_t parameterCount(const ModelSpec& spec);

} // namespace vitlab
