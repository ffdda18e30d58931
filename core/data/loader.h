#pragma once

// Batches from the image cache, prepared ahead by worker threads into a bounded queue.
#include "core/data/augment.h"
#include "core/data/image_cache.h"

#include <torch/torch.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace vitlab {

struct Batch {
    torch::Tensor images; ///< (N, C, H, W) float32, normalised
    torch::Tensor labels; ///< (N) int64
    std::vector<std::size_t> samples;
    /// Images in the whole batch: more than this one holds when it is one process's share.
    std::size_t groupImages = 0;
};

struct LoaderOptions {
    std::int64_t batchSize = 64;
    bool shuffle = true;
    bool dropLast = false;
    /// Training views (random crop, flip, RandAugment) or evaluation views (centre crop).
    bool training = true;
    /// Worker threads; 0 means every usable core.
    int workers = 0;
    /// Batches prepared ahead of the consumer.
    std::size_t prefetch = 4;
    std::uint64_t seed = 0;
    /// Page-locked batches, for fast non-blocking copies to a CUDA device; ignored when no CUDA
    /// device is present.
    bool pinMemory = false;
    AugmentOptions augment;
    /// In a group of processes, this process's share of every batch: a contiguous part of each
    /// (shares differ by one image at most). The batches, their order and every image's
    /// augmentation (seeded by sample and epoch) stay those of one process.
    int shardIndex = 0;
    int shardCount = 1;
};

class BatchLoader {
public:
    /// `samples` are indices into `cache` (one split), `labels` the label of every cache entry.
    BatchLoader(const ImageCache& cache, std::vector<std::int64_t> labels, std::vector<std::size_t> samples,
                LoaderOptions options);
    ~BatchLoader();
    BatchLoader(const BatchLoader&) = delete;
    BatchLoader& operator=(const BatchLoader&) = delete;

    /// Starts preparing the batches of `epoch` (shuffled by seed and epoch when shuffling), from
    /// batch `firstBatch` on: a run resumed in the middle of an epoch gets the batches it had left.
    void startEpoch(std::int64_t epoch, std::size_t firstBatch = 0);
    /// The next batch in order; nullopt at the end of the epoch or once stopped.
    std::optional<Batch> next();
    /// Stops the workers within one sample and wakes any waiting next().
    void stop();
    std::size_t batchesPerEpoch() const;

private:
    void work();
    Batch build(std::size_t batchNumber) const;
    void joinWorkers();

    const ImageCache& m_cache;
    std::vector<std::int64_t> m_labels;
    std::vector<std::size_t> m_samples;
    LoaderOptions m_options;
    bool m_pinMemory = false;

    std::vector<std::size_t> m_order;
    std::int64_t m_epoch = 0;
    std::vector<std::thread> m_workers;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::map<std::size_t, Batch> m_ready;
    std::size_t m_nextToBuild = 0;
    std::size_t m_nextToHand = 0;
    std::atomic<bool> m_stop{false};
    std::exception_ptr m_failure;
};

} // namespace vitlab
