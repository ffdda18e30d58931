#include "app/cli/commands.h"

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
                const bool autoBf16 = useBfloat16(Precision::Auto, device);
                const auto autoReason = device.is_cuda() ? std::string("on CUDA") : info.cpuBfloat16Reason;
                if (*json) {
                    const nlohmann::json out = {
                        {"vitlab_version", info.vitlabVersion},
                        {"torch_version", info.torchVersion},
                        {"opencv_version", info.opencvVersion},
                        {"device", info.defaultDevice},
                        {"device_description", info.deviceDescription},
                        {"cuda_available", info.cudaAvailable},
                        {"cuda_unavailable_reason", info.cudaUnavailableReason},
                        {"cuda_built_with", info.cudaBuiltWith},
                        {"cudnn_built_with", info.cudnnBuiltWith},
                        {"threads", info.intraOpThreads},
                        {"kernel_threads", info.kernelThreads},
                        {"usable_cores", info.usableCores},
                        {"cpu", info.cpuDescription},
                        {"cpu_bf16_native", info.cpuBfloat16Native},
                        {"auto_precision", autoBf16 ? "bf16" : "fp32"},
                        {"auto_precision_reason", autoReason},
                        {"runs_directory", runs},
                        {"gomp_spincount", std::getenv("GOMP_SPINCOUNT") ? std::getenv("GOMP_SPINCOUNT") : ""},
                    };
                    std::cout << out.dump(2) << "\n";
                } else {
                    std::cout << "ViTLab " << info.vitlabVersion << "\nLibTorch " << info.torchVersion
                              << "\nOpenCV " << info.opencvVersion << "\ndevice: " << info.defaultDevice << " ("
                              << info.deviceDescription << ")\nthreads: " << info.intraOpThreads
                              << " (ViTLab's own kernels: " << info.kernelThreads << ")"
                              << "\nCPU: " << info.cpuDescription << "\nprecision auto: "
                              << (autoBf16 ? "bf16" : "fp32") << " (" << autoReason << ")"
                              << "\nruns folder: " << runs << "\n";
                }
                return 0;
            }};
}

} // namespace vitlab::cli
