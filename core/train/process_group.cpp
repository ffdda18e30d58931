#include "core/train/process_group.h"

// Gloo (CPU tensors) needs Gloo's headers; NCCL (CUDA tensors) a LibTorch with CUDA and nccl.h.
#if defined(VITLAB_HAVE_GLOO) || defined(VITLAB_HAVE_NCCL)
#define VITLAB_HAVE_C10D 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef VITLAB_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef VITLAB_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

namespace vitlab {

#ifdef VITLAB_HAVE_C10D

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kHeartbeatInterval = std::chrono::milliseconds(500);
/// How long a heartbeat must stand still before its rank counts as stopped.
constexpr auto kHeartbeatSilence = std::chrono::milliseconds(2500);
/// The count of ranks that reached the rendezvous, and how often a rank looks at it.
const std::string kArrivedKey = "vitlab/arrived";
constexpr auto kArrivalPoll = std::chrono::milliseconds(50);

std::string firstLine(std::string text)
{
    if (const auto end = text.find('\n'); end != std::string::npos)
        text.resize(end);
    return text;
}

bool isLoopback(const std::string& address)
{
    return address == "localhost" || address.rfind("127.", 0) == 0 || address == "::1";
}

std::string heartbeatKey(int rank)
{
    return "vitlab/alive/" + std::to_string(rank);
}

std::vector<std::uint8_t> bytesOf(const std::string& text)
{
    return {text.begin(), text.end()};
}

std::string seconds(std::chrono::milliseconds duration)
{
    const auto value = static_cast<double>(duration.count()) / 1000.0;
    char text[32];
    std::snprintf(text, sizeof text, "%g s", value);
    return text;
}

} // namespace

struct TrainingGroup::State {
    GroupLaunch launch;
    std::chrono::milliseconds timeout{0};
    /// Where the collectives' tensors live: the CPU (Gloo) or this rank's GPU (NCCL).
    torch::Device device = torch::kCPU;
    c10::intrusive_ptr<c10d::Store> store;
#ifdef VITLAB_HAVE_GLOO
    c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef VITLAB_HAVE_NCCL
    c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif

    /// `call(backend)` on the group's backend: the collectives share their spelling.
    template <typename Call>
    auto onBackend(Call&& call)
    {
#ifdef VITLAB_HAVE_NCCL
        if (nccl)
            return call(*nccl);
#endif
#ifdef VITLAB_HAVE_GLOO
        return call(*gloo);
#else
        return call(*nccl);
#endif
    }

    /// A connection of its own: the store's client is not shared between threads.
    c10::intrusive_ptr<c10d::Store> heartbeatStore;
    mutable std::mutex heartbeatMutex;
    std::condition_variable heartbeatWake;
    bool stopping = false;
    std::thread heartbeat;
    std::atomic<std::int64_t> step{0};
    std::atomic<std::int64_t> waitNanoseconds{0};

