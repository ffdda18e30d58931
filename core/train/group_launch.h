#pragma once

// Where this process stands in a group of training processes, as its launcher said: torchrun's
// environment, Slurm's, Open MPI's, or `vitlab-cli train --nproc`'s own (which is torchrun's).
// Free of torch: the CLI reads it before any engine call, and its tests need no LibTorch.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace vitlab {

struct GroupLaunch {
    /// Who set the group up: "torchrun", "slurm", "openmpi" (or "vitlab" for --nproc's workers).
    std::string launcher;
    int rank = 0;
    int worldSize = 1;
    int localRank = 0;
    int localWorldSize = 1;
    /// The rendezvous: the TCPStore that rank 0 hosts (or torchrun's agent hosts).
    std::string masterAddress = "127.0.0.1";
    int masterPort = 29500;
    /// torchrun's agent already hosts the store: every rank is its client, under the restart's prefix.
    bool useAgentStore = false;
    int restartCount = 0;

    bool distributed() const { return worldSize > 1; }
};

/// Reads one environment variable; nullopt when it is not set.
using EnvironmentLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvironmentLookup processEnvironment();

/// The group this process was launched into, or nullopt when no launcher set one up (a plain,
/// single process). torchrun's variables (RANK, WORLD_SIZE) come first, then Slurm's (SLURM_PROCID,
/// SLURM_NTASKS) and Open MPI's (OMPI_COMM_WORLD_*). The master is MASTER_ADDR and MASTER_PORT where
/// set; under Slurm it defaults to the first node of the job and a port derived from its job id, and
/// under Open MPI on one node to 127.0.0.1. Throws ConfigError for a malformed or inconsistent value.
std::optional<GroupLaunch> groupLaunchFromEnvironment(const EnvironmentLookup& lookup);

/// A TCP port free on 127.0.0.1 now, for a group of this machine's own (--nproc, tests). Throws
/// Error when no socket can be opened.
int freeLoopbackPort();

/// The first host of a Slurm node list: "gpu[03-05,9],cpu1" gives "gpu03".
std::string firstSlurmHost(const std::string& nodeList);

} // namespace vitlab
