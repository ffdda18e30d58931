// The machine's baseline: one transformer-sized linear layer (ViT-Tiny's MLP at batch 32, 197
// tokens) in float32 and in bfloat16 through LibTorch, and in float32 through the engine's own
// path (oneDNN, where built), with the engine's thread setting. bench/matmul.sh runs the same
// product in Python's torch and prints the ratio; bench/libtorch_versions.sh takes the best rate
// as the limit that training steps are measured against.
#include "bench/bench_main.h"
#include "core/models/layers.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

namespace {

void linearLayer(benchmark::State& state, torch::Dtype dtype, bool engine = false)
{
    if (dtype == torch::kBFloat16 && skipWhereBf16IsEmulated(state))
        return;
    torch::manual_seed(0);
    const auto tokens = torch::randn({32 * 197, 192}).to(dtype);
    torch::nn::Linear layer(torch::nn::LinearOptions(192, 768).bias(false));
    layer->to(dtype);
    if (engine && !vitlab::onednnLinearApplies(tokens, layer->weight)) {
        state.SkipWithError(("the engine's products are LibTorch's: " + vitlab::float32ProductsDescription()).c_str());
        return;
    }
    torch::NoGradGuard noGrad;
    for (auto _ : state)
        benchmark::DoNotOptimize(engine ? vitlab::applyLinear(layer, tokens)
                                        : torch::nn::functional::linear(tokens, layer->weight));
    const double flops = 2.0 * 32 * 197 * 192 * 768;
    state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void BM_linear_fp32(benchmark::State& state) { linearLayer(state, torch::kFloat32); }
void BM_linear_bf16(benchmark::State& state) { linearLayer(state, torch::kBFloat16); }
void BM_engine_linear_fp32(benchmark::State& state) { linearLayer(state, torch::kFloat32, /*engine=*/true); }

} // namespace

BENCHMARK(BM_linear_fp32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_linear_bf16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_engine_linear_fp32)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv)
{
    return runBenchmarks(argc, argv);
}
