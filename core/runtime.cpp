#include "core/runtime.h"

#include "core/models/onednn_products.h"
#include "core/torch_compat.h"
#include "core/version.h"

#if VITLAB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace vitlab {
namespace {

int threadsFromEnvironment()
{
    const char* value = std::getenv("VITLAB_THREADS");
    if (value == nullptr || *value == '\0')
        return 0;
    char* end = nullptr;
    const long parsed = std::strtol(value, &end, 10);
    return (*end == '\0' && parsed > 0 && parsed <= 4096) ? static_cast<int>(parsed) : 0;
}

/// The first /proc/cpuinfo line that starts with `key`, after its colon; empty when none.
std::string cpuinfoField(const std::string& key)
{
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind(key, 0) == 0) {
            const auto colon = line.find(':');
            return colon == std::string::npos ? std::string() : line.substr(std::min(colon + 2, line.size()));
        }
    }
    return {};
}

bool cpuHasFlag(const std::string& flag)
{
    static const std::string flags = " " + cpuinfoField("flags") + " ";
    return flags.find(" " + flag + " ") != std::string::npos;
}

/// oneDNN's instruction-set cap from the environment, upper case; empty when unset.
std::string onednnIsaCap()
{
    for (const char* name : {"ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"}) {
        if (const char* value = std::getenv(name); value && *value) {
            std::string cap = value;
            for (auto& c : cap)
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            return std::string(name) + "=" + cap;
        }
    }
    return {};
}

std::string cudaUnavailableReason()
{
    if (!compat::builtWithCuda())
        return "this LibTorch was built without CUDA";
    if (!torch::cuda::is_available())
        return "no CUDA device visible (CUDA_VISIBLE_DEVICES, the driver, or no GPU)";
    return {};
}

} // namespace

void reexecWithTunedThreading(char** argv)
{
    if (std::getenv("VITLAB_NO_REEXEC") || std::getenv("GOMP_SPINCOUNT") || argv == nullptr || argv[0] == nullptr)
        return;
    setenv("GOMP_SPINCOUNT", "10000", /*overwrite=*/0);
    execv("/proc/self/exe", argv);
    // exec failed: carry on with the default spin count.
}

int usableCoreCount()
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int count = CPU_COUNT(&set);
        if (count > 0)
            return count;
    }
    const unsigned hardware = std::thread::hardware_concurrency();
    return hardware > 0 ? static_cast<int>(hardware) : 1;
}

RuntimeInfo initRuntime(const RuntimeOptions& options)
{
    int threads = threadsFromEnvironment();
    if (threads == 0)
        threads = options.threads > 0 ? options.threads : usableCoreCount();
    at::set_num_threads(threads);

    // Activations are large and short-lived. glibc returns big blocks to the system on every free
    // and maps them fresh (page faults) on the next allocation, which doubled the time of a
    // bf16 batch here. Keep them in the heap unless the user tuned malloc.
    if (!std::getenv("MALLOC_MMAP_THRESHOLD_") && !std::getenv("MALLOC_TRIM_THRESHOLD_")) {
        mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
        mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
    }

    // The inter-op pool can only be sized before its first use, so only the first call does it.
    static std::once_flag interOpOnce;
    std::call_once(interOpOnce, [threads] {
        try {
            at::set_num_interop_threads(threads);
        } catch (const c10::Error&) {
            // Already started by an earlier torch call: keep LibTorch's size.
        }
    });
    return currentRuntime();
}

namespace {

/// Distinct threads that an at::parallel_for compiled here runs its work on. Probed on a thread of
/// its own: OpenMP keeps a team's workers for as long as the thread that started it lives, and a
/// team left on the app's UI thread made libgomp count more threads than cores, so the training
/// team slept between kernels instead of spinning (the app trained at 0.6x the CLI's speed).
int parallelLoopThreads()
{
    const int wanted = at::get_num_threads();
    int counted = 0;
    std::thread probe([&] {
        at::set_num_threads(wanted);
        std::mutex mutex;
        std::set<int> threads;
        at::parallel_for(0, 1024, 1, [&](std::int64_t, std::int64_t) {
            const std::lock_guard<std::mutex> lock(mutex);
            threads.insert(at::get_thread_num());
        });
        counted = static_cast<int>(threads.size());
    });
    probe.join();
    return counted;
}

} // namespace

