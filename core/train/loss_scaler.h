#pragma once

// Dynamic loss scaling for float16 training. LibTorch's C++ API has no GradScaler; this is its
// policy: gradients too small for float16 survive because the loss is multiplied by a large
// scale before backward; they are divided back before the optimiser step; a step whose
// gradients overflowed is skipped and the scale halved; after `growthInterval` clean steps in a
// row the scale doubles again.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace vitlab {

struct LossScalerOptions {
    double initialScale = 65536.0; // 2^16, as torch.amp.GradScaler
    double growthFactor = 2.0;
    double backoffFactor = 0.5;
    int growthInterval = 2000;
};

class DynamicLossScaler {
public:
    explicit DynamicLossScaler(const LossScalerOptions& options = {});

    torch::Tensor scale(const torch::Tensor& loss) const { return loss * m_scale; }
    /// Divides every defined gradient of `parameters` by the scale, in place.
    void unscale(const std::vector<torch::Tensor>& parameters) const;
    /// Records the step's outcome: `finite` false (it was skipped) halves the scale, and a run of
    /// growthInterval finite steps doubles it.
    void update(bool finite);

    double currentScale() const { return m_scale; }
    /// Clean steps since the scale last changed.
    int growthTracker() const { return m_growthTracker; }
    /// Restores a saved scale and tracker (resume).
    void restore(double scale, int growthTracker);

private:
    LossScalerOptions m_options;
    double m_scale;
    int m_growthTracker = 0;
};

} // namespace vitlab
