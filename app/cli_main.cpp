// vitlab-cli: the headless entry. Every command reports failure as one line, "error: ...", on
// stderr; exit status 1 is a failure of the work (unreadable or malformed input), 2 a mistake in
// the command line or the configuration.
#include "app/cli/commands.h"
#include "app/cli/process_launcher.h"
#include "core/errors.h"
#include "core/runtime.h"

#include <pthread.h>
#include <signal.h>

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
    if (!info.cudaBuiltWith.empty())
        std::cout << "\nbuilt with CUDA " << info.cudaBuiltWith
                  << (info.cudnnBuiltWith.empty() ? std::string() : ", cuDNN " + info.cudnnBuiltWith);
    std::cout << "\n"
              << "threads: " << info.intraOpThreads << " (of " << info.usableCores << " usable cores)\n";
}

std::string oneLine(std::string text)
{
    // LibTorch's messages carry a C++ backtrace after the first line.
    if (const auto end = text.find('\n'); end != std::string::npos)
        text.resize(end);
    return text;
}

} // namespace

int main(int argc, char** argv)
{
    // Ctrl-C and SIGTERM blocked from the start, in every thread that LibTorch and the runtime
    // start before a command runs (the mask survives the re-exec below): `train` waits for them on
    // a thread of its own and stops with a checkpoint; a thread that did not block them would end
    // the program at once.
    sigset_t stopSignals;
    sigemptyset(&stopSignals);
    sigaddset(&stopSignals, SIGINT);
    sigaddset(&stopSignals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
    vitlab::reexecWithTunedThreading(argv);
    vitlab::cli::rememberCommandLine(argc, argv);
    CLI::App app{"ViTLab: train and inspect Vision Transformer image classifiers, headless.", "vitlab-cli"};
    app.require_subcommand(0, 1);
    bool showVersion = false;
    app.add_flag("-V,--version", showVersion, "Print the versions of ViTLab and LibTorch, the device and the threads");
    int threads = 0;
    app.add_option("--threads", threads, "Intra-op threads (default: every usable core)")->check(CLI::Range(1, 4096));

    const std::vector<vitlab::cli::Command> commands{
        vitlab::cli::addInfoCommand(app),
        vitlab::cli::addModelsCommand(app),
        vitlab::cli::addForwardCommand(app),
        vitlab::cli::addDataCommand(app),
        vitlab::cli::addTrainCommand(app),
        vitlab::cli::addEvalCommand(app),
        vitlab::cli::addPredictCommand(app),
        vitlab::cli::addExplainCommand(app),
        vitlab::cli::addWeightsCommand(app),
        vitlab::cli::addBenchCommand(app),
    };

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& success) {
        return app.exit(success);
    } catch (const CLI::ParseError& error) {
        app.exit(error);
        return kExitUsage;
    }

    try {
        if (threads == 0)
            threads = vitlab::cli::threadsForGroupMember();
        const vitlab::RuntimeInfo runtime = vitlab::initRuntime({threads});
        // Every thread started so far keeps Ctrl-C and SIGTERM blocked; this one takes them again.
        pthread_sigmask(SIG_UNBLOCK, &stopSignals, nullptr);
        if (showVersion) {
            printVersion(runtime);
            return 0;
        }
        for (const auto& command : commands) {
            if (command.app->parsed())
                return command.run(runtime);
        }
        std::cout << app.help();
        return kExitUsage;
    } catch (const vitlab::ConfigError& error) {
        std::cerr << "error: " << oneLine(error.what()) << "\n";
        return kExitUsage;
    } catch (const std::exception& error) {
        std::cerr << "error: " << oneLine(error.what()) << "\n";
        return kExitFailure;
    }
}
