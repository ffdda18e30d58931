#pragma once

// The main() of every benchmark: the engine's runtime as the programs set it up, then Google Benchmark.
#include "core/runtime.h"

#include <benchmark/benchmark.h>

#include <string>

/// Marks a bf16 benchmark skipped, saying why, where bfloat16 would be emulated (on an AVX2-only
/// CPU its products run about 90x slower than float32). Call before the timing loop.
inline bool skipWhereBf16IsEmulated(benchmark::State& state)
{
    const auto bf16 = vitlab::bfloat16OnCpu();
    if (bf16.native)
        return false;
    state.SkipWithError(("bf16 skipped: " + bf16.reason).c_str());
    return true;
}

inline int runBenchmarks(int argc, char** argv)
{
    vitlab::reexecWithTunedThreading(argv);
    const vitlab::RuntimeInfo runtime = vitlab::initRuntime();
    benchmark::AddCustomContext("torch_threads", std::to_string(runtime.intraOpThreads));
    benchmark::AddCustomContext("cpu", runtime.cpuDescription);
    benchmark::AddCustomContext("cpu_bf16", runtime.cpuBfloat16Reason);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
