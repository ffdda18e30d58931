// Forward latency of vit_tiny_patch16_224 in eval mode at batch 1 and 32, float32 and bfloat16
// autocast. bench/forward.sh runs torchvision's VisionTransformer of the same size from Python in
// the same run and prints the ratio.
#include "bench/bench_main.h"
#include "core/models/registry.h"
#include "core/torch_compat.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

namespace {

void forwardLatency(benchmark::State& state, bool bf16)
{
    if (bf16 && skipWhereBf16IsEmulated(state))
        return;
    const auto batch = state.range(0);
    torch::manual_seed(0);
    auto model = vitlab::createModel(vitlab::ModelRegistry::instance().model("vit_tiny_patch16_224"));
    model->eval();
    const auto images = torch::randn({batch, 3, 224, 224});
    c10::InferenceMode inference;
    vitlab::compat::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16, bf16);
    for (int i = 0; i < 2; ++i)
        model->forward(images);
    for (auto _ : state)
        benchmark::DoNotOptimize(model->forward(images));
    state.counters["images/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()),
                                                    benchmark::Counter::kIsRate);
}

void BM_vit_tiny_forward_fp32(benchmark::State& state) { forwardLatency(state, false); }
void BM_vit_tiny_forward_bf16(benchmark::State& state) { forwardLatency(state, true); }

} // namespace

BENCHMARK(BM_vit_tiny_forward_fp32)->Arg(1)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_vit_tiny_forward_bf16)->Arg(1)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv)
{
    return runBenchmarks(argc, argv);
}