    c10::intrusive_ptr<c10d::Store> connect(std::chrono::milliseconds connectTimeout, bool mayServe) const
    {
        c10d::TCPStoreOptions options;
        options.port = static_cast<std::uint16_t>(launch.masterPort);
        options.isServer = mayServe && !launch.useAgentStore && launch.rank == 0;
        options.timeout = connectTimeout;
        // The others' arrival is counted afterwards (awaitArrivals), where waiting can be abandoned.
        options.waitWorkers = false;
        c10::intrusive_ptr<c10d::Store> tcp = c10::make_intrusive<c10d::TCPStore>(launch.masterAddress, options);
        if (launch.useAgentStore) // torchrun's workers share the agent's store under the restart's prefix
            return c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(launch.restartCount), tcp);
        return tcp;
    }

    /// Every rank counts itself in, then waits until all have: bounded by the timeout, and given
    /// up as soon as `abandon` gives a reason (the app's worker died, the user pressed Stop).
    void awaitArrivals(const std::function<std::string()>& abandon) const
    {
        const auto deadline = Clock::now() + timeout;
        const bool hosts = launch.rank == 0 && !launch.useAgentStore;
        const auto where = launch.masterAddress + ":" + std::to_string(launch.masterPort);
        std::int64_t arrived = 0;
        try {
            store->add(kArrivedKey, 1);
            while ((arrived = store->add(kArrivedKey, 0)) < launch.worldSize) {
                if (abandon) {
                    if (auto reason = abandon(); !reason.empty())
                        throw GroupError(reason);
                }
                if (Clock::now() >= deadline)
                    break;
                std::this_thread::sleep_for(kArrivalPoll);
            }
        } catch (const GroupError&) {
            throw;
        } catch (const std::exception& error) {
            throw GroupError(hosts ? "rank 0 lost the group's store while it formed: " + firstLine(error.what())
                                   : "rank " + std::to_string(launch.rank) + " lost the rendezvous at " + where
                                         + " while the group formed (rank 0 stopped?): " + firstLine(error.what()));
        }
        if (arrived >= launch.worldSize)
            return;
        const auto came = std::to_string(arrived) + " of " + std::to_string(launch.worldSize) + " processes came";
        throw GroupError(hosts ? "rank 0 could not form the group at " + where + " within " + seconds(timeout) + ": "
                                     + came + " (did all of them start, and is the port free?)"
                               : "rank " + std::to_string(launch.rank) + " could not form the group at " + where
                                     + " within " + seconds(timeout) + ": " + came
                                     + " (did all of them start, with the same MASTER_ADDR and MASTER_PORT?)");
    }

    void beat()
    {
        std::unique_lock<std::mutex> lock(heartbeatMutex);
        for (std::int64_t count = 0; !stopping; ++count) {
            try {
                heartbeatStore->set(heartbeatKey(launch.rank),
                                    bytesOf(std::to_string(count) + " " + std::to_string(step.load())));
            } catch (const std::exception&) {
                return; // the store is gone: a failing collective will tell why
            }
            heartbeatWake.wait_for(lock, kHeartbeatInterval, [this] { return stopping; });
        }
    }

    /// Every other rank's heartbeat value, or nullopt when the store cannot be reached.
    std::optional<std::map<int, std::string>> heartbeats() const
    {
        std::lock_guard<std::mutex> lock(heartbeatMutex);
        std::map<int, std::string> values;
        try {
            for (int rank = 0; rank < launch.worldSize; ++rank) {
                if (rank == launch.rank || !heartbeatStore->check({heartbeatKey(rank)}))
                    continue;
                const auto bytes = heartbeatStore->get(heartbeatKey(rank));
                values[rank] = std::string(bytes.begin(), bytes.end());
            }
        } catch (const std::exception&) {
            return std::nullopt;
        }
        return values;
    }
};

TrainingGroup::TrainingGroup(std::unique_ptr<State> state)
    : m(std::move(state))
{
}

TrainingGroup::~TrainingGroup()
{
    {
        std::lock_guard<std::mutex> lock(m->heartbeatMutex);
        m->stopping = true;
    }
    m->heartbeatWake.notify_all();
    if (m->heartbeat.joinable())
        m->heartbeat.join();
}

std::unique_ptr<TrainingGroup> TrainingGroup::join(const GroupLaunch& launch, std::chrono::milliseconds timeout,
                                                   torch::Device device, const std::function<std::string()>& abandon)
{
#ifndef VITLAB_HAVE_NCCL
    if (device.is_cuda())
        throw ConfigError("this build of ViTLab has no NCCL (a LibTorch with CUDA and nccl.h): a group trains on CPUs "
                          "here; use --device cpu");
#endif
#ifndef VITLAB_HAVE_GLOO
    if (!device.is_cuda())
        throw ConfigError("this build of ViTLab has no Gloo (libgloo-dev was missing when it was built): a group "
                          "trains on GPUs only here");
#endif
    if (!device.is_cpu() && !device.is_cuda())
        throw ConfigError("a group trains on CPUs (Gloo) or CUDA GPUs (NCCL), not on " + device.str());
    auto state = std::make_unique<State>();
    state->launch = launch;
    state->timeout = timeout;
    state->device = device;
    const auto where = launch.masterAddress + ":" + std::to_string(launch.masterPort);
    try {
        state->store = state->connect(timeout, /*mayServe=*/true);
    } catch (const std::exception& error) {
        const bool hosts = launch.rank == 0 && !launch.useAgentStore;
        throw GroupError(
            hosts ? "rank 0 could not form the group at " + where + " within " + seconds(timeout)
                        + " (is the port free, and did all " + std::to_string(launch.worldSize)
                        + " processes start?): " + firstLine(error.what())
                  : "rank " + std::to_string(launch.rank) + " could not reach the rendezvous at " + where + " within "
                        + seconds(timeout) + " (is rank 0 running, and are MASTER_ADDR and MASTER_PORT right?): "
                        + firstLine(error.what()));
    }
    state->awaitArrivals(abandon);
    try {
        // The backend's own keys apart from ours.
        auto backendStore = c10::make_intrusive<c10d::PrefixStore>("vitlab/backend", state->store);
#ifdef VITLAB_HAVE_NCCL
        if (device.is_cuda()) {
            c10::cuda::set_device(device.index());
            auto options = c10d::ProcessGroupNCCL::Options::create();
            options->timeout = timeout;
            state->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(backendStore, launch.rank, launch.worldSize, options);
        }
#endif
#ifdef VITLAB_HAVE_GLOO
        if (!device.is_cuda()) {
            auto options = c10d::ProcessGroupGloo::Options::create(timeout);
            if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface && *interface)
                options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
            else if (isLoopback(launch.masterAddress))
                options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
            else
                options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
            state->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(backendStore, launch.rank, launch.worldSize, options);
        }
#endif
        state->heartbeatStore = state->connect(std::min<std::chrono::milliseconds>(timeout, std::chrono::seconds(10)),
                                               /*mayServe=*/false);
    } catch (const std::exception& error) {
        throw GroupError("rank " + std::to_string(launch.rank) + " could not form the group with the other "
                         + std::to_string(launch.worldSize - 1) + " processes at " + where + " within " + seconds(timeout)
                         + " (did all of them start, with the same MASTER_ADDR and MASTER_PORT?): "
                         + firstLine(error.what()));
    }
    auto* raw = state.get();
    state->heartbeat = std::thread([raw] { raw->beat(); });
    return std::unique_ptr<TrainingGroup>(new TrainingGroup(std::move(state)));
}

