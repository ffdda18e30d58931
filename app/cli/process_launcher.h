#pragma once

// `vitlab-cli train --nproc N`: starts N copies of this program on this machine as one training
// group, with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT on a free loopback port), so that the workers join exactly as under torchrun.
// The intra-op threads split the cores. When a worker fails, the others are given the group's
// timeout to stop on their own (each names the rank at fault), then ended.
#include <string>
#include <vector>

namespace vitlab::cli {

struct LaunchPlan {
    int processes = 2;
    /// The workers' command line: this program's arguments without --nproc.
    std::vector<std::string> arguments;
    /// Intra-op threads per worker; 0 splits the usable cores evenly.
    int threadsPerProcess = 0;
    /// How long the others may take to stop after one failed.
    double graceSeconds = 30.0;
};

/// Keeps this program's command line for the workers' (main calls it first).
void rememberCommandLine(int argc, char** argv);
/// The remembered command line without `option` and its value ("--nproc N" or "--nproc=N").
std::vector<std::string> commandLineWithout(const std::string& option);

/// The intra-op threads of a worker that a launcher (torchrun, Slurm, MPI) started with others on
/// this machine: the usable cores split by the local group; 0 (the runtime's default) outside a
/// group or when VITLAB_THREADS says.
int threadsForGroupMember();

/// Runs the group and waits for it; returns the exit status for the launcher: 0 when every worker
/// succeeded, else the first failure's (128 + signal for a worker killed by a signal).
int launchLocalGroup(const LaunchPlan& plan);

} // namespace vitlab::cli
