#pragma once

// Training processes that this process starts on this machine, with torchrun's environment
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT on loopback), so that
// they join a group exactly as under torchrun. `vitlab-cli train --nproc` starts every rank and
// waits; the app is rank 0 itself and starts the others beside its training thread. Only the
// workers' own pids are waited for: the app has other children (a QProcess, say) of its own.
// POSIX, free of torch.
#include <chrono>
#include <filesystem>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vitlab {

struct LocalGroupPlan {
    /// The program each worker runs, and its argv (argv[0] included).
    std::string program;
    std::vector<std::string> arguments;
    /// The group's size; ranks [firstRank, processes) are started here (0: all of them; 1: rank 0
    /// is the caller).
    int processes = 2;
    int firstRank = 0;
    /// The rendezvous port on 127.0.0.1 that rank 0 hosts.
    int port = 0;
    /// Intra-op threads of each worker (VITLAB_THREADS, and OpenBLAS's unless the user set it).
    int threadsPerProcess = 1;
    /// Who started them, for their messages (VITLAB_LAUNCHER).
    std::string launcher = "vitlab";
    /// Empty: the workers write to this process's stdout and stderr. Else a folder that receives
    /// each worker's output as rank-N.log.
    std::filesystem::path logDirectory;
};

struct WorkerExit {
    int rank = 0;
    /// waitpid's status.
    int status = 0;
    bool succeeded() const;
    /// What the launcher exits with for it: the worker's status, or 128 + signal.
    int exitCode() const;
    /// "exited with status 1", "was killed by signal 9 (Killed)".
    std::string describe() const;
};

class LocalWorkers {
public:
    /// Starts the workers; throws Error (after ending those already started) when one cannot start.
    explicit LocalWorkers(const LocalGroupPlan& plan);
    /// Ends the workers still running: SIGTERM, then SIGKILL after a few seconds.
    ~LocalWorkers();
    LocalWorkers(const LocalWorkers&) = delete;
    LocalWorkers& operator=(const LocalWorkers&) = delete;

    /// The workers that ended since the last call, without waiting.
    std::vector<WorkerExit> collect();
    /// How many are still running (as of the last collect).
    std::size_t running() const { return m_workers.size(); }
    std::vector<pid_t> pids() const;
    void signalAll(int signal) const;
    /// Waits up to `grace` for the running workers to end on their own, then ends them (SIGTERM,
    /// SIGKILL a few seconds later); returns how each ended.
    std::vector<WorkerExit> finish(std::chrono::milliseconds grace);

    /// rank-N.log in the plan's log folder (empty without one).
    std::filesystem::path logOf(int rank) const;
    /// The last line a worker wrote to its log that says something: its error, mostly.
    std::string lastLogLine(int rank) const;

private:
    struct Worker {
        pid_t pid;
        int rank;
    };
    LocalGroupPlan m_plan;
    std::vector<Worker> m_workers;
};

/// This program's own file (/proc/self/exe); throws Error when it cannot be read.
std::string ownExecutable();

} // namespace vitlab
