#include "core/train/optimization.h"

#include "core/errors.h"
#include "core/models/deit.h"
#include "core/train/gradient_buckets.h"
#include "core/torch_compat.h"

#include <cmath>
#include <limits>

namespace vitlab {

double LearningRateSchedule::at(std::int64_t step) const
{
    if (step < warmupSteps)
        return peak * static_cast<double>(step + 1) / static_cast<double>(warmupSteps);
    // The decay ends on the last step taken (totalSteps - 1): a short plan, such as a time budget's
    // refit to a few steps, would otherwise end part-way down.
    const auto decaySteps = std::max<std::int64_t>(1, totalSteps - 1 - warmupSteps);
    const double progress = std::min(1.0, static_cast<double>(step - warmupSteps) / static_cast<double>(decaySteps));
    return minimum + 0.5 * (peak - minimum) * (1.0 + std::cos(M_PI * progress));
}

bool takesWeightDecay(const std::string& name, const torch::Tensor& parameter)
{
    if (parameter.dim() <= 1)
        return false; // norms' scales and shifts, biases, LayerScale
    for (const char* exempt : {"pos_embed", "cls_token", "dist_token", "relative_position_bias_table", "patch_pos",
                               "pixel_pos"}) {
        if (name.find(exempt) != std::string::npos)
            return false;
    }
    return true;
}

torch::Tensor softTargetCrossEntropy(const torch::Tensor& logits, const torch::Tensor& targets,
                                     const torch::Tensor& classWeights)
{
    const auto logProbabilities = torch::log_softmax(logits.to(torch::kFloat32), -1);
    if (!classWeights.defined())
        return -(targets * logProbabilities).sum(-1).mean();
    const auto weighted = targets * classWeights.unsqueeze(0);
    return -(weighted * logProbabilities).sum() / weighted.sum();
}

Optimization::Optimization(Classifier model, const OptimizationOptions& options,
                           const std::function<Classifier()>& makeCopy)
    : m_model(std::move(model))
    , m_options(options)
{
    std::vector<torch::Tensor> decay, noDecay;
    for (const auto& item : m_model->named_parameters()) {
        if (!item.value().requires_grad())
            continue;
        m_trainable.emplace_back(item.key(), item.value());
        (takesWeightDecay(item.key(), item.value()) ? decay : noDecay).push_back(item.value());
    }
    if (m_trainable.empty())
        throw ConfigError("every parameter is frozen: nothing would train");
    std::vector<torch::optim::OptimizerParamGroup> groups;
    if (!decay.empty())
        groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                       torch::optim::AdamWOptions(1e-3).weight_decay(options.weightDecay)));
    if (!noDecay.empty())
        groups.emplace_back(noDecay,
                            std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-3).weight_decay(0.0)));
    m_optimizer = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(1e-3));
    if (options.precision.scalesLoss())
        m_scaler.emplace(options.lossScaling);

    if (options.emaDecay > 0.0) {
        if (!makeCopy)
            throw ConfigError("a moving average of the weights needs a way to build the model");
        m_ema = makeCopy();
        m_ema->to(options.device);
        torch::NoGradGuard noGrad;
        const auto source = m_model->named_parameters();
        for (auto& item : m_ema->named_parameters()) {
            item.value().copy_(source[item.key()]);
            item.value().set_requires_grad(false);
        }
        m_ema->eval();
    }
}

Optimization::~Optimization() = default;

void Optimization::joinGroup(TrainingGroup& group)
{
    GradientBuckets::broadcastFrom0(*m_model, group);
    if (m_ema)
        GradientBuckets::broadcastFrom0(*m_ema, group);
    std::vector<torch::Tensor> parameters;
    for (const auto& item : m_trainable)
        parameters.push_back(item.second);
    m_buckets = std::make_unique<GradientBuckets>(std::move(parameters), group);
}

