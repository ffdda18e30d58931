// vitlab-cli: the headless entry. Every command reports failure as one line, "error: ...", on
// stderr; exit status 1 is a failure of the work, 2 a mistake in the command line.
#include "core/errors.h"
#include "core/runtime.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

void printVersion(const vitlab::RuntimeInfo& info)
{
    std::cout << "ViTLab " << info.vitlabVersion << "\n"
              << "LibTorch " << info.torchVersion << "\n"
              << "OpenCV " << info.opencvVersion << "\n"
              << "device: " << info.defaultDevice << " (" << info.deviceDescription << ")";
    if (!info.cudaAvailable)
        std::cout << "; CUDA unavailable: " << info.cudaUnavailableReason;
    std::cout << "\n"
              << "threads: " << info.intraOpThreads << " (of " << info.usableCores << " usable cores)\n";
}

nlohmann::json runtimeJson(const vitlab::RuntimeInfo& info)
{
    return {
        {"vitlab_version", info.vitlabVersion},
        {"torch_version", info.torchVersion},
        {"opencv_version", info.opencvVersion},
        {"device", info.defaultDevice},
        {"device_description", info.deviceDescription},
        {"cuda_available", info.cudaAvailable},
        {"cuda_unavailable_reason", info.cudaUnavailableReason},
        {"threads", info.intraOpThreads},
        {"usable_cores", info.usableCores},
        {"runs_directory", vitlab::defaultRunsDirectory().string()},
    };
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"ViTLab: train and inspect Vision Transformer image classifiers, headless.", "vitlab-cli"};
    app.require_subcommand(0, 1);
    bool showVersion = false;
    app.add_flag("-V,--version", showVersion, "Print the versions of ViTLab and LibTorch, the device and the threads");
    int threads = 0;
    app.add_option("--threads", threads, "Intra-op threads (default: every usable core)")->check(CLI::Range(1, 4096));

    auto* info = app.add_subcommand("info", "Show the runtime: versions, device, threads, runs folder");
    bool infoJson = false;
    info->add_flag("--json", infoJson, "Print one JSON object");

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& success) {
        return app.exit(success);
    } catch (const CLI::ParseError& error) {
        app.exit(error);
        return kExitUsage;
    }

    try {
        const vitlab::RuntimeInfo runtime = vitlab::initRuntime({threads});
        if (showVersion) {
            printVersion(runtime);
            return 0;
        }
        if (info->parsed()) {
            if (infoJson) {
                std::cout << runtimeJson(runtime).dump(2) << "\n";
            } else {
                printVersion(runtime);
                std::cout << "runs folder: " << vitlab::defaultRunsDirectory().string() << "\n";
            }
            return 0;
        }
        std::cout << app.help();
        return kExitUsage;
    } catch (const vitlab::ConfigError& error) {
        std::cerr << "error: " << error.what() << "\n";
        return kExitUsage;
    } catch (const std::exception& error) {
        std::cerr << "error: " << error.what() << "\n";
        return kExitFailure;
    }
}
