#include "core/data/loader.h"

#include "core/errors.h"
#include "core/runtime.h"

#include <algorithm>
#include <numeric>

namespace vitlab {

BatchLoader::BatchLoader(const ImageCache& cache, std::vector<std::int64_t> labels, std::vector<std::size_t> samples,
                         LoaderOptions options)
    : m_cache(cache)
    , m_labels(std::move(labels))
    , m_samples(std::move(samples))
    , m_options(std::move(options))
{
    if (m_options.batchSize < 1)
        throw ConfigError("the batch size must be at least 1");
    if (m_options.shardCount < 1 || m_options.shardIndex < 0 || m_options.shardIndex >= m_options.shardCount)
        throw ConfigError("a loader's share of the batches must be one of its group's");
    if (m_labels.size() != m_cache.size())
        throw ShapeError("the loader needs one label per cached image");
    for (const auto sample : m_samples) {
        if (sample >= m_cache.size())
            throw ShapeError("a sample index lies outside the image cache");
    }
    // Page-locked memory needs a CUDA driver; without one, plain memory is as good.
    m_pinMemory = m_options.pinMemory && torch::cuda::is_available();
}

BatchLoader::~BatchLoader()
{
    stop();
}

std::size_t BatchLoader::batchesPerEpoch() const
{
    const auto size = static_cast<std::size_t>(m_options.batchSize);
    return m_options.dropLast ? m_samples.size() / size : (m_samples.size() + size - 1) / size;
}

void BatchLoader::startEpoch(std::int64_t epoch, std::size_t firstBatch)
{
    stop();
    m_stop = false;
    m_epoch = epoch;
    m_order = m_samples;
    if (m_options.shuffle) {
        // Fisher-Yates with a standardised generator: the same order on every platform.
        std::mt19937_64 generator = sampleGenerator(m_options.seed, epoch, std::size_t(-1));
        for (std::size_t i = m_order.size(); i > 1; --i)
            std::swap(m_order[i - 1], m_order[generator() % i]);
    }
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_ready.clear();
        m_nextToBuild = std::min(firstBatch, batchesPerEpoch());
        m_nextToHand = m_nextToBuild;
        m_failure = nullptr;
    }
    const int workers = m_options.workers > 0 ? m_options.workers : usableCoreCount();
    for (int w = 0; w < workers; ++w)
        m_workers.emplace_back([this] { work(); });
}

void BatchLoader::work()
{
    const std::size_t total = batchesPerEpoch();
    while (true) {
        std::size_t batchNumber = 0;
        {
            std::unique_lock<std::mutex> lock(m_mutex);
            m_changed.wait(lock, [&] {
                return m_stop || m_nextToBuild >= total || m_nextToBuild < m_nextToHand + m_options.prefetch;
            });
            if (m_stop || m_nextToBuild >= total)
                return;
            batchNumber = m_nextToBuild++;
        }
        try {
            Batch batch = build(batchNumber);
            std::lock_guard<std::mutex> lock(m_mutex);
            if (m_stop)
                return; // possibly cut short: never handed out
            m_ready.emplace(batchNumber, std::move(batch));
        } catch (...) {
            std::lock_guard<std::mutex> lock(m_mutex);
            if (!m_failure)
                m_failure = std::current_exception();
            m_stop = true;
        }
        m_changed.notify_all();
    }
}

Batch BatchLoader::build(std::size_t batchNumber) const
{
    const auto size = static_cast<std::size_t>(m_options.batchSize);
    const std::size_t groupFirst = batchNumber * size;
    const std::size_t groupCount = std::min(size, m_order.size() - groupFirst);
    const auto shards = static_cast<std::size_t>(m_options.shardCount);
    const auto shard = static_cast<std::size_t>(m_options.shardIndex);
    const std::size_t first = groupFirst + groupCount * shard / shards;
    const std::size_t count = groupFirst + groupCount * (shard + 1) / shards - first;
    const auto out = m_options.augment.outputSize;
    auto imageOptions = torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(m_pinMemory);
    Batch batch;
    batch.images = torch::empty({static_cast<std::int64_t>(count), m_cache.channels(), out, out}, imageOptions);
    batch.labels = torch::empty({static_cast<std::int64_t>(count)}, torch::kInt64);
    batch.groupImages = groupCount;
    auto* labels = batch.labels.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < count; ++i) {
        if (m_stop)
            break;
        const std::size_t sample = m_order[first + i];
        const auto* pixels = m_cache.image(sample);
        float* slot = batch.images.data_ptr<float>() + i * static_cast<std::size_t>(m_cache.channels() * out * out);
        if (m_options.training) {
            auto generator = sampleGenerator(m_options.seed, m_epoch, sample);
            augmentForTrainingInto(pixels, m_cache.side(), m_cache.channels(), m_options.augment, generator, slot);
        } else {
            prepareForEvaluationInto(pixels, m_cache.side(), m_cache.channels(), m_options.augment, slot);
        }
        labels[i] = m_labels[sample];
        batch.samples.push_back(sample);
    }
    return batch;
}

std::optional<Batch> BatchLoader::next()
{
    std::unique_lock<std::mutex> lock(m_mutex);
    if (m_nextToHand >= batchesPerEpoch())
        return std::nullopt;
    m_changed.wait(lock, [&] { return m_stop || m_ready.count(m_nextToHand) > 0; });
    if (m_failure)
        std::rethrow_exception(m_failure);
    if (m_stop)
        return std::nullopt;
    const auto found = m_ready.find(m_nextToHand);
    Batch batch = std::move(found->second);
    m_ready.erase(found);
    ++m_nextToHand;
    lock.unlock();
    m_changed.notify_all();
    return batch;
}

void BatchLoader::stop()
{
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_stop = true;
    }
    m_changed.notify_all();
    joinWorkers();
}

void BatchLoader::joinWorkers()
{
    for (auto& worker : m_workers) {
        if (worker.joinable())
            worker.join();
    }
    m_workers.clear();
}

} // namespace vitlab
