#pragma once

// Data-parallel gradient averaging for LibTorch's C++ frontend, which has no
// DistributedDataParallel: the trainable parameters are packed, in reverse order (about the
// order backward produces their gradients), into flat buckets of about 25 MB; a hook on every
// parameter copies its gradient into its bucket as backward produces it, and a full bucket is
// summed over the group at once, while backward goes on. Buckets start in the same order on
// every rank, as Gloo and NCCL need.
#include "core/train/process_group.h"

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace vitlab {

class GradientBuckets {
public:
    static constexpr std::int64_t kDefaultBucketBytes = 25ll << 20;

    /// `parameters` in the model's order; every rank must pass the same.
    GradientBuckets(std::vector<torch::Tensor> parameters, TrainingGroup& group,
                    std::int64_t bucketBytes = kDefaultBucketBytes);
    ~GradientBuckets();
    GradientBuckets(const GradientBuckets&) = delete;
    GradientBuckets& operator=(const GradientBuckets&) = delete;

    /// The next backward pass is the optimiser step's last (with accumulation, the earlier ones
    /// only sum locally): its hooks send the buckets.
    void arm();
    /// After that backward: sends what backward did not reach (unused parameters count as zero),
    /// waits, and leaves every parameter's gradient the group's mean.
    void finish();
    /// Rank 0's parameters and buffers of `module` on every rank (a new run's initial weights).
    static void broadcastFrom0(torch::nn::Module& module, TrainingGroup& group);

    std::size_t bucketCount() const { return m_buckets.size(); }

private:
    struct Bucket {
        torch::Tensor flat;
        std::vector<std::size_t> members; ///< indices into m_parameters
        std::size_t filled = 0;
        TrainingGroup::Pending pending;
    };
    struct Slot {
        std::size_t bucket = 0;
        std::int64_t offset = 0;
        bool filled = false;
    };

    void gradientReady(std::size_t parameter, const torch::Tensor& gradient);
    void fill(std::size_t parameter, const torch::Tensor& gradient);
    /// Sends the full buckets that every earlier bucket has gone ahead of.
    void sendInOrder();

    TrainingGroup& m_group;
    std::vector<torch::Tensor> m_parameters;
    std::vector<unsigned> m_hooks;
    std::vector<Slot> m_slots;
    std::vector<Bucket> m_buckets;
    std::size_t m_nextToSend = 0;
    bool m_armed = false;
};

} // namespace vitlab