BatchOutcome Optimization::accumulate(const torch::Tensor& images, const torch::Tensor& targets,
                                      const torch::Tensor& labels, const torch::Tensor& teacherLogits,
                                      double lossWeight)
{
    m_model->train();
    torch::Tensor loss, logits;
    {
        compat::AutocastGuard autocast(m_options.device.type(), m_options.precision.dtype,
                                       m_options.precision.autocasts());
        if (teacherLogits.defined()) {
            auto* distilled = dynamic_cast<VisionTransformerDistilledImpl*>(m_model.get());
            if (!distilled)
                throw ConfigError("distillation from a teacher needs a distilled DeiT student");
            const auto [classLogits, distillationLogits] = distilled->forwardBothHeads(distilled->forward_features(images));
            loss = hardDistillationLoss(classLogits.to(torch::kFloat32), distillationLogits.to(torch::kFloat32), targets,
                                        teacherLogits.to(torch::kFloat32));
            logits = (classLogits + distillationLogits) / 2;
        } else {
            logits = m_model->forward(images);
            loss = softTargetCrossEntropy(logits, targets, m_options.classWeights);
        }
    }
    BatchOutcome outcome;
    outcome.loss = loss.item<double>();
    outcome.finite = std::isfinite(outcome.loss);
    if (!outcome.finite && !m_buckets)
        return outcome;
    auto objective = m_options.accumulation > 1 ? loss / m_options.accumulation : loss;
    if (lossWeight != 1.0)
        objective = objective * lossWeight;
    const bool lastOfStep = ++m_batchesThisStep >= m_options.accumulation;
    if (m_buckets && lastOfStep)
        m_buckets->arm();
    (m_scaler ? m_scaler->scale(objective) : objective).backward();
    if (m_buckets && lastOfStep)
        m_buckets->finish();
    outcome.correct = logits.detach().argmax(-1).eq(labels).sum().item<std::int64_t>();
    return outcome;
}

StepOutcome Optimization::step(double learningRate)
{
    for (auto& group : m_optimizer->param_groups())
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(learningRate);
    std::vector<torch::Tensor> parameters;
    parameters.reserve(m_trainable.size());
    for (const auto& item : m_trainable)
        parameters.push_back(item.second);
    if (m_scaler)
        m_scaler->unscale(parameters);
    StepOutcome outcome;
    {
        torch::NoGradGuard noGrad;
        std::vector<torch::Tensor> norms;
        for (const auto& parameter : parameters) {
            if (parameter.grad().defined())
                norms.push_back(parameter.grad().detach().to(torch::kFloat32).norm());
        }
        // One synchronisation for the norm, which also tells an overflow: inf or NaN anywhere
        // makes it so.
        outcome.gradientNorm = norms.empty() ? 0.0 : torch::stack(norms).norm().item<double>();
        outcome.skipped = !std::isfinite(outcome.gradientNorm);
        if (!outcome.skipped && m_options.clipGradNorm > 0.0 && outcome.gradientNorm > m_options.clipGradNorm) {
            const double factor = m_options.clipGradNorm / (outcome.gradientNorm + 1e-6);
            for (const auto& parameter : parameters) {
                if (parameter.grad().defined())
                    parameter.grad().mul_(factor);
            }
        }
    }
    if (!outcome.skipped)
        m_optimizer->step();
    m_optimizer->zero_grad();
    m_batchesThisStep = 0;
    if (m_scaler)
        m_scaler->update(!outcome.skipped);
    ++m_steps;
    if (outcome.skipped)
        ++m_skippedSteps;
    else if (m_ema)
        updateAverage();
    return outcome;
}

std::optional<double> Optimization::lossScale() const
{
    if (!m_scaler)
        return std::nullopt;
    return m_scaler->currentScale();
}

void Optimization::discardGradients()
{
    m_optimizer->zero_grad();
    m_batchesThisStep = 0;
}

