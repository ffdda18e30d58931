#pragma once

// The main() of every benchmark: the engine's runtime as the programs set it up, then Google Benchmark.
#include "core/runtime.h"

#include <benchmark/benchmark.h>

#include <string>

inline int runBenchmarks(int argc, char** argv)
{
    vitlab::reexecWithTunedThreading(argv);
    const vitlab::RuntimeInfo runtime = vitlab::initRuntime();
    benchmark::AddCustomContext("torch_threads", std::to_string(runtime.intraOpThreads));
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
