#include "app/cli/commands.h"

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
                if (*json) {
                    const nlohmann::json out = {
                        {"vitlab_version", info.vitlabVersion},
                        {"torch_version", info.torchVersion},
                        {"opencv_version", info.opencvVersion},
                        {"device", info.defaultDevice},
                        {"device_description", info.deviceDescription},
                        {"cuda_available", info.cudaAvailable},
                        {"cuda_unavailable_reason", info.cudaUnavailableReason},
                        {"threads", info.intraOpThreads},
                        {"kernel_threads", info.kernelThreads},
                        {"usable_cores", info.usableCores},
                        {"runs_directory", runs},
                        {"gomp_spincount", std::getenv("GOMP_SPINCOUNT") ? std::getenv("GOMP_SPINCOUNT") : ""},
                    };
                    std::cout << out.dump(2) << "\n";
                } else {
                    std::cout << "ViTLab " << info.vitlabVersion << "\nLibTorch " << info.torchVersion
                              << "\nOpenCV " << info.opencvVersion << "\ndevice: " << info.defaultDevice << " ("
                              << info.deviceDescription << ")\nthreads: " << info.intraOpThreads
                              << " (ViTLab's own kernels: " << info.kernelThreads << ")"
                              << "\nruns folder: " << runs << "\n";
                }
                return 0;
            }};
}

} // namespace vitlab::cli
