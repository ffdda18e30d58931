#pragma once

// --weights for the commands that take weights: a .safetensors file, "hub" (the model's default
// timm tag) or "hub:NAME.TAG", downloaded into the Hub cache with a progress bar when missing.
#include "core/hub/hub_client.h"
#include "core/models/pretrained.h"

#include <filesystem>
#include <optional>
#include <string>

namespace vitlab::cli {

struct ResolvedWeights {
    std::filesystem::path file;
    /// For Hub weights: the registry's and config.json's description (their preprocessing).
    std::optional<PretrainedWeights> pretrained;
};

/// Resolves `weights` for `model` (a registry name; may be empty for "hub:NAME.TAG", then it
/// becomes NAME). Hub weights are downloaded first when not cached.
ResolvedWeights resolveWeights(const std::string& weights, std::string& model);

/// A progress bar on stderr for a download (a line per 10% when stderr is not a terminal).
hub::DownloadProgress downloadProgressBar(const std::string& what);

/// What --weights accepts, for the commands' help.
inline constexpr const char* kWeightsHelp =
    "timm weights: a .safetensors file, hub (the model's default timm tag) or hub:NAME.TAG (downloaded into the "
    "Hugging Face cache when missing)";

} // namespace vitlab::cli
