#include "core/train/local_workers.h"

#include "core/errors.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

extern char** environ;

namespace vitlab {

namespace {

using Clock = std::chrono::steady_clock;
/// How long an ended worker has between SIGTERM (it saves and stops) and SIGKILL.
constexpr auto kTerminationGrace = std::chrono::seconds(5);
constexpr auto kPollInterval = std::chrono::milliseconds(50);

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

/// posix_spawn's attributes and file actions, released however the spawn ends.
struct SpawnSetup {
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_t actions;
    SpawnSetup()
    {
        posix_spawnattr_init(&attributes);
        posix_spawn_file_actions_init(&actions);
        // A worker takes SIGINT and SIGTERM as a fresh program would, whatever this one blocks.
        sigset_t none, stops;
        sigemptyset(&none);
        sigemptyset(&stops);
        sigaddset(&stops, SIGINT);
        sigaddset(&stops, SIGTERM);
        posix_spawnattr_setsigmask(&attributes, &none);
        posix_spawnattr_setsigdefault(&attributes, &stops);
        posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    ~SpawnSetup()
    {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attributes);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
};

} // namespace

bool WorkerExit::succeeded() const
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int WorkerExit::exitCode() const
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

std::string WorkerExit::describe() const
{
    if (WIFEXITED(status))
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + ::strsignal(WTERMSIG(status)) + ")";
    return "ended with wait status " + std::to_string(status);
}

LocalWorkers::LocalWorkers(const LocalGroupPlan& plan)
    : m_plan(plan)
{
    if (plan.processes < 1 || plan.firstRank < 0 || plan.firstRank > plan.processes)
        throw ConfigError("a local group has 1 or more processes, not " + std::to_string(plan.processes));
    if (!plan.logDirectory.empty()) {
        std::error_code error;
        std::filesystem::create_directories(plan.logDirectory, error);
        if (error)
            throw IoError("cannot make the workers' log folder " + plan.logDirectory.string() + ": " + error.message());
    }
    auto arguments = plan.arguments;
    if (arguments.empty())
        arguments.push_back(plan.program);
    auto argv = pointers(arguments);
    const auto threads = std::to_string(std::max(1, plan.threadsPerProcess));
    for (int rank = plan.firstRank; rank < plan.processes; ++rank) {
        std::map<std::string, std::string> group{{"RANK", std::to_string(rank)},
                                                 {"WORLD_SIZE", std::to_string(plan.processes)},
                                                 {"LOCAL_RANK", std::to_string(rank)},
                                                 {"LOCAL_WORLD_SIZE", std::to_string(plan.processes)},
                                                 {"MASTER_ADDR", "127.0.0.1"},
                                                 {"MASTER_PORT", std::to_string(plan.port)},
                                                 {"VITLAB_THREADS", threads},
                                                 {"VITLAB_LAUNCHER", plan.launcher}};
        // OpenBLAS (Debian's float32 products) sizes its own pool from the cores, not from ours.
        if (!std::getenv("OPENBLAS_NUM_THREADS"))
            group["OPENBLAS_NUM_THREADS"] = threads;
        auto environment = environmentWith(group);
        auto envp = pointers(environment);
        SpawnSetup setup;
        const auto log = logOf(rank).string();
        if (!log.empty()) {
            posix_spawn_file_actions_addopen(&setup.actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            posix_spawn_file_actions_adddup2(&setup.actions, STDOUT_FILENO, STDERR_FILENO);
        }
        pid_t pid = 0;
        const int failed = ::posix_spawn(&pid, plan.program.c_str(), &setup.actions, &setup.attributes, argv.data(),
                                         envp.data());
        if (failed != 0) {
            finish(std::chrono::milliseconds(0));
            throw Error("cannot start worker " + std::to_string(rank) + " (" + plan.program + "): " + std::strerror(failed));
        }
        m_workers.push_back({pid, rank});
    }
}

LocalWorkers::~LocalWorkers()
{
    finish(std::chrono::milliseconds(0));
}

std::vector<WorkerExit> LocalWorkers::collect()
{
    std::vector<WorkerExit> ended;
    for (auto worker = m_workers.begin(); worker != m_workers.end();) {
        int status = 0;
        pid_t pid = 0;
        do {
            pid = ::waitpid(worker->pid, &status, WNOHANG);
        } while (pid < 0 && errno == EINTR);
        if (pid == 0) {
            ++worker;
            continue;
        }
        // pid < 0: someone else reaped it (ECHILD); nothing is known of how it ended.
        ended.push_back({worker->rank, pid > 0 ? status : 0});
        worker = m_workers.erase(worker);
    }
    return ended;
}

std::vector<pid_t> LocalWorkers::pids() const
{
    std::vector<pid_t> result;
    for (const auto& worker : m_workers)
        result.push_back(worker.pid);
    return result;
}

void LocalWorkers::signalAll(int signal) const
{
    for (const auto& worker : m_workers)
        ::kill(worker.pid, signal);
}

std::vector<WorkerExit> LocalWorkers::finish(std::chrono::milliseconds grace)
{
    std::vector<WorkerExit> ended = collect();
    auto deadline = Clock::now() + grace;
    bool terminated = false, killed = false;
    while (!m_workers.empty()) {
        if (Clock::now() >= deadline) {
            if (killed)
                break; // unkillable (stopped in the kernel): leave it rather than hang
            signalAll(terminated ? SIGKILL : SIGTERM);
            killed = terminated;
            terminated = true;
            deadline = Clock::now() + kTerminationGrace;
        }
        std::this_thread::sleep_for(kPollInterval);
        const auto more = collect();
        ended.insert(ended.end(), more.begin(), more.end());
    }
    return ended;
}

std::filesystem::path LocalWorkers::logOf(int rank) const
{
    if (m_plan.logDirectory.empty())
        return {};
    return m_plan.logDirectory / ("rank-" + std::to_string(rank) + ".log");
}

std::string LocalWorkers::lastLogLine(int rank) const
{
    std::ifstream file(logOf(rank), std::ios::binary);
    if (!file)
        return {};
    file.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(file.tellg());
    const std::streamoff tail = std::min<std::streamoff>(size, 4096);
    file.seekg(size - tail);
    std::string text(static_cast<std::size_t>(tail), '\0');
    file.read(text.data(), tail);
    // Progress lines end in '\r': the last thing said is after the last line break of either kind.
    std::replace(text.begin(), text.end(), '\r', '\n');
    std::string last;
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string::npos)
            end = text.size();
        auto line = text.substr(start, end - start);
        line.erase(0, line.find_first_not_of(" \t"));
        line.erase(line.find_last_not_of(" \t") + 1);
        if (!line.empty())
            last = line;
        start = end + 1;
    }
    return last;
}

std::string ownExecutable()
{
    char path[4096];
    const auto length = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (length <= 0)
        throw Error("cannot find this program's own file (/proc/self/exe) to start the workers");
    return std::string(path, static_cast<std::size_t>(length));
}

} // namespace vitlab
