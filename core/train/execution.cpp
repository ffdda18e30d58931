#include "core/train/execution.h"

#include "core/errors.h"
#include "core/runtime.h"

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

bool useBfloat16(Precision precision, const torch::Device& device)
{
    switch (precision) {
    case Precision::Float32:
        return false;
    case Precision::BFloat16:
        return true;
    case Precision::Auto:
        break;
    }
    return device.is_cuda() || cpuHasNativeBfloat16();
}

} // namespace vitlab
