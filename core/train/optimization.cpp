#include "core/train/optimization.h"

#include "core/errors.h"
#include "core/models/deit.h"
#include "core/torch_compat.h"

#include <cmath>
#include <limits>

namespace vitlab {

double LearningRateSchedule::at(std::int64_t step) const
{
    if (step < warmupSteps)
        return peak * static_cast<double>(step + 1) / static_cast<double>(warmupSteps);
    const auto decaySteps = std::max<std::int64_t>(1, totalSteps - warmupSteps);
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

BatchOutcome Optimization::accumulate(const torch::Tensor& images, const torch::Tensor& targets,
                                      const torch::Tensor& labels, const torch::Tensor& teacherLogits)
{
    m_model->train();
    torch::Tensor loss, logits;
    {
        compat::AutocastGuard autocast(m_options.device.type(), at::kBFloat16, m_options.bfloat16);
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
    if (!outcome.finite)
        return outcome;
    (m_options.accumulation > 1 ? loss / m_options.accumulation : loss).backward();
    outcome.correct = logits.detach().argmax(-1).eq(labels).sum().item<std::int64_t>();
    return outcome;
}

double Optimization::step(double learningRate)
{
    for (auto& group : m_optimizer->param_groups())
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(learningRate);
    std::vector<torch::Tensor> parameters;
    parameters.reserve(m_trainable.size());
    for (const auto& item : m_trainable)
        parameters.push_back(item.second);
    const double norm = torch::nn::utils::clip_grad_norm_(
        parameters, m_options.clipGradNorm > 0.0 ? m_options.clipGradNorm : std::numeric_limits<double>::infinity());
    m_optimizer->step();
    m_optimizer->zero_grad();
    ++m_steps;
    if (m_ema)
        updateAverage();
    return norm;
}

void Optimization::discardGradients()
{
    m_optimizer->zero_grad();
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
        tensors["model." + key] = tensor.detach();
    if (m_ema) {
        for (const auto& [key, tensor] : stateDictOf(*m_ema))
            tensors["ema." + key] = tensor.detach();
    }
    auto& states = m_optimizer->state();
    for (const auto& [name, parameter] : m_trainable) {
        const auto found = states.find(compat::optimizerStateKey(states, parameter));
        if (found == states.end())
            continue; // not stepped yet
        const auto& adam = static_cast<const torch::optim::AdamWParamState&>(*found->second);
        tensors["adamw." + name + ".exp_avg"] = adam.exp_avg();
        tensors["adamw." + name + ".exp_avg_sq"] = adam.exp_avg_sq();
        tensors["adamw." + name + ".step"] = torch::tensor({adam.step()}, torch::kInt64);
    }
    return tensors;
}

void Optimization::loadState(const safetensors::TensorMap& tensors, std::int64_t stepsDone)
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
    m_steps = stepsDone;
}

} // namespace vitlab
