#include "core/train/step_timing.h"

#include "core/torch_compat.h"
#include "core/train/optimization.h"

#include <chrono>

namespace vitlab {

double secondsOfTrainingSteps(const ModelSpec& spec, std::int64_t batch, int steps, const ComputePrecision& precision,
                              const torch::Device& device)
{
    torch::manual_seed(0);
    auto model = createModel(spec);
    model->to(device);
    OptimizationOptions options;
    options.precision = precision;
    options.device = device;
    options.clipGradNorm = 1.0;
    Optimization optimization(model, options);
    const auto classes = std::max<std::int64_t>(model->numClasses(), 1);
    const auto images = torch::randn({batch, spec.input.channels, spec.input.size[0], spec.input.size[1]}).to(device);
    const auto labels = torch::randint(classes, {batch}, torch::kInt64).to(device);
    const auto targets = torch::one_hot(labels, classes).to(torch::kFloat32);
    const auto step = [&] {
        optimization.accumulate(images, targets, labels);
        optimization.step(1e-4);
    };
    for (int i = 0; i < 2; ++i)
        step();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < steps; ++i)
        step();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double secondsOfInference(const ModelSpec& spec, std::int64_t batch, int iterations, const ComputePrecision& precision,
                          const torch::Device& device)
{
    torch::manual_seed(0);
    auto model = createModel(spec);
    model->to(device);
    model->eval();
    const auto images = torch::randn({batch, spec.input.channels, spec.input.size[0], spec.input.size[1]}).to(device);
    torch::NoGradGuard noGrad;
    const auto forward = [&] {
        const compat::AutocastGuard autocast(device.type(), precision.dtype, precision.autocasts());
        // Read back to the CPU: a prediction waits for its logits, on any device.
        return model->forward(images).to(torch::kCPU, torch::kFloat32);
    };
    for (int i = 0; i < 3; ++i)
        forward();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i)
        forward();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

} // namespace vitlab
