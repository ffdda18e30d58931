// The Model page's questions about the registry, answered with plain structs: the registry's
// header includes torch, which must not reach ui/.
#include "core/facade/engine.h"

#include "core/models/registry.h"

#include <algorithm>
#include <cmath>

namespace vitlab::facade {

namespace {

std::int64_t patchSizeOf(const ModelSpec& spec)
{
    const auto it = spec.args.find("patch_size");
    return it != spec.args.end() && it->is_number_integer() ? it->get<std::int64_t>() : 1;
}

} // namespace

std::vector<ModelInfo> listModels()
{
    std::vector<ModelInfo> list;
    for (const auto& spec : ModelRegistry::instance().models()) {
        ModelInfo info;
        info.name = spec.name;
        info.family = spec.family;
        info.architecture = spec.architecture;
        info.description = spec.description;
        info.imageSize = spec.input.size[0];
        info.channels = spec.input.channels;
        info.patchSize = patchSizeOf(spec);
        list.push_back(std::move(info));
    }
    std::stable_sort(list.begin(), list.end(), [](const ModelInfo& a, const ModelInfo& b) {
        return a.architecture != b.architecture ? a.architecture < b.architecture : a.name < b.name;
    });
    return list;
}

ModelCost modelCost(const std::string& model, std::int64_t imageSize, std::int64_t classes)
{
    ModelCost cost;
    try {
        auto spec = resolveModelSpec(model);
        if (imageSize > 0)
            spec = withImageSize(spec, imageSize, imageSize);
        if (classes > 0)
            spec = withNumClasses(spec, classes);
        // The analytic counts do not check what building would: catch the common case here.
        const auto patch = patchSizeOf(spec);
        if (spec.input.size[0] % patch != 0) {
            cost.error = "an image size of " + std::to_string(spec.input.size[0]) + " px is not a multiple of the "
                         + "patch size " + std::to_string(patch) + "; pick a multiple of " + std::to_string(patch);
            return cost;
        }
        cost.parameters = parameterCount(spec);
        cost.macs = macsPerImage(spec);
        cost.channels = spec.input.channels;
        cost.imageSize = spec.input.size[0];
    } catch (const std::exception& e) {
        cost = ModelCost{};
        cost.error = e.what();
    }
    return cost;
}

SuggestedSettings suggestSettings(const ScanReport& report, bool builtin, const RuntimeInfo& machine,
                                  PretrainedAvailability pretrained)
{
    SuggestedSettings s;
    std::int64_t images = 0;
    for (const auto& c : report.classes)
        images += c.train;
    const double side = std::sqrt(std::max(1.0, report.meanWidth * report.meanHeight));
    const bool photos = !builtin && report.maxWidth > 28 && side > 96;
    if (builtin) {
        // TrainConfig's defaults are the Fashion-MNIST recipe (91.1-91.2% over three seeds); a
        // CPU computing in float32 trains its 2-block preset, to fit more epochs into the budget.
        const bool float32OnCpu = !machine.cudaAvailable && !machine.cpuBfloat16Native;
        const TrainConfig recipe = fashionMnistRecipe(float32OnCpu);
        s.model = recipe.model;
        s.imageSize = 28;
        s.batchSize = recipe.batchSize;
        s.epochs = recipe.epochs;
        s.learningRate = recipe.learningRate;
        // On a CPU the epochs are fitted to its speed in the first steps, rather than fixed, in a
        // budget that reached 91% on each of our 2-core CPUs: Zen 3 in float32 (the 2-block preset)
        // and Zen 4 in bfloat16 (12 minutes, enough on Zen 5, ended at 90.9% there).
        s.reason = "the Fashion-MNIST preset: grey 28 px images; ";
        if (machine.cudaAvailable) {
            s.reason += "the recipe's " + std::to_string(s.epochs) + " epochs, minutes on the GPU";
        } else {
            s.budgetMinutes = 15.0;
            s.reason += "a " + std::to_string(static_cast<int>(s.budgetMinutes)) + "-minute budget for this CPU ("
                      + machine.cpuDescription + ", "
                      + (machine.cpuBfloat16Native ? "bfloat16 native" : "float32: no native bfloat16")
                      + "), its epochs fitted to its speed"
                      + (float32OnCpu ? "; 2 blocks rather than 4, for twice the epochs in that time, and batch "
                                            + std::to_string(s.batchSize) + " for twice the steps"
                                      : std::string{});
        }
    } else if (photos && (pretrained == PretrainedAvailability::Cached || pretrained == PretrainedAvailability::Reachable)) {
        // A few hundred photos per class cannot train a transformer from scratch; fine-tuning
        // pretrained weights can: a low learning rate, a short warm-up and few epochs.
        s.weights = photoPretrainedWeights();
        s.model = "vit_tiny_patch16_224";
        s.imageSize = 224;
        s.batchSize = 32;
        s.learningRate = 1e-4;
        s.warmupEpochs = 1.0;
        s.epochs = images < 1000 ? 10 : images < 10000 ? 5 : 3;
        // Large folders would not finish 3 epochs at 224 px on a laptop's CPU: a budget says when it ends.
        if (images >= 5000 && !machine.cudaAvailable)
            s.budgetMinutes = 20.0;
        s.reason = "photos: fine-tuning ViT-Ti pretrained on ImageNet-21k (" + s.weights.substr(4) + ", "
                 + (pretrained == PretrainedAvailability::Cached ? "cached" : "downloaded before training starts")
                 + ") at a low learning rate for few epochs";
    } else if (report.maxWidth > 0 && report.maxWidth <= 28 && report.maxHeight <= 28) {
        s.model = "vit_micro_patch4_28";
        s.imageSize = 28;
        s.batchSize = 128;
        s.epochs = 20;
        s.reason = "small images (28 px or less)";
    } else {
        if (side <= 40) {
            s.model = "vit_tiny_d6_patch4_32";
            s.imageSize = 32;
            s.batchSize = 128;
            s.reason = "small images (about " + std::to_string(static_cast<int>(side)) + " px): the 32 px preset";
        } else if (side <= 96 || images < 2000) {
            // Photos, but too few of them (or too small) to train a 224 px transformer on two cores.
            s.model = "vit_tiny_d6_patch8_64";
            s.imageSize = 64;
            s.batchSize = 64;
            s.reason = side <= 96 ? "images of about " + std::to_string(static_cast<int>(side)) + " px: the 64 px preset"
                                  : "photos, but few of them: 64 px trains in minutes on a CPU";
        } else {
            s.model = "vit_tiny_patch16_224";
            s.imageSize = 224;
            s.batchSize = 32;
            s.epochs = 5;
            s.reason = "photos: ViT-Ti at 224 px";
        }
        if (photos)
            s.reason += pretrained == PretrainedAvailability::Unchecked
                          ? "; from scratch until the Hub answers for pretrained weights"
                          : "; from scratch, since pretrained weights are neither cached nor reachable (they do "
                            "far better: vitlab-cli weights pull vit_tiny_patch16_224 where there is a network)";
        // Few images need more passes to learn anything; many images fewer.
        if (images > 0 && images < 1000)
            s.epochs = 30;
        else if (images < 10000)
            s.epochs = std::max(s.epochs, 15);
    }
    return s;
}

} // namespace vitlab::facade
