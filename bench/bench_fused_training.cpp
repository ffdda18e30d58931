// The fused bf16 training kernels against the ATen ops they replace, forward and backward on
// ViT-Tiny's shapes at batch 32 (197 tokens, width 192, 3 heads): the LayerNorm that feeds a
// product (ATen: float32 norm, autocast's cast to bf16, and both gradients) and attention's
// scaled softmax (ATen: q*scale, bf16 softmax, and their gradients; LibTorch 1.13's path).
#include "bench/bench_main.h"
#include "core/models/fused_bf16.h"
#include "core/torch_compat.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

namespace {

void layerNormForwardBackward(benchmark::State& state, bool fused)
{
    if (skipWhereBf16IsEmulated(state))
        return;
    torch::manual_seed(0);
    const auto x = torch::randn({32 * 197, 192}).requires_grad_();
    const auto weight = torch::ones({192}).requires_grad_();
    const auto bias = torch::zeros({192}).requires_grad_();
    const auto upstream = torch::randn({32 * 197, 192}).to(torch::kBFloat16);
    for (auto _ : state) {
        const auto normed = fused ? vitlab::fused::trainableLayerNormToBf16(x, weight, bias, 1e-6)
                                  : torch::layer_norm(x, {192}, weight, bias, 1e-6).to(torch::kBFloat16);
        normed.backward(upstream);
        benchmark::DoNotOptimize(x.grad().data_ptr());
    }
}

void softmaxForwardBackward(benchmark::State& state, bool fused)
{
    if (skipWhereBf16IsEmulated(state))
        return;
    torch::manual_seed(0);
    const auto scores = (torch::randn({32, 3, 197, 197}) * 8.0).to(torch::kBFloat16).requires_grad_();
    const auto upstream = torch::randn({32, 3, 197, 197}).to(torch::kBFloat16);
    for (auto _ : state) {
        const auto probabilities = fused ? vitlab::fused::scaledSoftmax(scores, 0.125) : (scores * 0.125).softmax(-1);
        probabilities.backward(upstream);
        benchmark::DoNotOptimize(scores.grad().data_ptr());
    }
}

void BM_layer_norm_to_bf16_aten(benchmark::State& state) { layerNormForwardBackward(state, false); }
void BM_layer_norm_to_bf16_fused(benchmark::State& state) { layerNormForwardBackward(state, true); }
void BM_scaled_softmax_bf16_aten(benchmark::State& state) { softmaxForwardBackward(state, false); }
void BM_scaled_softmax_bf16_fused(benchmark::State& state) { softmaxForwardBackward(state, true); }

} // namespace

BENCHMARK(BM_layer_norm_to_bf16_aten)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_layer_norm_to_bf16_fused)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_scaled_softmax_bf16_aten)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_scaled_softmax_bf16_fused)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv)
{
    return runBenchmarks(argc, argv);
}
