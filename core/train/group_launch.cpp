#include "core/train/group_launch.h"

#include "core/errors.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace vitlab {

namespace {

int parseInteger(const std::string& name, const std::string& text, int minimum)
{
    std::size_t used = 0;
    int value = 0;
    try {
        value = std::stoi(text, &used);
    } catch (const std::logic_error&) {
        used = 0;
    }
    if (used == 0 || used != text.size() || value < minimum)
        throw ConfigError(name + "=" + text + " is not a whole number of at least " + std::to_string(minimum));
    return value;
}

class Variables {
public:
    explicit Variables(const EnvironmentLookup& lookup)
        : m_lookup(lookup)
    {
    }
    bool has(const std::string& name) const { return m_lookup(name).has_value(); }
    std::optional<std::string> text(const std::string& name) const { return m_lookup(name); }
    int integer(const std::string& name, int minimum) const { return parseInteger(name, *m_lookup(name), minimum); }
    int integerOr(const std::string& name, int fallback, int minimum) const
    {
        return has(name) ? integer(name, minimum) : fallback;
    }

private:
    const EnvironmentLookup& m_lookup;
};

/// MASTER_ADDR and MASTER_PORT where set, else the launcher's defaults.
void readMaster(const Variables& env, GroupLaunch& group, const std::optional<std::string>& defaultAddress,
                std::optional<int> defaultPort)
{
    if (const auto address = env.text("MASTER_ADDR"); address && !address->empty())
        group.masterAddress = *address;
    else if (defaultAddress)
        group.masterAddress = *defaultAddress;
    else
        throw ConfigError(group.launcher + " started " + std::to_string(group.worldSize)
                          + " processes but MASTER_ADDR is not set: export the address of rank 0's host");
    if (env.has("MASTER_PORT"))
        group.masterPort = env.integer("MASTER_PORT", 1);
    else if (defaultPort)
        group.masterPort = *defaultPort;
    else
        throw ConfigError(group.launcher + " started " + std::to_string(group.worldSize)
                          + " processes but MASTER_PORT is not set");
    if (group.masterPort > 65535)
        throw ConfigError("MASTER_PORT=" + std::to_string(group.masterPort) + " is not a TCP port");
}

void checkRanks(const GroupLaunch& group)
{
    if (group.rank >= group.worldSize)
        throw ConfigError(group.launcher + " gave rank " + std::to_string(group.rank) + " in a group of "
                          + std::to_string(group.worldSize));
    if (group.localRank >= group.localWorldSize || group.localWorldSize > group.worldSize)
        throw ConfigError(group.launcher + " gave local rank " + std::to_string(group.localRank) + " of "
                          + std::to_string(group.localWorldSize) + " in a group of " + std::to_string(group.worldSize));
}

/// The tasks on this node from SLURM_NTASKS_PER_NODE or SLURM_TASKS_PER_NODE ("4(x2),3": this
/// node's count is not told, so the first is taken only when all nodes agree).
std::optional<int> slurmTasksPerNode(const Variables& env)
{
    for (const char* name : {"SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"}) {
        const auto text = env.text(name);
        if (!text || text->empty())
            continue;
        const auto end = text->find_first_of("(,");
        const bool uniform = end == std::string::npos || ((*text)[end] == '(' && text->find(',') == std::string::npos);
        if (uniform)
            return parseInteger(name, text->substr(0, end), 1);
    }
    return std::nullopt;
}

} // namespace

EnvironmentLookup processEnvironment()
{
    return [](const std::string& name) -> std::optional<std::string> {
        if (const char* value = std::getenv(name.c_str()))
            return std::string(value);
        return std::nullopt;
    };
}

int freeLoopbackPort()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        throw Error(std::string("cannot open a socket for the group's rendezvous: ") + std::strerror(errno));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0; // the kernel picks
    socklen_t length = sizeof address;
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0
        && ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    ::close(fd);
    if (!bound)
        throw Error(std::string("cannot find a free port for the group's rendezvous: ") + std::strerror(errno));
    return ntohs(address.sin_port);
}

