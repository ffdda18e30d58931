#include "app/cli/commands.h"

#include "core/runtime.h"
#include "core/train/execution.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <iostream>
#include <memory>

namespace vitlab::cli {

Command addInfoCommand(CLI::App& parent)
{
    auto json = std::make_shared<bool>(false);
    auto* app = parent.add_subcommand("info", "Show the runtime: versions, device, threads, runs folder");
    app->add_flag("--json", *json, "Print one JSON object");
    return {app, [json](const RuntimeInfo& info) {
                const auto runs = defaultRunsDirectory().string();
                // What --precision auto gives on the default device, and why.
                const auto device = resolveDevice("auto");
                const auto autoPrecision = resolvePrecision(Precision::Auto, device).name();
                const auto autoReason = device.is_cuda()
                    ? std::string(autoPrecision == "bf16" ? "on a CUDA device of compute capability 8.0 or later"
                                                          : "on a CUDA device older than compute capability 8.0, with loss scaling")
                    : info.cpuBfloat16Reason;
                nlohmann::json devices = nlohmann::json::array();
                for (const auto& cuda : info.cudaDevices)
                    devices.push_back({{"index", cuda.index},
                                       {"name", cuda.name},
                                       {"memory_bytes", cuda.memoryBytes},
                                       {"compute_capability", std::to_string(cuda.major) + "." + std::to_string(cuda.minor)}});
                if (*json) {
                    const nlohmann::json out = {
                        {"vitlab_version", info.vitlabVersion},
                        {"torch_version", info.torchVersion},
                        {"opencv_version", info.opencvVersion},
                        {"device", info.defaultDevice},
                        {"device_description", info.deviceDescription},
                        {"cuda_available", info.cudaAvailable},
                        {"cuda_unavailable_reason", info.cudaUnavailableReason},
                        {"cuda_devices", devices},
                        {"cuda_built_with", info.cudaBuiltWith},
                        {"cudnn_built_with", info.cudnnBuiltWith},
                        {"threads", info.intraOpThreads},
                        {"kernel_threads", info.kernelThreads},
                        {"float32_products", info.float32Products},
                        {"usable_cores", info.usableCores},
                        {"cpu", info.cpuDescription},
                        {"cpu_bf16_native", info.cpuBfloat16Native},
                        {"auto_precision", autoPrecision},
                        {"auto_precision_reason", autoReason},
                        {"runs_directory", runs},
                        {"gomp_spincount", std::getenv("GOMP_SPINCOUNT") ? std::getenv("GOMP_SPINCOUNT") : ""},
                    };
                    std::cout << out.dump(2) << "\n";
                } else {
                    std::cout << "ViTLab " << info.vitlabVersion << "\nLibTorch " << info.torchVersion
                              << "\nOpenCV " << info.opencvVersion << "\ndevice: " << info.defaultDevice << " ("
                              << info.deviceDescription << ")";
                    for (const auto& cuda : info.cudaDevices)
                        std::cout << "\n  cuda:" << cuda.index << " " << describeCudaDevice(cuda);
                    std::cout << "\nthreads: " << info.intraOpThreads
                              << " (ViTLab's own kernels: " << info.kernelThreads << ")"
                              << "\nfloat32 products: " << info.float32Products
                              << "\nCPU: " << info.cpuDescription << "\nprecision auto: "
                              << autoPrecision << " (" << autoReason << ")"
                              << "\nruns folder: " << runs << "\n";
                }
                return 0;
            }};
}

} // namespace vitlab::cli
