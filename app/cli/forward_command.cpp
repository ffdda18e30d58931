#include "app/cli/commands.h"
#include "app/cli/hub_weights.h"

#include "core/attention/rollout.h"
#include "core/errors.h"
#include "core/io/safetensors.h"
#include "core/models/registry.h"
#include "core/models/vit.h"
#include "core/models/weights.h"

#include <iostream>
#include <memory>

namespace vitlab::cli {

namespace {

struct ForwardOptions {
    std::string model;
    std::string weights;
    std::string input;
    std::string output;
    bool attention = false;
};

int runForward(const ForwardOptions& options)
{
    auto inputs = safetensors::load(options.input).tensors;
    const auto found = inputs.find("input");
    if (found == inputs.end())
        throw FormatError(options.input + " has no tensor named \"input\"");
    const auto images = found->second.to(torch::kFloat32);
    if (images.dim() != 4)
        throw ShapeError("the tensor \"input\" in " + options.input + " must be (N, C, H, W)");

    auto modelName = options.model;
    const auto weights = resolveWeights(options.weights, modelName);
    auto spec = resolveModelSpec(modelName);
    spec = withImageSize(std::move(spec), images.size(2), images.size(3));
    spec = withInputChannels(std::move(spec), images.size(1));
    auto model = createModelWithWeights(spec, weights.file);
    model->eval();

    auto* vit = dynamic_cast<VisionTransformerImpl*>(model.get());
    const bool captureAttention = options.attention && vit != nullptr;
    if (options.attention && !captureAttention)
        std::cerr << "note: --attention writes attention maps for ViT and DeiT models only\n";
    model->setAttentionCapture(captureAttention);

    torch::NoGradGuard noGrad;
    safetensors::TensorMap outputs;
    outputs["logits"] = model->forward(images).contiguous();
    if (captureAttention) {
        std::vector<torch::Tensor> maps;
        for (auto* site : model->attentionSites()) {
            outputs["attn." + std::to_string(maps.size())] = site->captured().contiguous();
            maps.push_back(site->captured());
        }
        if (vit->options().class_token && !maps.empty())
            outputs["rollout"] = attentionRollout(maps, vit->numPrefixTokens(), vit->gridSize()).contiguous();
    }
    safetensors::save(options.output, outputs, {{"model", spec.name.empty() ? spec.family : spec.name}});
    return 0;
}

} // namespace

Command addForwardCommand(CLI::App& parent)
{
    auto options = std::make_shared<ForwardOptions>();
    auto* app = parent.add_subcommand(
        "forward", "Run a model in eval mode on the tensor \"input\" (N, C, H, W) of a .safetensors file");
    app->add_option("--model", options->model, "A registry name or a JSON config file")->required();
    app->add_option("--weights", options->weights, kWeightsHelp)->required();
    app->add_option("--input", options->input, "A .safetensors file with a tensor named \"input\"")->required();
    app->add_option("--output", options->output, "Where to write \"logits\" (and the attention maps)")->required();
    app->add_flag("--attention", options->attention,
                  "Also write \"attn.K\" per block and \"rollout\" (ViT and DeiT)");
    return {app, [options](const RuntimeInfo&) { return runForward(*options); }};
}

} // namespace vitlab::cli