int TrainingGroup::rank() const
{
    return m->launch.rank;
}

int TrainingGroup::size() const
{
    return m->launch.worldSize;
}

const GroupLaunch& TrainingGroup::launch() const
{
    return m->launch;
}

torch::Device TrainingGroup::device() const
{
    return m->device;
}

std::chrono::milliseconds TrainingGroup::timeout() const
{
    return m->timeout;
}

void TrainingGroup::setProgress(std::int64_t step)
{
    m->step = step;
}

double TrainingGroup::takeWaitSeconds()
{
    return static_cast<double>(m->waitNanoseconds.exchange(0)) * 1e-9;
}

void TrainingGroup::fail(const std::exception& error) const
{
    const auto what = firstLine(error.what());
    const auto first = m->heartbeats();
    std::this_thread::sleep_for(kHeartbeatSilence);
    const auto second = first ? m->heartbeats() : std::nullopt;
    if (!first || !second) {
        if (m->launch.useAgentStore)
            throw GroupError("rank " + std::to_string(m->launch.rank) + " lost torchrun's store at "
                             + m->launch.masterAddress + ":" + std::to_string(m->launch.masterPort) + ": " + what);
        throw GroupError("rank 0 stopped: the group's store, which it hosts, is gone (" + what + ")");
    }
    std::string stopped;
    for (int rank = 0; rank < m->launch.worldSize; ++rank) {
        if (rank == m->launch.rank)
            continue;
        const auto before = first->find(rank);
        const auto after = second->find(rank);
        if (after != second->end() && before != first->end() && before->second != after->second)
            continue; // still beating
        std::string at;
        if (after != second->end()) {
            const auto space = after->second.find(' ');
            at = " at step " + after->second.substr(space + 1);
        }
        stopped += (stopped.empty() ? "" : ", ") + ("rank " + std::to_string(rank) + at);
    }
    if (!stopped.empty())
        throw GroupError(stopped + " stopped (its process died or hangs); rank " + std::to_string(m->launch.rank)
                         + " gives up: " + what);
    throw GroupError("a collective failed or took longer than the group's timeout of " + seconds(m->timeout)
                     + " while every rank is alive: " + what);
}

