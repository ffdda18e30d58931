#pragma once

// A group of training processes on PyTorch's own c10d: a TCPStore for the rendezvous, and Gloo's
// collectives on CPUs or NCCL's on CUDA GPUs. Every collective is bounded by the group's timeout; one that fails
// (a peer died, hung, or never came) is reported as a GroupError that names the rank at fault,
// found from the heartbeats every member posts to the store.
#include "core/errors.h"
#include "core/train/group_launch.h"

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vitlab {

class TrainingGroup {
public:
    /// A collective in flight.
    class Pending {
    public:
        Pending() = default;
        /// Blocks until done; throws GroupError when it failed or timed out.
        void wait();

    private:
        friend class TrainingGroup;
        std::function<void()> m_wait;
    };

    /// Joins the group `launch` describes: the store (rank 0 hosts it, unless torchrun's agent
    /// does), then Gloo for a CPU `device` or NCCL for a CUDA one (this rank's GPU). Throws
    /// GroupError when the group does not form within `timeout`, saying what is missing (the
    /// rendezvous unreachable, peers that did not come), ConfigError when this build lacks the backend.
    /// While the others are awaited, `abandon` is asked every few milliseconds whether to give up:
    /// a reason ends the wait with a GroupError that says it.
    static std::unique_ptr<TrainingGroup> join(const GroupLaunch& launch, std::chrono::milliseconds timeout,
                                               torch::Device device = torch::kCPU,
                                               const std::function<std::string()>& abandon = {});
    ~TrainingGroup();
    TrainingGroup(const TrainingGroup&) = delete;
    TrainingGroup& operator=(const TrainingGroup&) = delete;

    int rank() const;
    int size() const;
    bool leads() const { return rank() == 0; }
    const GroupLaunch& launch() const;
    /// Where the backend's tensors live; the blocking collectives take tensors anywhere.
    torch::Device device() const;
    std::chrono::milliseconds timeout() const;

    /// Sums a contiguous tensor over the group, in place.
    void allreduceSum(torch::Tensor& tensor);
    /// The same, started now, for a tensor on device(); it must stay alive and untouched until wait().
    Pending allreduceSumAsync(torch::Tensor tensor);
    /// Overwrites `tensor` (contiguous, the same shape everywhere) with rank 0's.
    void broadcast(torch::Tensor& tensor);
    /// Every rank's `tensor` (the same shape everywhere), stacked in rank order.
    torch::Tensor allgather(const torch::Tensor& tensor);
    /// Rank 0's text, on every rank.
    std::string broadcastText(const std::string& text);

    /// The step this rank has reached, which its heartbeat tells the others (for messages).
    void setProgress(std::int64_t step);
    /// Seconds this process has spent waiting on collectives since the last call.
    double takeWaitSeconds();

private:
    struct State;
    explicit TrainingGroup(std::unique_ptr<State> state);
    /// The failure of a collective as a GroupError naming the ranks whose heartbeat stopped.
    [[noreturn]] void fail(const std::exception& error) const;

    std::unique_ptr<State> m;
};

} // namespace vitlab
