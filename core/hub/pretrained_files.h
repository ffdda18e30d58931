#pragma once

// timm's pretrained weights as files: "--weights hub" and "--weights hub:NAME.TAG" resolved to the
// cached model.safetensors (downloaded when asked to), with the preprocessing its repository's
// config.json gives. The CLI, the app and the trainer all resolve weights here.
#include "core/hub/hub_client.h"
#include "core/models/pretrained.h"

#include <filesystem>
#include <optional>
#include <string>

namespace vitlab::hub {

/// True for "hub" and "hub:NAME[.TAG]": weights from the Hub rather than a local file.
bool isHubWeights(const std::string& weights);

/// The pretrained weights that `weights` ("hub" or "hub:NAME[.TAG]") names for `model` (a registry
/// name; "hub" needs one). A tag the registry does not list is accepted: its preprocessing then
/// comes from the repository's config.json. Throws ConfigError when the names disagree.
PretrainedWeights pretrainedWeightsFor(const std::string& weights, const std::string& model);

/// The files of pretrained weights in the cache.
struct PretrainedFiles {
    std::filesystem::path weights;
    /// Empty when the repository has no config.json.
    std::filesystem::path config;
    /// The weights described by the registry, then by config.json (its preprocessing wins).
    PretrainedWeights described;
};

/// From the cache alone, never the network: nothing when the weights are not cached.
std::optional<PretrainedFiles> cachedPretrainedFiles(const std::filesystem::path& cache,
                                                     const PretrainedWeights& weights);

/// The weights' files, downloaded first where the cache lacks them (config.json, then the weights,
/// with `progress`). Throws HubError.
PretrainedFiles fetchPretrainedFiles(const HubClient& client, const PretrainedWeights& weights,
                                     const DownloadProgress& progress = {});

/// The cached files of `weights` ("hub:..."), or an IoError saying how to download them.
PretrainedFiles requireCachedPretrainedFiles(const std::string& weights, const std::string& model);

} // namespace vitlab::hub
