#include "core/train/execution.h"

#include "core/errors.h"
#include "core/runtime.h"
#include "core/torch_compat.h"

#if VITLAB_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <new>

#include <string>

namespace vitlab {

torch::Device resolveDevice(const std::string& name)
{
    if (name == "auto")
        return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    if (name == "cpu")
        return torch::kCPU;
    if (name.rfind("cuda", 0) == 0) {
        int index = 0;
        if (name.size() > 4) {
            const auto indexText = name.substr(name.size() > 5 && name[4] == ':' ? 5 : name.size());
            if (indexText.empty() || indexText.find_first_not_of("0123456789") != std::string::npos)
                throw ConfigError("a CUDA device is \"cuda\" or \"cuda:N\", not \"" + name + "\"");
            index = std::stoi(indexText);
        }
        const auto runtime = currentRuntime();
        if (!runtime.cudaAvailable)
            throw ConfigError("cannot train on " + name + ": " + runtime.cudaUnavailableReason);
        if (index >= static_cast<int>(torch::cuda::device_count()))
            throw ConfigError("there is no CUDA device " + std::to_string(index) + " (this machine has "
                              + std::to_string(torch::cuda::device_count()) + ")");
        return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
    }
    throw ConfigError("the device must be auto, cpu, cuda or cuda:N, not \"" + name + "\"");
}

bool cpuHasNativeBfloat16()
{
    return bfloat16OnCpu().native;
}

std::string ComputePrecision::name() const
{
    switch (dtype) {
    case at::kBFloat16:
        return "bf16";
    case at::kHalf:
        return "fp16";
    default:
        return "fp32";
    }
}

ComputePrecision resolvePrecision(Precision precision, const torch::Device& device)
{
    switch (precision) {
    case Precision::Float32:
        return {at::kFloat};
    case Precision::BFloat16:
        return {at::kBFloat16};
    case Precision::Float16:
        if (!device.is_cuda() && !compat::kCpuAutocastsToHalf)
            throw ConfigError("fp16 on the CPU needs LibTorch 2.x (this is " + compat::torchVersionString()
                              + "); use bf16 or fp32");
        return {at::kHalf};
    case Precision::Auto:
        break;
    }
    if (device.is_cuda()) {
        for (const auto& info : cudaDevices()) {
            if (info.index == device.index() || (device.index() < 0 && info.index == 0))
                return {info.major >= 8 ? at::kBFloat16 : at::kHalf};
        }
        return {at::kBFloat16}; // a build without CUDA headers cannot ask; every current GPU has it
    }
    return {cpuHasNativeBfloat16() ? at::kBFloat16 : at::kFloat};
}

TrainConfig fashionMnistRecipeFor(const TrainConfig& config)
{
    const auto device = resolveDevice(config.device);
    return fashionMnistRecipe(!device.is_cuda() && !resolvePrecision(config.precision, device).autocasts());
}

ComputePrecision inferencePrecision(Precision precision, const torch::Device& device)
{
    if (precision == Precision::Float16 && !device.is_cuda() && !compat::kCpuAutocastsToHalf)
        return resolvePrecision(Precision::Auto, device);
    return resolvePrecision(precision, device);
}

bool isOutOfMemory(const std::exception& error)
{
    if (dynamic_cast<const c10::OutOfMemoryError*>(&error) || dynamic_cast<const std::bad_alloc*>(&error))
        return true;
    if (const auto* torchError = dynamic_cast<const c10::Error*>(&error)) {
        const std::string text = torchError->what_without_backtrace();
        // CUDA's "CUDA out of memory", the CPU allocator's "can't allocate memory" (and older
        // releases' "not enough memory").
        for (const char* phrase : {"out of memory", "Out of Memory", "can't allocate memory", "not enough memory"}) {
            if (text.find(phrase) != std::string::npos)
                return true;
        }
        return false;
    }
    return false;
}

void releaseCachedDeviceMemory()
{
#if VITLAB_WITH_CUDA
    if (torch::cuda::is_available())
        c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

void allowTf32(bool allowed)
{
    at::globalContext().setAllowTF32CuBLAS(allowed);
    at::globalContext().setAllowTF32CuDNN(allowed);
}

} // namespace vitlab
