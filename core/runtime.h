#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

// Deliberately free of torch headers: the desktop front end reads this through the facade.
namespace vitlab {

struct RuntimeOptions {
    /// Intra-op threads for LibTorch; 0 means every core this process may run on.
    int threads = 0;
};

/// A CUDA device as LibTorch sees it.
struct CudaDeviceInfo {
    int index = 0;
    std::string name;
    std::int64_t memoryBytes = 0;
    /// Compute capability (8.0 and up runs bfloat16 natively).
    int major = 0;
    int minor = 0;
};

/// What the engine runs on, for `--version`, the About box and the status bar.
struct RuntimeInfo {
    std::string vitlabVersion;
    std::string torchVersion;
    std::string opencvVersion;
    /// "cuda" when LibTorch sees a CUDA device, else "cpu".
    std::string defaultDevice;
    /// Human-readable: "CPU" or "CUDA (2 devices)".
    std::string deviceDescription;
    bool cudaAvailable = false;
    /// The visible CUDA devices (empty without CUDA, or in a build without CUDA headers).
    std::vector<CudaDeviceInfo> cudaDevices;
    /// Why CUDA cannot be used, empty when it can.
    std::string cudaUnavailableReason;
    /// The CUDA and cuDNN versions LibTorch was built with ("13.2", "9.26.0"), empty without them.
    std::string cudaBuiltWith;
    std::string cudnnBuiltWith;
    int intraOpThreads = 0;
    /// Threads one parallel loop of the engine's own CPU kernels (fused bf16, max pool) runs on:
    /// intraOpThreads when core is built with OpenMP as LibTorch is, 1 otherwise.
    int kernelThreads = 0;
    int usableCores = 0;
    /// What runs float32 products on the CPU (float32ProductsDescription).
    std::string float32Products;
    /// The CPU's model name and family, as lscpu gives them ("AMD EPYC, family 26").
    std::string cpuDescription;
    /// Whether bfloat16 matrix products run natively on this CPU, and why (see bfloat16OnCpu).
    bool cpuBfloat16Native = false;
    std::string cpuBfloat16Reason;
};

/// Whether LibTorch's bfloat16 matrix products run natively on this CPU: with AMX or AVX-512 BF16,
/// unless oneDNN is kept from them (ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA below
/// AVX512_CORE_BF16). Elsewhere bfloat16 is emulated: on an AVX2-only CPU its matrix products ran
/// about 90x slower than float32. `reason` says which, in words.
struct CpuBfloat16 {
    bool native = false;
    std::string reason;
};
CpuBfloat16 bfloat16OnCpu();

/// The visible CUDA devices with name, memory and compute capability. Needs a LibTorch built
/// with CUDA and its headers (VITLAB_WITH_CUDA); empty otherwise.
std::vector<CudaDeviceInfo> cudaDevices();

/// "NVIDIA H200, 139.8 GiB, compute capability 9.0".
std::string describeCudaDevice(const CudaDeviceInfo& device);

/// Cores this process may run on (its CPU affinity), at least 1.
int usableCoreCount();

/// Sets LibTorch's intra-op and inter-op thread counts and reports the runtime. LibTorch's own
/// default counts physical cores only, which gives 1 thread on a 2-vCPU machine. The environment
/// variable VITLAB_THREADS overrides `options.threads`. Safe to call more than once.
RuntimeInfo initRuntime(const RuntimeOptions& options = {});

/// Call first in main(). LibTorch's OpenMP threads spin for a long time after each parallel
/// region, and OpenBLAS's own threads (float32 matrix products) then wait behind them: on two
/// cores float32 inference ran 2-3x slower. libgomp reads its spin count (GOMP_SPINCOUNT) only
/// when it loads, so the program re-executes itself once with a short spin count. Returns at once
/// when the setting is already there, when VITLAB_NO_REEXEC is set, or if exec fails.
void reexecWithTunedThreading(char** argv);

/// The runtime as it is now, without changing anything.
RuntimeInfo currentRuntime();

/// Where run folders go unless the user says otherwise: $VITLAB_RUNS_DIR, else
/// $XDG_DATA_HOME/vitlab/runs, else ~/.local/share/vitlab/runs. The GUI and the CLI share it,
/// so each sees the other's runs.
std::filesystem::path defaultRunsDirectory();

} // namespace vitlab
