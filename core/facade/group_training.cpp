#include "core/facade/engine.h"

#include "core/errors.h"
#include "core/io/atomic_file.h"
#include "core/train/group_launch.h"
#include "core/train/local_workers.h"
#include "core/train/run_folder.h"

#include <ATen/Parallel.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>

namespace vitlab::facade {

namespace {

/// What a worker of a group that stopped on request exits with (vitlab-cli train's 130).
constexpr int kStoppedExitCode = 130;
/// How long the workers may take to end on their own once rank 0 is done.
constexpr auto kWorkerGrace = std::chrono::seconds(60);

/// `vitlab-cli`: VITLAB_CLI where set, else the one beside this program.
std::string workerProgram()
{
    if (const char* set = std::getenv("VITLAB_CLI"); set && *set)
        return set;
    const auto beside = std::filesystem::path(ownExecutable()).parent_path() / "vitlab-cli";
    std::error_code error;
    if (!std::filesystem::exists(beside, error))
        throw ConfigError("training in several processes needs vitlab-cli beside the app (" + beside.string()
                          + " is missing; VITLAB_CLI may name it)");
    return beside.string();
}

/// A folder of its own for the workers' configuration and logs, removed with it.
class ScratchFolder {
public:
    ScratchFolder()
    {
        static std::atomic<int> counter{0};
        m_path = std::filesystem::temp_directory_path()
            / ("vitlab-group-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        std::error_code error;
        std::filesystem::remove_all(m_path, error);
        std::filesystem::create_directories(m_path, error);
        if (error)
            throw IoError("cannot make the folder " + m_path.string() + " for the worker processes: " + error.message());
    }
    ~ScratchFolder()
    {
        std::error_code error;
        std::filesystem::remove_all(m_path, error);
    }
    ScratchFolder(const ScratchFolder&) = delete;
    ScratchFolder& operator=(const ScratchFolder&) = delete;
    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
};

/// " (its last words: ...)" from a worker's log, or nothing.
std::string lastWords(const LocalWorkers& workers, int rank)
{
    const auto line = workers.lastLogLine(rank);
    return line.empty() ? std::string() : ": " + line;
}

/// Rank 0's intra-op threads for the run, the previous count restored after it.
class ThreadShare {
public:
    explicit ThreadShare(int threads)
        : m_previous(at::get_num_threads())
    {
        at::set_num_threads(threads);
    }
    ~ThreadShare() { at::set_num_threads(m_previous); }
    ThreadShare(const ThreadShare&) = delete;
    ThreadShare& operator=(const ThreadShare&) = delete;

private:
    int m_previous;
};

/// Runs `run(group)` as rank 0 of `processes`, the other ranks `vitlab-cli train` started with
/// `workerArguments` (after the program and "train").
template <typename Run>
RunFinished asRankZero(int processes, const std::vector<std::string>& workerArguments, const ScratchFolder& scratch,
                       const TrainCallbacks& callbacks, Run&& run)
{
    // The cores are shared out on a GPU too: each process feeds its own GPU.
    const int threads = std::max(1, usableCoreCount() / processes);
    LocalGroupPlan plan;
    plan.program = workerProgram();
    plan.arguments = {plan.program, "train"};
    plan.arguments.insert(plan.arguments.end(), workerArguments.begin(), workerArguments.end());
    plan.processes = processes;
    plan.firstRank = 1;
    plan.port = freeLoopbackPort();
    plan.threadsPerProcess = threads;
    plan.launcher = "the app";
    plan.logDirectory = scratch.path();

    GroupOptions group;
    group.launch.launcher = plan.launcher;
    group.launch.worldSize = processes;
    group.launch.localWorldSize = processes;
    group.launch.masterAddress = "127.0.0.1";
    group.launch.masterPort = plan.port;

    LocalWorkers workers(plan);
    // A worker that ends before the group formed (a bad setting, a missing library) says why in its log.
    group.abandon = [&workers]() -> std::string {
        const auto ended = workers.collect();
        if (ended.empty())
            return {};
        const auto& first = ended.front();
        return "worker process rank " + std::to_string(first.rank) + " " + first.describe()
               + " before the group formed" + lastWords(workers, first.rank);
    };
    if (callbacks.onMessage)
        callbacks.onMessage("training in " + std::to_string(processes) + " processes (" + std::to_string(threads)
                            + " threads each): this one is rank 0");
    RunFinished finished;
    {
        ThreadShare share(threads);
        try {
            finished = run(group);
        } catch (const std::exception& error) {
            // The run broke off, and the workers cannot go on without rank 0: those that ended on
            // their own may say why; the rest are ended now.
            const auto ended = workers.collect();
            workers.finish(std::chrono::milliseconds(0));
            std::string why;
            for (const auto& exit : ended) {
                if (!exit.succeeded() && exit.exitCode() != kStoppedExitCode)
                    why += "; worker rank " + std::to_string(exit.rank) + " " + exit.describe() + lastWords(workers, exit.rank);
            }
            if (dynamic_cast<const GroupError*>(&error))
                throw GroupError(error.what() + why);
            throw;
        }
    }
    for (const auto& exit : workers.finish(kWorkerGrace)) {
        const bool stopped = finished.outcome == RunOutcome::Stopped && exit.exitCode() == kStoppedExitCode;
        if (!exit.succeeded() && !stopped && callbacks.onMessage)
            callbacks.onMessage("worker process rank " + std::to_string(exit.rank) + " " + exit.describe()
                                + lastWords(workers, exit.rank));
    }
    return finished;
}

std::vector<std::string> groupTimeoutArguments(double seconds)
{
    return {"--quiet", "--group-timeout", std::to_string(seconds)};
}

} // namespace

int maxLocalProcesses(const RuntimeInfo& machine)
{
    if (machine.cudaAvailable && !machine.cudaDevices.empty())
        return static_cast<int>(machine.cudaDevices.size());
    return std::max(1, machine.usableCores > 0 ? machine.usableCores : usableCoreCount());
}

RunFinished trainInProcesses(const TrainConfig& config, int processes, const TrainCallbacks& callbacks,
                             TrainControl& control)
{
    if (processes <= 1)
        return trainRun(config, callbacks, control);
    config.validate();
    ScratchFolder scratch;
    const auto configFile = scratch.path() / "train.json";
    writeFileAtomically(configFile, config.toJson().dump(2));
    const GroupOptions defaults;
    auto arguments = std::vector<std::string>{"--config", configFile.string()};
    for (auto& argument : groupTimeoutArguments(defaults.timeoutSeconds))
        arguments.push_back(std::move(argument));
    return asRankZero(processes, arguments, scratch, callbacks, [&](GroupOptions group) {
        return trainRun(config, callbacks, control, group);
    });
}

RunFinished resumeInProcesses(const std::filesystem::path& runDirectory, int processes, const TrainCallbacks& callbacks,
                              TrainControl& control)
{
    if (processes <= 1)
        return resumeRun(runDirectory, callbacks, control);
    const auto folder = RunFolder::open(runDirectory);
    const auto config = TrainConfig::fromJson(folder.readConfig().value("train", nlohmann::json::object()));
    ScratchFolder scratch;
    const GroupOptions defaults;
    auto arguments = std::vector<std::string>{"--resume", std::filesystem::absolute(runDirectory).string()};
    for (auto& argument : groupTimeoutArguments(defaults.timeoutSeconds))
        arguments.push_back(std::move(argument));
    return asRankZero(processes, arguments, scratch, callbacks, [&](GroupOptions group) {
        ResumeOptions options;
        options.group = std::move(group);
        return resumeRun(runDirectory, callbacks, control, options);
    });
}

} // namespace vitlab::facade