CpuBfloat16 bfloat16OnCpu()
{
    const bool amx = cpuHasFlag("amx_bf16");
    const bool avx512Bf16 = cpuHasFlag("avx512_bf16");
    if (!amx && !avx512Bf16)
        return {false, std::string("the CPU has neither AMX nor AVX-512 BF16") + (cpuHasFlag("avx512f") ? "" : " (AVX2 at most)")
                           + ": bfloat16 would be emulated, far slower than float32"};
    const auto cap = onednnIsaCap();
    const auto value = cap.substr(cap.find('=') + 1);
    // The caps that still allow bf16 instructions (oneDNN 2.x and 3.x spellings).
    static const std::set<std::string> bf16Caps{"ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_FP16",
                                                "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512",
                                                "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512",
                                                "AVX10_2_512_AMX_2"};
    if (!cap.empty() && bf16Caps.count(value) == 0)
        return {false, cap + " keeps oneDNN from the CPU's bfloat16 instructions: bfloat16 would be emulated"};
    return {true, std::string("the CPU has ") + (amx ? "AMX" : "AVX-512 BF16") + ": bfloat16 matrix products run natively"};
}

std::vector<CudaDeviceInfo> cudaDevices()
{
    std::vector<CudaDeviceInfo> devices;
#if VITLAB_WITH_CUDA
    if (!torch::cuda::is_available())
        return devices;
    for (int index = 0; index < static_cast<int>(torch::cuda::device_count()); ++index) {
        const auto* properties = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(index));
        devices.push_back({index, properties->name, static_cast<std::int64_t>(properties->totalGlobalMem),
                           properties->major, properties->minor});
    }
#endif
    return devices;
}

std::string describeCudaDevice(const CudaDeviceInfo& device)
{
    char memory[32];
    std::snprintf(memory, sizeof memory, "%.1f GiB", static_cast<double>(device.memoryBytes) / (1024.0 * 1024.0 * 1024.0));
    return device.name + ", " + memory + ", compute capability " + std::to_string(device.major) + "."
        + std::to_string(device.minor);
}

RuntimeInfo currentRuntime()
{
    RuntimeInfo info;
    info.vitlabVersion = VITLAB_VERSION_STRING;
    info.torchVersion = compat::torchVersionString();
    info.opencvVersion = VITLAB_OPENCV_VERSION;
    info.cudaUnavailableReason = cudaUnavailableReason();
    info.cudaAvailable = info.cudaUnavailableReason.empty();
    // CUDA encodes major * 1000 + minor * 10, cuDNN 9 major * 10000 + minor * 100 + patch.
    if (const long cuda = compat::cudaVersionBuiltWith(); cuda > 0)
        info.cudaBuiltWith = std::to_string(cuda / 1000) + "." + std::to_string(cuda % 1000 / 10);
    if (const long cudnn = compat::cudnnVersionBuiltWith(); cudnn > 0) {
        const long major = cudnn >= 90000 ? cudnn / 10000 : cudnn / 1000;
        const long rest = cudnn >= 90000 ? cudnn % 10000 : cudnn % 1000;
        info.cudnnBuiltWith = std::to_string(major) + "." + std::to_string(rest / 100) + "." + std::to_string(rest % 100);
    }
    info.defaultDevice = info.cudaAvailable ? "cuda" : "cpu";
    if (info.cudaAvailable) {
        info.cudaDevices = cudaDevices();
        const auto count = torch::cuda::device_count();
        info.deviceDescription = "CUDA (" + std::to_string(count) + (count == 1 ? " device" : " devices")
            + (info.cudaDevices.empty() ? "" : ": " + info.cudaDevices.front().name) + ")";
    } else {
        info.deviceDescription = "CPU";
    }
    info.intraOpThreads = at::get_num_threads();
    info.kernelThreads = parallelLoopThreads();
    info.usableCores = usableCoreCount();
    info.float32Products = float32ProductsDescription();
    // Read once: the CPU does not change, and this runs at every training start.
    static const std::string cpuDescription = [] {
        const auto model = cpuinfoField("model name");
        const auto family = cpuinfoField("cpu family");
        return (model.empty() ? std::string("unknown CPU") : model) + (family.empty() ? "" : ", family " + family);
    }();
    info.cpuDescription = cpuDescription;
    const auto bf16 = bfloat16OnCpu();
    info.cpuBfloat16Native = bf16.native;
    info.cpuBfloat16Reason = bf16.reason;
    return info;
}

std::filesystem::path defaultRunsDirectory()
{
    if (const char* explicitDir = std::getenv("VITLAB_RUNS_DIR"); explicitDir && *explicitDir)
        return explicitDir;
    if (const char* dataHome = std::getenv("XDG_DATA_HOME"); dataHome && *dataHome)
        return std::filesystem::path(dataHome) / "vitlab" / "runs";
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::filesystem::path(home) / ".local" / "share" / "vitlab" / "runs";
    return std::filesystem::current_path() / "runs";
}

} // namespace vitlab