namespace {

template <typename Work>
void waitTimed(const Work& work, std::atomic<std::int64_t>& waited)
{
    const auto start = Clock::now();
    work->wait();
    waited += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

} // namespace

void TrainingGroup::Pending::wait()
{
    if (!m_wait)
        return;
    auto wait = std::move(m_wait);
    m_wait = nullptr;
    wait();
}

TrainingGroup::Pending TrainingGroup::allreduceSumAsync(torch::Tensor tensor)
{
    std::vector<at::Tensor> tensors{std::move(tensor)};
    Pending pending;
    try {
        auto work = m->onBackend([&](auto& backend) { return backend.allreduce(tensors); });
        pending.m_wait = [this, work] {
            try {
                waitTimed(work, m->waitNanoseconds);
            } catch (const std::exception& error) {
                fail(error);
            }
        };
    } catch (const std::exception& error) {
        fail(error);
    }
    return pending;
}

void TrainingGroup::allreduceSum(torch::Tensor& tensor)
{
    // The backend's device (NCCL's GPU) and back: the small exchanges start on the CPU.
    auto onDevice = tensor.to(m->device);
    allreduceSumAsync(onDevice).wait();
    if (!onDevice.is_same(tensor))
        tensor.copy_(onDevice);
}

void TrainingGroup::broadcast(torch::Tensor& tensor)
{
    std::vector<at::Tensor> tensors{tensor.to(m->device)};
    try {
        c10d::BroadcastOptions options;
        options.rootRank = 0;
        waitTimed(m->onBackend([&](auto& backend) { return backend.broadcast(tensors, options); }), m->waitNanoseconds);
    } catch (const std::exception& error) {
        fail(error);
    }
    if (!tensors[0].is_same(tensor))
        tensor.copy_(tensors[0]);
}

torch::Tensor TrainingGroup::allgather(const torch::Tensor& tensor)
{
    std::vector<at::Tensor> inputs{tensor.to(m->device).contiguous()};
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int rank = 0; rank < size(); ++rank)
        outputs[0].push_back(torch::empty_like(inputs[0]));
    try {
        waitTimed(m->onBackend([&](auto& backend) { return backend.allgather(outputs, inputs); }), m->waitNanoseconds);
    } catch (const std::exception& error) {
        fail(error);
    }
    return torch::stack(outputs[0]).to(tensor.device());
}

std::string TrainingGroup::broadcastText(const std::string& text)
{
    auto length = torch::tensor({static_cast<std::int64_t>(text.size())}, torch::kInt64);
    broadcast(length);
    auto bytes = torch::zeros({length.item<std::int64_t>()}, torch::kUInt8);
    if (leads())
        std::memcpy(bytes.data_ptr<std::uint8_t>(), text.data(), text.size());
    if (bytes.numel() > 0)
        broadcast(bytes);
    const auto* data = reinterpret_cast<const char*>(bytes.data_ptr<std::uint8_t>());
    return std::string(data, data + bytes.numel());
}


#else // neither Gloo's headers nor NCCL at build time: no group can form, and no TrainingGroup exists

struct TrainingGroup::State {
    GroupLaunch launch;
};

TrainingGroup::TrainingGroup(std::unique_ptr<State> state) : m(std::move(state)) {}
TrainingGroup::~TrainingGroup() = default;

std::unique_ptr<TrainingGroup> TrainingGroup::join(const GroupLaunch& launch, std::chrono::milliseconds, torch::Device,
                                                   const std::function<std::string()>&)
{
    throw ConfigError("this build of ViTLab has neither Gloo (libgloo-dev) nor NCCL: it cannot train in a group of "
                      + std::to_string(launch.worldSize) + " processes");
}

namespace {
[[noreturn]] void noGroup()
{
    throw std::logic_error("no TrainingGroup exists in a build without Gloo");
}
} // namespace

int TrainingGroup::rank() const { return m->launch.rank; }
int TrainingGroup::size() const { return m->launch.worldSize; }
const GroupLaunch& TrainingGroup::launch() const { return m->launch; }
torch::Device TrainingGroup::device() const { noGroup(); }
std::chrono::milliseconds TrainingGroup::timeout() const { noGroup(); }
void TrainingGroup::setProgress(std::int64_t) { noGroup(); }
double TrainingGroup::takeWaitSeconds() { noGroup(); }
void TrainingGroup::fail(const std::exception&) const { noGroup(); }
void TrainingGroup::Pending::wait() {}
TrainingGroup::Pending TrainingGroup::allreduceSumAsync(torch::Tensor) { noGroup(); }
void TrainingGroup::allreduceSum(torch::Tensor&) { noGroup(); }
void TrainingGroup::broadcast(torch::Tensor&) { noGroup(); }
torch::Tensor TrainingGroup::allgather(const torch::Tensor&) { noGroup(); }
std::string TrainingGroup::broadcastText(const std::string&) { noGroup(); }

#endif

} // namespace vitlab
