#include "core/hub/pretrained_files.h"

#include "core/hub/hf_cache.h"

#include <nlohmann/json.hpp>

#include <fstream>

namespace vitlab::hub {

namespace fs = std::filesystem;

namespace {

constexpr const char* kHubPrefix = "hub:";

PretrainedWeights describedByConfig(const fs::path& config, PretrainedWeights weights)
{
    std::ifstream in(config);
    nlohmann::json parsed;
    try {
        in >> parsed;
    } catch (const nlohmann::json::exception& error) {
        throw FormatError(config.string() + " is not JSON (" + error.what() + ")");
    }
    try {
        return readHubConfig(parsed, std::move(weights));
    } catch (const FormatError& error) {
        throw FormatError(config.string() + ": " + error.what());
    }
}

} // namespace

bool isHubWeights(const std::string& weights)
{
    return weights == "hub" || weights.rfind(kHubPrefix, 0) == 0;
}

PretrainedWeights pretrainedWeightsFor(const std::string& weights, const std::string& model)
{
    if (!isHubWeights(weights))
        throw ConfigError("\"" + weights + "\" is a file, not hub weights");
    const auto named = weights == "hub" ? std::string{} : weights.substr(std::string(kHubPrefix).size());
    if (named.empty()) {
        if (model.empty())
            throw ConfigError("--weights hub takes the model's default tag: give --model, or use hub:NAME.TAG");
        return findPretrainedWeights(model);
    }
    const auto dot = named.find('.');
    const auto namedModel = named.substr(0, dot);
    if (!model.empty() && namedModel != model)
        throw ConfigError("the weights " + weights + " are for " + namedModel + ", not for the model " + model);
    try {
        return findPretrainedWeights(named);
    } catch (const ConfigError&) {
        if (dot == std::string::npos || dot + 1 == named.size())
            throw;
        // A tag ViTLab does not list (a newer timm's): the repository's config.json describes it.
        auto unlisted = findPretrainedWeights(namedModel);
        unlisted.tag = named.substr(dot + 1);
        unlisted.description = "a tag ViTLab does not list; preprocessing from its config.json";
        return unlisted;
    }
}

std::optional<PretrainedFiles> cachedPretrainedFiles(const fs::path& cache, const PretrainedWeights& weights)
{
    const auto file = findCachedFile(cache, weights.repository(), kPretrainedWeightsFile);
    if (file.state != CachedFile::State::Present)
        return std::nullopt;
    PretrainedFiles files;
    files.weights = file.path;
    files.described = weights;
    const auto config = findCachedFile(cache, weights.repository(), kPretrainedConfigFile, file.commit);
    if (config.state == CachedFile::State::Present) {
        files.config = config.path;
        files.described = describedByConfig(config.path, weights);
    }
    return files;
}

PretrainedFiles fetchPretrainedFiles(const HubClient& client, const PretrainedWeights& weights,
                                     const DownloadProgress& progress)
{
    PretrainedFiles files;
    files.described = weights;
    try {
        files.config = client.download(weights.repository(), kPretrainedConfigFile);
        files.described = describedByConfig(files.config, weights);
    } catch (const HubError& error) {
        // timm's repositories all have one, but the weights are what matter: go on without it
        // only when the Hub says it does not exist.
        if (error.kind() != HubError::Kind::NotFound || std::string(error.what()).find("has no file") == std::string::npos)
            throw;
    }
    files.weights = client.download(weights.repository(), kPretrainedWeightsFile, "main", progress);
    return files;
}

PretrainedFiles requireCachedPretrainedFiles(const std::string& weights, const std::string& model)
{
    const auto pretrained = pretrainedWeightsFor(weights, model);
    const auto cache = cacheDirectory();
    if (auto files = cachedPretrainedFiles(cache, pretrained))
        return *files;
    throw IoError(pretrained.repository() + " is not downloaded yet (the cache is " + cache.string()
                  + "): vitlab-cli weights pull " + pretrained.name());
}

} // namespace vitlab::hub
