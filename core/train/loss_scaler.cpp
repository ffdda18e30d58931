#include "core/train/loss_scaler.h"

#include "core/errors.h"

#include <cmath>
#include <string>

namespace vitlab {

DynamicLossScaler::DynamicLossScaler(const LossScalerOptions& options)
    : m_options(options)
    , m_scale(options.initialScale)
{
    if (!(options.initialScale > 0.0) || !(options.growthFactor > 1.0) || !(options.backoffFactor > 0.0)
        || !(options.backoffFactor < 1.0) || options.growthInterval < 1)
        throw ConfigError("a loss scaler needs a positive scale, growth above 1, back-off in (0, 1) and an interval of 1 or more");
}

void DynamicLossScaler::unscale(const std::vector<torch::Tensor>& parameters) const
{
    torch::NoGradGuard noGrad;
    const double inverse = 1.0 / m_scale;
    for (const auto& parameter : parameters) {
        if (parameter.grad().defined())
            parameter.grad().mul_(inverse);
    }
}

void DynamicLossScaler::update(bool finite)
{
    if (!finite) {
        // Never below the smallest normal float: a scale of 0 would stop training for good.
        m_scale = std::max(m_scale * m_options.backoffFactor, 1.17549435e-38);
        m_growthTracker = 0;
        return;
    }
    if (++m_growthTracker >= m_options.growthInterval) {
        const double grown = m_scale * m_options.growthFactor;
        if (std::isfinite(static_cast<float>(grown))) // a scale that float32 holds, as GradScaler keeps it
            m_scale = grown;
        m_growthTracker = 0;
    }
}

void DynamicLossScaler::restore(double scale, int growthTracker)
{
    if (!(scale > 0.0) || !std::isfinite(scale) || growthTracker < 0)
        throw FormatError("a saved loss scale must be positive and finite, not " + std::to_string(scale));
    m_scale = scale;
    m_growthTracker = growthTracker;
}

} // namespace vitlab
