// Explaining one image with vit_tiny_patch16_224 (the issue asks for under 150 ms here), and
// what attention capture costs: the plain forward pass with capture off against capture on.
#include "bench/bench_main.h"
#include "core/attention/explain.h"
#include "core/models/registry.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

namespace {

vitlab::Classifier tinyVit()
{
    torch::manual_seed(0);
    auto model = vitlab::createModel(vitlab::ModelRegistry::instance().model("vit_tiny_patch16_224"));
    model->eval();
    return model;
}

void forwardWithCapture(benchmark::State& state, bool capture)
{
    auto model = tinyVit();
    const auto image = torch::randn({1, 3, 224, 224});
    model->setAttentionCapture(capture);
    c10::InferenceMode inference;
    for (int i = 0; i < 2; ++i)
        model->forward(image);
    for (auto _ : state)
        benchmark::DoNotOptimize(model->forward(image));
}

void explainLatency(benchmark::State& state, vitlab::ExplainMethod method)
{
    auto model = tinyVit();
    const auto image = torch::randn({1, 3, 224, 224});
    vitlab::ExplainOptions options;
    options.method = method;
    for (int i = 0; i < 2; ++i)
        vitlab::explain(*model, image, options);
    for (auto _ : state)
        benchmark::DoNotOptimize(vitlab::explain(*model, image, options).map);
}

void BM_vit_tiny_forward_capture_off(benchmark::State& state) { forwardWithCapture(state, false); }
void BM_vit_tiny_forward_capture_on(benchmark::State& state) { forwardWithCapture(state, true); }
void BM_vit_tiny_explain_attention(benchmark::State& state) { explainLatency(state, vitlab::ExplainMethod::Attention); }
void BM_vit_tiny_explain_rollout(benchmark::State& state) { explainLatency(state, vitlab::ExplainMethod::Rollout); }
void BM_vit_tiny_explain_relevance(benchmark::State& state) { explainLatency(state, vitlab::ExplainMethod::Relevance); }

} // namespace

BENCHMARK(BM_vit_tiny_forward_capture_off)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_vit_tiny_forward_capture_on)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_vit_tiny_explain_attention)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_vit_tiny_explain_rollout)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_vit_tiny_explain_relevance)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv)
{
    return runBenchmarks(argc, argv);
}
