#include "app/cli/process_launcher.h"

#include "core/errors.h"
#include "core/runtime.h"
#include "core/train/group_launch.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <thread>

extern char** environ;

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

std::string describeExit(int status)
{
    if (WIFEXITED(status))
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) + ")";
    return "ended with wait status " + std::to_string(status);
}

int exitCodeOf(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

/// This process's environment with `overrides` set (replacing any value they had).
std::vector<std::string> environmentWith(const std::map<std::string, std::string>& overrides)
{
    std::vector<std::string> entries;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string text = *entry;
        if (overrides.count(text.substr(0, text.find('='))) == 0)
            entries.push_back(text);
    }
    for (const auto& [name, value] : overrides)
        entries.push_back(name + "=" + value);
    return entries;
}

std::vector<char*> pointers(std::vector<std::string>& texts)
{
    std::vector<char*> result;
    for (auto& text : texts)
        result.push_back(text.data());
    result.push_back(nullptr);
    return result;
}

std::string ownExecutable()
{
    char path[4096];
    const auto length = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (length <= 0)
        throw Error("cannot find this program's own file (/proc/self/exe) to start the workers");
    return std::string(path, static_cast<std::size_t>(length));
}

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
    const int port = freeLoopbackPort();
    const int threads = plan.threadsPerProcess > 0 ? plan.threadsPerProcess
                                                   : std::max(1, usableCoreCount() / plan.processes);
    const auto program = ownExecutable();
    auto arguments = plan.arguments;
    auto argv = pointers(arguments);

    struct sigaction forward {};
    forward.sa_handler = forwardTermination;
    sigemptyset(&forward.sa_mask);
    struct sigaction interrupt {};
    interrupt.sa_handler = ignoreInterrupt;
    sigemptyset(&interrupt.sa_mask);
    struct sigaction previousTerm {}, previousInt {};
    ::sigaction(SIGTERM, &forward, &previousTerm);
    ::sigaction(SIGINT, &interrupt, &previousInt);

    std::map<pid_t, int> ranks;
    for (int rank = 0; rank < plan.processes; ++rank) {
        auto environment = environmentWith({{"RANK", std::to_string(rank)},
                                            {"WORLD_SIZE", std::to_string(plan.processes)},
                                            {"LOCAL_RANK", std::to_string(rank)},
                                            {"LOCAL_WORLD_SIZE", std::to_string(plan.processes)},
                                            {"MASTER_ADDR", "127.0.0.1"},
                                            {"MASTER_PORT", std::to_string(port)},
                                            {"VITLAB_THREADS", std::to_string(threads)},
                                            {"VITLAB_LAUNCHER", "vitlab-cli --nproc"}});
        auto envp = pointers(environment);
        pid_t pid = 0;
        const int failed = ::posix_spawn(&pid, program.c_str(), nullptr, nullptr, argv.data(), envp.data());
        if (failed != 0) {
            forwardTermination(SIGTERM);
            throw Error("cannot start worker " + std::to_string(rank) + ": " + std::strerror(failed));
        }
        ranks[pid] = rank;
        g_workers[g_workerCount.load()] = pid;
        ++g_workerCount;
    }

    std::optional<int> firstFailure;
    std::optional<Clock::time_point> deadline;
    bool terminated = false;
    while (!ranks.empty()) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, deadline ? WNOHANG : 0);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid < 0)
            break;
        if (pid == 0) {
            // A worker failed: the others get the grace period to stop on their own, then are ended.
            if (Clock::now() >= *deadline) {
                for (const auto& [worker, rank] : ranks)
                    ::kill(worker, terminated ? SIGKILL : SIGTERM);
                if (!terminated)
                    std::fprintf(stderr, "error: ending the %zu workers still running\n", ranks.size());
                terminated = true;
                deadline = Clock::now() + std::chrono::seconds(5);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        const auto found = ranks.find(pid);
        if (found == ranks.end())
            continue;
        const int rank = found->second;
        ranks.erase(found);
        const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (failed && !firstFailure) {
            firstFailure = exitCodeOf(status);
            // 130: the run stopped on Ctrl-C, with a checkpoint; the others stop with it.
            if (*firstFailure != kStoppedExitCode)
                std::fprintf(stderr, "error: worker rank %d of %d %s\n", rank, plan.processes, describeExit(status).c_str());
            deadline = Clock::now()
                + std::chrono::milliseconds(static_cast<long long>(std::max(1.0, plan.graceSeconds) * 1000.0));
        }
    }
    ::sigaction(SIGTERM, &previousTerm, nullptr);
    ::sigaction(SIGINT, &previousInt, nullptr);
    g_workerCount = 0;
    return firstFailure.value_or(0);
}

} // namespace vitlab::cli