void Optimization::updateAverage()
{
    // The average warms up (TensorFlow's num_updates rule): early steps follow the model closely.
    const double decay = std::min(m_options.emaDecay, (1.0 + static_cast<double>(m_steps)) / (10.0 + static_cast<double>(m_steps)));
    torch::NoGradGuard noGrad;
    auto source = m_model->named_parameters();
    for (auto& item : m_ema->named_parameters())
        item.value().mul_(decay).add_(source[item.key()].detach(), 1.0 - decay);
    auto sourceBuffers = m_model->named_buffers();
    for (auto& item : m_ema->named_buffers())
        item.value().copy_(sourceBuffers[item.key()]);
}

safetensors::TensorMap Optimization::state() const
{
    safetensors::TensorMap tensors;
    for (const auto& [key, tensor] : stateDictOf(*m_model))
        tensors["model." + key] = tensor.detach().cpu();
    if (m_ema) {
        for (const auto& [key, tensor] : stateDictOf(*m_ema))
            tensors["ema." + key] = tensor.detach().cpu();
    }
    auto& states = m_optimizer->state();
    for (const auto& [name, parameter] : m_trainable) {
        const auto found = states.find(compat::optimizerStateKey(states, parameter));
        if (found == states.end())
            continue; // not stepped yet
        const auto& adam = static_cast<const torch::optim::AdamWParamState&>(*found->second);
        tensors["adamw." + name + ".exp_avg"] = adam.exp_avg().cpu();
        tensors["adamw." + name + ".exp_avg_sq"] = adam.exp_avg_sq().cpu();
        tensors["adamw." + name + ".step"] = torch::tensor({adam.step()}, torch::kInt64);
    }
    if (m_scaler) {
        tensors["scaler.scale"] = torch::tensor({m_scaler->currentScale()}, torch::kFloat64);
        tensors["scaler.growth_tracker"] = torch::tensor({static_cast<std::int64_t>(m_scaler->growthTracker())}, torch::kInt64);
    }
    return tensors;
}

void Optimization::loadState(const safetensors::TensorMap& tensors, std::int64_t stepsDone, std::int64_t skippedSteps)
{
    const auto take = [&tensors](const std::string& key, const torch::Tensor& like) -> const torch::Tensor& {
        const auto it = tensors.find(key);
        if (it == tensors.end())
            throw FormatError("the resume state lacks " + key);
        if (like.defined() && it->second.sizes() != like.sizes())
            throw FormatError("the resume state's " + key + " has another shape than the model's");
        return it->second;
    };
    torch::NoGradGuard noGrad;
    for (auto& [key, tensor] : stateDictOf(*m_model))
        tensor.copy_(take("model." + key, tensor));
    if (m_ema) {
        for (auto& [key, tensor] : stateDictOf(*m_ema))
            tensor.copy_(take("ema." + key, tensor));
    }
    auto& states = m_optimizer->state();
    states.clear();
    for (const auto& [name, parameter] : m_trainable) {
        if (tensors.count("adamw." + name + ".step") == 0)
            continue;
        auto adam = std::make_unique<torch::optim::AdamWParamState>();
        adam->step(take("adamw." + name + ".step", {}).item<std::int64_t>());
        adam->exp_avg(take("adamw." + name + ".exp_avg", parameter).to(parameter.options()).clone());
        adam->exp_avg_sq(take("adamw." + name + ".exp_avg_sq", parameter).to(parameter.options()).clone());
        states[compat::optimizerStateKey(states, parameter)] = std::move(adam);
    }
    // A run resumed in float16 from a state saved in another precision starts a fresh scale.
    if (m_scaler && tensors.count("scaler.scale") && tensors.count("scaler.growth_tracker"))
        m_scaler->restore(tensors.at("scaler.scale").item<double>(),
                          static_cast<int>(tensors.at("scaler.growth_tracker").item<std::int64_t>()));
    m_steps = stepsDone;
    m_skippedSteps = skippedSteps;
}

} // namespace vitlab
