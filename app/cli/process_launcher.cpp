#include "app/cli/process_launcher.h"

#include "core/errors.h"
#include "core/runtime.h"
#include "core/train/group_launch.h"
#include "core/train/local_workers.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>

namespace vitlab::cli {

namespace {

using Clock = std::chrono::steady_clock;
/// What `vitlab-cli train` exits with when stopped (Ctrl-C, SIGTERM) and saved.
constexpr int kStoppedExitCode = 130;

/// The workers, for the signal handler that passes SIGTERM on.
constexpr int kMaxWorkers = 1024;
pid_t g_workers[kMaxWorkers];
std::atomic<int> g_workerCount{0};

void forwardTermination(int signal)
{
    for (int i = 0; i < g_workerCount.load(); ++i)
        ::kill(g_workers[i], signal);
}

/// Ctrl-C reaches every worker from the terminal itself: the launcher only waits for them.
void ignoreInterrupt(int) {}

} // namespace

namespace {
std::vector<std::string> g_commandLine;
} // namespace

void rememberCommandLine(int argc, char** argv)
{
    g_commandLine.assign(argv, argv + argc);
}

std::vector<std::string> commandLineWithout(const std::string& option)
{
    std::vector<std::string> kept;
    for (std::size_t i = 0; i < g_commandLine.size(); ++i) {
        const std::string& argument = g_commandLine[i];
        if (argument == option) {
            ++i; // and its value
            continue;
        }
        if (argument.rfind(option + "=", 0) == 0)
            continue;
        kept.push_back(argument);
    }
    return kept;
}

int threadsForGroupMember()
{
    if (const char* threads = std::getenv("VITLAB_THREADS"); threads && *threads)
        return 0;
    const auto group = groupLaunchFromEnvironment(processEnvironment());
    if (!group || group->localWorldSize <= 1)
        return 0;
    return std::max(1, usableCoreCount() / group->localWorldSize);
}

int launchLocalGroup(const LaunchPlan& plan)
{
    if (plan.processes < 1 || plan.processes > kMaxWorkers)
        throw ConfigError("--nproc takes 1 to " + std::to_string(kMaxWorkers) + " processes");
    LocalGroupPlan group;
    group.program = ownExecutable();
    group.arguments = plan.arguments;
    group.processes = plan.processes;
    group.port = freeLoopbackPort();
    group.threadsPerProcess = plan.threadsPerProcess > 0 ? plan.threadsPerProcess
                                                         : std::max(1, usableCoreCount() / plan.processes);
    group.launcher = "vitlab-cli --nproc";

    struct sigaction forward {};
    forward.sa_handler = forwardTermination;
    sigemptyset(&forward.sa_mask);
    struct sigaction interrupt {};
    interrupt.sa_handler = ignoreInterrupt;
    sigemptyset(&interrupt.sa_mask);
    struct sigaction previousTerm {}, previousInt {};
    ::sigaction(SIGTERM, &forward, &previousTerm);
    ::sigaction(SIGINT, &interrupt, &previousInt);
    LocalWorkers workers(group);
    for (const pid_t pid : workers.pids())
        g_workers[g_workerCount++] = pid;

    std::optional<int> firstFailure;
    std::optional<Clock::time_point> deadline;
    while (workers.running() > 0) {
        for (const auto& ended : workers.collect()) {
            if (ended.succeeded() || firstFailure)
                continue;
            firstFailure = ended.exitCode();
            // 130: the run stopped on Ctrl-C, with a checkpoint; the others stop with it.
            if (*firstFailure != kStoppedExitCode)
                std::fprintf(stderr, "error: worker rank %d of %d %s\n", ended.rank, plan.processes, ended.describe().c_str());
            deadline = Clock::now()
                + std::chrono::milliseconds(static_cast<long long>(std::max(1.0, plan.graceSeconds) * 1000.0));
        }
        if (deadline && Clock::now() >= *deadline && workers.running() > 0) {
            // A worker failed and the others did not stop on their own in the grace period.
            std::fprintf(stderr, "error: ending the %zu workers still running\n", workers.running());
            workers.finish(std::chrono::milliseconds(0));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::sigaction(SIGTERM, &previousTerm, nullptr);
    ::sigaction(SIGINT, &previousInt, nullptr);
    g_workerCount = 0;
    return firstFailure.value_or(0);
}

} // namespace vitlab::cli