std::string firstSlurmHost(const std::string& nodeList)
{
    const auto comma = nodeList.find(',');
    const auto bracket = nodeList.find('[');
    if (bracket == std::string::npos || (comma != std::string::npos && comma < bracket))
        return nodeList.substr(0, comma);
    // "prefix[03-05,9]": the first number of the range keeps its zero padding.
    const auto end = nodeList.find_first_of("-,]", bracket + 1);
    if (end == std::string::npos)
        throw ConfigError("the Slurm node list \"" + nodeList + "\" is malformed");
    return nodeList.substr(0, bracket) + nodeList.substr(bracket + 1, end - bracket - 1);
}

std::optional<GroupLaunch> groupLaunchFromEnvironment(const EnvironmentLookup& lookup)
{
    const Variables env(lookup);
    GroupLaunch group;
    if (env.has("RANK") && env.has("WORLD_SIZE")) {
        group.launcher = env.text("TORCHELASTIC_RUN_ID") ? "torchrun" : "a launcher (RANK, WORLD_SIZE)";
        if (env.text("VITLAB_LAUNCHER"))
            group.launcher = *env.text("VITLAB_LAUNCHER");
        group.worldSize = env.integer("WORLD_SIZE", 1);
        group.rank = env.integer("RANK", 0);
        group.localRank = env.integerOr("LOCAL_RANK", group.rank, 0);
        group.localWorldSize = env.integerOr("LOCAL_WORLD_SIZE", group.worldSize, 1);
        group.useAgentStore = env.text("TORCHELASTIC_USE_AGENT_STORE") == std::optional<std::string>("True");
        group.restartCount = env.integerOr("TORCHELASTIC_RESTART_COUNT", 0, 0);
        if (group.worldSize > 1)
            readMaster(env, group, std::nullopt, std::nullopt);
    } else if (env.has("SLURM_PROCID") && env.has("SLURM_NTASKS")) {
        group.launcher = "slurm";
        group.worldSize = env.integer("SLURM_NTASKS", 1);
        group.rank = env.integer("SLURM_PROCID", 0);
        group.localRank = env.integerOr("SLURM_LOCALID", 0, 0);
        group.localWorldSize = slurmTasksPerNode(env).value_or(group.worldSize);
        if (group.worldSize > 1) {
            std::optional<std::string> firstNode;
            for (const char* name : {"SLURM_JOB_NODELIST", "SLURM_NODELIST"}) {
                if (const auto list = env.text(name); list && !list->empty()) {
                    firstNode = firstSlurmHost(*list);
                    break;
                }
            }
            // Every task of the job derives the same port from the job id, away from torchrun's 29500.
            std::optional<int> port;
            if (env.has("SLURM_JOB_ID"))
                port = 20000 + env.integer("SLURM_JOB_ID", 0) % 10000;
            readMaster(env, group, firstNode, port);
        }
    } else if (env.has("OMPI_COMM_WORLD_RANK") && env.has("OMPI_COMM_WORLD_SIZE")) {
        group.launcher = "openmpi";
        group.worldSize = env.integer("OMPI_COMM_WORLD_SIZE", 1);
        group.rank = env.integer("OMPI_COMM_WORLD_RANK", 0);
        group.localRank = env.integerOr("OMPI_COMM_WORLD_LOCAL_RANK", 0, 0);
        group.localWorldSize = env.integerOr("OMPI_COMM_WORLD_LOCAL_SIZE", group.worldSize, 1);
        if (group.worldSize > 1) {
            // On one node the master is this host; across nodes mpirun -x MASTER_ADDR must say.
            const bool oneNode = group.localWorldSize == group.worldSize;
            readMaster(env, group, oneNode ? std::optional<std::string>("127.0.0.1") : std::nullopt, 29500);
        }
    } else {
        return std::nullopt;
    }
    checkRanks(group);
    return group;
}

} // namespace vitlab
