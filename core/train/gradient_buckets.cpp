#include "core/train/gradient_buckets.h"

#include "core/errors.h"

namespace vitlab {

GradientBuckets::GradientBuckets(std::vector<torch::Tensor> parameters, TrainingGroup& group, std::int64_t bucketBytes)
    : m_group(group)
    , m_parameters(std::move(parameters))
    , m_slots(m_parameters.size())
{
    // Reverse order: the head's gradients come first out of backward, the patch embedding's last.
    for (std::size_t k = m_parameters.size(); k-- > 0;) {
        const auto& parameter = m_parameters[k];
        if (parameter.device() != group.device())
            throw ConfigError("the group exchanges tensors on " + group.device().str() + ", the model is on "
                              + parameter.device().str());
        const auto bytes = parameter.numel() * static_cast<std::int64_t>(parameter.element_size());
        const bool fits = !m_buckets.empty() && m_buckets.back().flat.scalar_type() == parameter.scalar_type()
            && m_buckets.back().flat.numel() * static_cast<std::int64_t>(parameter.element_size()) + bytes <= bucketBytes;
        if (!fits) {
            m_buckets.emplace_back();
            m_buckets.back().flat = torch::empty({0}, parameter.options().requires_grad(false));
        }
        auto& bucket = m_buckets.back();
        m_slots[k] = {m_buckets.size() - 1, bucket.flat.numel(), false};
        bucket.members.push_back(k);
        bucket.flat = torch::empty({bucket.flat.numel() + parameter.numel()}, bucket.flat.options());
    }
    m_hooks.reserve(m_parameters.size());
    for (std::size_t k = 0; k < m_parameters.size(); ++k) {
        m_hooks.push_back(m_parameters[k].register_hook([this, k](const torch::Tensor& gradient) {
            if (m_armed)
                gradientReady(k, gradient);
        }));
    }
}

GradientBuckets::~GradientBuckets()
{
    for (std::size_t k = 0; k < m_parameters.size(); ++k)
        m_parameters[k].remove_hook(m_hooks[k]);
}

void GradientBuckets::arm()
{
    m_armed = true;
    m_nextToSend = 0;
    for (auto& slot : m_slots)
        slot.filled = false;
    for (auto& bucket : m_buckets) {
        bucket.filled = 0;
    }
}

void GradientBuckets::fill(std::size_t parameter, const torch::Tensor& gradient)
{
    torch::NoGradGuard noGrad;
    auto& slot = m_slots[parameter];
    const auto& tensor = m_parameters[parameter];
    auto target = m_buckets[slot.bucket].flat.narrow(0, slot.offset, tensor.numel());
    // The hook sees this backward's gradient before it is added to what earlier micro-batches summed.
    const auto& summed = tensor.grad();
    if (gradient.defined() && summed.defined())
        torch::add_out(target, summed.reshape(-1), gradient.reshape(-1));
    else if (gradient.defined())
        target.copy_(gradient.reshape(-1));
    else if (summed.defined())
        target.copy_(summed.reshape(-1));
    else
        target.zero_();
    slot.filled = true;
    ++m_buckets[slot.bucket].filled;
}

void GradientBuckets::gradientReady(std::size_t parameter, const torch::Tensor& gradient)
{
    if (m_slots[parameter].filled)
        return;
    fill(parameter, gradient);
    sendInOrder();
}

void GradientBuckets::sendInOrder()
{
    while (m_nextToSend < m_buckets.size()) {
        auto& bucket = m_buckets[m_nextToSend];
        if (bucket.filled < bucket.members.size())
            return;
        bucket.pending = m_group.allreduceSumAsync(bucket.flat);
        ++m_nextToSend;
    }
}

void GradientBuckets::finish()
{
    if (!m_armed)
        return;
    m_armed = false;
    // Parameters backward did not reach this time still take part, as zeros (or their local sum).
    for (std::size_t k = 0; k < m_parameters.size(); ++k) {
        if (!m_slots[k].filled)
            fill(k, torch::Tensor());
    }
    sendInOrder();
    torch::NoGradGuard noGrad;
    const double share = 1.0 / static_cast<double>(m_group.size());
    for (auto& bucket : m_buckets) {
        bucket.pending.wait();
        bucket.flat.mul_(share);
        for (const auto k : bucket.members) {
            auto& parameter = m_parameters[k];
            const auto mean = bucket.flat.narrow(0, m_slots[k].offset, parameter.numel()).view(parameter.sizes());
            if (parameter.grad().defined())
                parameter.mutable_grad().copy_(mean);
            else
                parameter.mutable_grad() = mean.clone();
        }
    }
}

void GradientBuckets::broadcastFrom0(torch::nn::Module& module, TrainingGroup& group)
{
    torch::NoGradGuard noGrad;
    const auto share = [&group](torch::Tensor tensor) {
        if (!tensor.defined() || tensor.numel() == 0)
            return;
        auto copy = tensor.detach().contiguous().clone();
        group.broadcast(copy);
        tensor.copy_(copy);
    };
    for (auto& parameter : module.parameters())
        share(parameter);
    for (auto& buffer : module.buffers())
        share(buffer);
}

} // namespace vitlab
