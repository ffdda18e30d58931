#include "core/models/classifier.h"

#include "core/errors.h"
#include "core/models/fused_bf16.h"
#include "core/models/onednn_products.h"
#include "core/torch_compat.h"

namespace vitlab {

torch::Tensor AttentionCaptureSite::attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                           double scale, double dropout, bool training, const torch::Tensor& additive)
{
    const double activeDropout = training ? dropout : 0.0;
    if (!m_capture && compat::kHasFusedAttention)
        return compat::fusedAttention(q, k, v, scale, activeDropout, additive);
    // LibTorch 1.13 in bf16: scale and softmax in one pass (in place when inferring), instead of a
    // q*scale pass and 1.13's bf16 softmax (several times slower than this kernel here), and in
    // training their gradients in one pass too.
    if (!m_capture && !additive.defined() && activeDropout == 0.0 && q.scalar_type() == torch::kBFloat16
        && k.scalar_type() == torch::kBFloat16) {
        auto scores = torch::matmul(q, k.transpose(-2, -1));
        if (at::GradMode::is_enabled())
            return torch::matmul(fused::scaledSoftmax(scores, scale), v);
        scores = scores.contiguous();
        fused::scaledSoftmax_(scores, scale);
        return torch::matmul(scores, v);
    }
    // Float32 on the CPU: both products through oneDNN, the scale folded into the first.
    const auto keysT = k.transpose(-2, -1);
    auto attention = onednnMatmulApplies(q, keysT) ? onednnMatmul(q, keysT, scale) : torch::matmul(q * scale, keysT);
    if (additive.defined())
        attention = attention + additive;
    attention = attention.softmax(-1);
    if (m_capture)
        m_captured = attention;
    if (activeDropout > 0.0)
        attention = torch::dropout(attention, activeDropout, true);
    return onednnMatmulApplies(attention, v) ? onednnMatmul(attention, v) : torch::matmul(attention, v);
}

std::vector<AttentionCaptureSite*> ClassifierImpl::attentionSites()
{
    std::vector<AttentionCaptureSite*> sites;
    for (const auto& module : modules(/*include_self=*/false)) {
        if (auto* site = dynamic_cast<AttentionCaptureSite*>(module.get()))
            sites.push_back(site);
    }
    return sites;
}

void ClassifierImpl::setAttentionCapture(bool on)
{
    for (auto* site : attentionSites())
        site->setCapture(on);
}

StateDict stateDictOf(const ClassifierImpl& model)
{
    StateDict dict;
    for (const auto& item : model.named_parameters(/*recurse=*/true))
        dict[item.key()] = item.value();
    for (const auto& item : model.named_buffers(/*recurse=*/true))
        dict[item.key()] = item.value();
    return dict;
}

void checkImageBatch(const ClassifierImpl& model, const torch::Tensor& images)
{
    const auto describe = [](const torch::Tensor& t) {
        std::string text = "(";
        for (int64_t d = 0; d < t.dim(); ++d)
            text += (d ? ", " : "") + std::to_string(t.size(d));
        return text + ")";
    };
    if (images.dim() != 4)
        throw ShapeError("the model takes images as (batch, channels, height, width), not " + describe(images));
    const auto size = model.imageSize();
    if (images.size(1) != model.inputChannels() || images.size(2) != size[0] || images.size(3) != size[1])
        throw ShapeError("the model was built for " + std::to_string(model.inputChannels()) + "-channel "
                         + std::to_string(size[0]) + "x" + std::to_string(size[1]) + " images, not "
                         + describe(images));
}

} // namespace vitlab
