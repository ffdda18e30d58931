// The machine's baseline: one transformer-sized linear layer (ViT-Tiny's MLP at batch 32, 197
// tokens) in float32 and in bfloat16, with the engine's thread setting. bench/matmul.sh runs
// the same product in Python's torch and prints the ratio.
#include "bench/bench_main.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

namespace {

void linearLayer(benchmark::State& state, torch::Dtype dtype)
{
    if (dtype == torch::kBFloat16 && skipWhereBf16IsEmulated(state))
        return;
    torch::manual_seed(0);
    const auto tokens = torch::randn({32 * 197, 192}).to(dtype);
    const auto weight = torch::randn({768, 192}).to(dtype);
    torch::NoGradGuard noGrad;
    for (auto _ : state)
        benchmark::DoNotOptimize(torch::nn::functional::linear(tokens, weight));
    const double flops = 2.0 * 32 * 197 * 192 * 768;
    state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void BM_linear_fp32(benchmark::State& state) { linearLayer(state, torch::kFloat32); }
void BM_linear_bf16(benchmark::State& state) { linearLayer(state, torch::kBFloat16); }

} // namespace

BENCHMARK(BM_linear_fp32)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_linear_bf16)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv)
{
    return runBenchmarks(argc, argv);
}
