#include "core/models/registry.h"

#include "core/errors.h"
#include "core/models/deit.h"
#include "core/models/hybrid.h"
#include "core/models/swin.h"
#include "core/models/tnt.h"
#include "core/models/vit.h"
// Family headers: one include and one register call each.

#include <fnmatch.h>

#include <algorithm>
#include <fstream>

namespace vitlab {

namespace {

void registerAllFamilies(ModelRegistry& registry)
{
    registerVitFamily(registry);
    registerDeitFamily(registry);
    registerHybridFamily(registry);
    registerSwinFamily(registry);
    registerTntFamily(registry);
}

std::size_t editDistance(const std::string& a, const std::string& b)
{
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

InputConfig inputFromArgs(const nlohmann::json& args, std::array<double, 3> mean, std::array<double, 3> std)
{
    InputConfig input;
    input.mean = mean;
    input.std = std;
    input.channels = args.value("in_chans", std::int64_t{3});
    std::int64_t height = 224;
    std::int64_t width = 224;
    if (const auto it = args.find("img_size"); it != args.end()) {
        if (it->is_number_integer()) {
            height = width = it->get<std::int64_t>();
        } else if (it->is_array() && it->size() == 2 && (*it)[0].is_number_integer() && (*it)[1].is_number_integer()) {
            height = (*it)[0].get<std::int64_t>();
            width = (*it)[1].get<std::int64_t>();
        }
    }
    input.size = {height, width};
    input.cropPct = std::max(height, width) >= 128 ? 0.9 : 1.0;
    input.interpolation = std::max(height, width) >= 128 ? "bicubic" : "bilinear";
    return input;
}

std::array<double, 3> readTriple(const nlohmann::json& value, const char* what)
{
    if (!value.is_array() || (value.size() != 3 && value.size() != 1))
        throw ConfigError(std::string(what) + " must be a list of 1 or 3 numbers");
    std::array<double, 3> triple{};
    for (std::size_t i = 0; i < 3; ++i) {
        const auto& item = value[value.size() == 1 ? 0 : i];
        if (!item.is_number())
            throw ConfigError(std::string(what) + " must be a list of numbers");
        triple[i] = item.get<double>();
    }
    return triple;
}

} // namespace

const ModelRegistry& ModelRegistry::instance()
{
    static const ModelRegistry registry = [] {
        ModelRegistry r;
        registerAllFamilies(r);
        return r;
    }();
    return registry;
}

void ModelRegistry::addFamily(FamilyInfo family)
{
    const std::string name = family.family;
    m_families[name] = std::move(family);
}

void ModelRegistry::addModel(const std::string& name, const std::string& family, nlohmann::json args,
                             const std::string& description, std::array<double, 3> mean, std::array<double, 3> std,
                             const std::string& architecture)
{
    ModelSpec spec;
    spec.name = name;
    spec.family = family;
    spec.architecture = architecture.empty() ? this->family(family).architecture : architecture;
    spec.input = inputFromArgs(args, mean, std);
    spec.args = std::move(args);
    spec.description = description;
    m_models[name] = std::move(spec);
}

std::vector<ModelSpec> ModelRegistry::models(const std::string& pattern) const
{
    std::vector<ModelSpec> found;
    for (const auto& [name, spec] : m_models) {
        if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0)
            found.push_back(spec);
    }
    return found;
}

const ModelSpec& ModelRegistry::model(const std::string& name) const
{
    if (const auto it = m_models.find(name); it != m_models.end())
        return it->second;
    std::vector<std::pair<std::size_t, std::string>> ranked;
    for (const auto& [known, spec] : m_models)
        ranked.emplace_back(editDistance(name, known), known);
    std::sort(ranked.begin(), ranked.end());
    std::string message = "unknown model \"" + name + "\"";
    if (!ranked.empty() && ranked.front().first <= std::max<std::size_t>(3, name.size() / 3)) {
        message += "; did you mean";
        for (std::size_t i = 0; i < std::min<std::size_t>(3, ranked.size()); ++i)
            message += (i ? ", " : " ") + ranked[i].second;
        message += "?";
    }
    throw ConfigError(message + " (vitlab-cli models lists them all)");
}

const FamilyInfo& ModelRegistry::family(const std::string& family) const
{
    if (const auto it = m_families.find(family); it != m_families.end())
        return it->second;
    std::string known;
    for (const auto& [name, info] : m_families)
        known += (known.empty() ? "" : ", ") + name;
    throw ConfigError("unknown model family \"" + family + "\"; known families: " + known);
}

std::vector<std::string> ModelRegistry::familyNames() const
{
    std::vector<std::string> names;
    for (const auto& [name, info] : m_families)
        names.push_back(name);
    return names;
}

ModelSpec specFromConfig(const nlohmann::json& config)
{
    if (!config.is_object())
        throw ConfigError("a model config must be a JSON object with \"family\" and timm's constructor arguments");
    const auto familyIt = config.find("family");
    if (familyIt == config.end() || !familyIt->is_string())
        throw ConfigError("a model config needs \"family\" (one of vit, deit, swin, tnt, hybrid)");
    const auto& family = ModelRegistry::instance().family(familyIt->get<std::string>());
    ModelSpec spec;
    spec.family = family.family;
    spec.architecture = family.architecture;
    spec.args = config;
    auto mean = family.defaultMean;
    auto std = family.defaultStd;
    if (const auto it = config.find("mean"); it != config.end())
        mean = readTriple(*it, "mean");
    if (const auto it = config.find("std"); it != config.end())
        std = readTriple(*it, "std");
    for (const char* key : {"family", "timm_class", "mean", "std", "name", "architecture", "crop_pct", "interpolation"})
        spec.args.erase(key);
    spec.name = config.value("name", std::string{});
    spec.architecture = config.value("architecture", spec.architecture);
    spec.input = inputFromArgs(spec.args, mean, std);
    if (const auto it = config.find("crop_pct"); it != config.end() && it->is_number())
        spec.input.cropPct = it->get<double>();
    if (const auto it = config.find("interpolation"); it != config.end() && it->is_string())
        spec.input.interpolation = it->get<std::string>();
    spec.description = "built from a config";
    return spec;
}

nlohmann::json specToConfig(const ModelSpec& spec)
{
    nlohmann::json config = spec.args;
    config["family"] = spec.family;
    config["architecture"] = spec.architecture;
    config["mean"] = spec.input.mean;
    config["std"] = spec.input.std;
    config["crop_pct"] = spec.input.cropPct;
    config["interpolation"] = spec.input.interpolation;
    if (!spec.name.empty())
        config["name"] = spec.name;
    return config;
}

ModelSpec resolveModelSpec(const std::string& nameOrConfigPath)
{
    const bool looksLikeFile = nameOrConfigPath.find('/') != std::string::npos
        || (nameOrConfigPath.size() > 5 && nameOrConfigPath.substr(nameOrConfigPath.size() - 5) == ".json");
    if (!looksLikeFile)
        return ModelRegistry::instance().model(nameOrConfigPath);
    std::ifstream in(nameOrConfigPath);
    if (!in)
        throw IoError("cannot read the model config " + nameOrConfigPath);
    nlohmann::json config;
    try {
        in >> config;
    } catch (const nlohmann::json::exception& error) {
        throw ConfigError("the model config " + nameOrConfigPath + " is not valid JSON: " + error.what());
    }
    // The fixtures' index.json style: {"config": {...}} is accepted too.
    if (config.is_object() && config.contains("config") && !config.contains("family"))
        config = config["config"];
    return specFromConfig(config);
}

ModelSpec withImageSize(ModelSpec spec, std::int64_t height, std::int64_t width)
{
    spec.args["img_size"] = height == width ? nlohmann::json(height) : nlohmann::json::array({height, width});
    spec.input.size = {height, width};
    return spec;
}

ModelSpec withInputChannels(ModelSpec spec, std::int64_t channels)
{
    spec.args["in_chans"] = channels;
    spec.input.channels = channels;
    return spec;
}

ModelSpec withNumClasses(ModelSpec spec, std::int64_t classes)
{
    spec.args["num_classes"] = classes;
    return spec;
}

Classifier createModel(const ModelSpec& spec)
{
    return ModelRegistry::instance().family(spec.family).build(spec.args);
}

std::int64_t countParameters(const ClassifierImpl& model, bool trainableOnly)
{
    std::int64_t count = 0;
    for (const auto& parameter : model.parameters()) {
        if (!trainableOnly || parameter.requires_grad())
            count += parameter.numel();
    }
    return count;
}

std::int64_t macsPerImage(const ModelSpec& spec)
{
    return ModelRegistry::instance().family(spec.family).macsPerImage(spec.args);
}

std::int64_t parameterCount(const ModelSpec& spec)
{
    return ModelRegistry::instance().family(spec.family).parameterCount(spec.args);
}

} // namespace vitlab
