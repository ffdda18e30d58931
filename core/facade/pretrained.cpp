// The Model page's questions about timm's pretrained weights, answered with plain structs (the
// registry's header includes torch, which must not reach ui/).
#include "core/facade/engine.h"

#include "core/hub/hf_cache.h"
#include "core/hub/pretrained_files.h"

namespace vitlab::facade {

namespace {

/// What a tag's weights are known as: what their head predicts, or how they were trained.
std::string titleOf(const PretrainedWeights& weights)
{
    const auto& tag = weights.tag;
    const auto endsWith = [&tag](const std::string& end) {
        return tag.size() >= end.size() && tag.compare(tag.size() - end.size(), end.size(), end) == 0;
    };
    if (endsWith("in1k"))
        return "ImageNet";
    if (endsWith("in21k") || endsWith("in22k"))
        return "ImageNet-" + tag.substr(tag.size() - 4, 3);
    if (tag == "dino" || tag == "mae")
        return tag == "dino" ? "DINO" : "MAE";
    return "Pretrained";
}

} // namespace

std::vector<PretrainedChoice> pretrainedChoices(const std::string& model)
{
    std::vector<PretrainedChoice> choices;
    const auto cache = hub::cacheDirectory();
    bool first = true;
    for (const auto& weights : pretrainedWeightsOf(model)) {
        PretrainedChoice choice;
        choice.weights = "hub:" + weights.name();
        choice.repository = weights.repository();
        choice.title = titleOf(weights);
        choice.description = weights.description;
        choice.license = weights.license;
        choice.classes = weights.numClasses;
        choice.isDefault = first;
        first = false;
        choice.bytes = estimatedFileBytes(weights);
        if (const auto cached = hub::cachedPretrainedFiles(cache, weights)) {
            std::error_code error;
            const auto size = std::filesystem::file_size(cached->weights, error);
            choice.cached = true;
            if (!error) {
                choice.bytes = static_cast<std::int64_t>(size);
                choice.bytesExact = true;
            }
        }
        choices.push_back(std::move(choice));
    }
    return choices;
}

std::string fetchPretrained(const std::string& weights, const hub::DownloadProgress& progress)
{
    const auto pretrained = hub::pretrainedWeightsFor(weights, {});
    return hub::fetchPretrainedFiles(hub::HubClient(), pretrained, progress).weights.string();
}

std::string probePretrained(const std::string& weights)
{
    try {
        auto settings = hub::HubSettings::fromEnvironment();
        if (settings.offline)
            return "HF_HUB_OFFLINE is set";
        settings.connectTimeoutSeconds = 3;
        hub::HubClient(settings).describe(hub::pretrainedWeightsFor(weights, {}).repository(), kPretrainedConfigFile);
        return {};
    } catch (const std::exception& error) {
        return error.what();
    }
}

std::string photoPretrainedWeights()
{
    // ViT-Ti pretrained on ImageNet-21k: the smallest standard model (5.7 M parameters), strong when
    // fine-tuned, and it trains at 224 px on a laptop's CPU.
    return "hub:" + findPretrainedWeights("vit_tiny_patch16_224").name();
}

PretrainedAvailability cachedPhotoWeights()
{
    const auto weights = hub::pretrainedWeightsFor(photoPretrainedWeights(), {});
    if (hub::cachedPretrainedFiles(hub::cacheDirectory(), weights))
        return PretrainedAvailability::Cached;
    return hub::HubSettings::fromEnvironment().offline ? PretrainedAvailability::Unreachable
                                                       : PretrainedAvailability::Unchecked;
}

} // namespace vitlab::facade
