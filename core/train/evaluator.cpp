#include "core/train/evaluator.h"

#include "core/data/loader.h"
#include "core/errors.h"
#include "core/torch_compat.h"
#include "core/train/process_group.h"

namespace vitlab {

EvaluationAccumulator::EvaluationAccumulator(std::vector<std::string> classNames)
{
    const auto classes = classNames.size();
    m_result.classNames = std::move(classNames);
    m_result.confusion.assign(classes * classes, 0);
}

void EvaluationAccumulator::add(const torch::Tensor& logits, const torch::Tensor& labels,
                                const std::vector<std::string>& sources)
{
    const auto classes = m_result.classCount();
    if (logits.dim() != 2 || logits.size(1) != classes || labels.dim() != 1 || labels.size(0) != logits.size(0)
        || static_cast<std::int64_t>(sources.size()) != logits.size(0))
        throw ShapeError("evaluation takes logits (N, " + std::to_string(classes) + "), N labels and N sources");
    const auto cpuLogits = logits.detach().to(torch::kCPU, torch::kFloat32);
    const auto cpuLabels = labels.to(torch::kCPU, torch::kInt64);
    if (cpuLabels.numel() > 0 && (cpuLabels.min().item<std::int64_t>() < 0 || cpuLabels.max().item<std::int64_t>() >= classes))
        throw ShapeError("a label lies outside the " + std::to_string(classes) + " classes");
    const auto logProbabilities = torch::log_softmax(cpuLogits, -1);
    const auto losses = -logProbabilities.gather(1, cpuLabels.unsqueeze(1)).squeeze(1);
    const auto [confidence, predicted] = logProbabilities.exp().max(-1);
    const auto topK = std::min<std::int64_t>(5, classes);
    const auto inTopK = std::get<1>(cpuLogits.topk(topK, -1)).eq(cpuLabels.unsqueeze(1)).any(-1);

    const auto* label = cpuLabels.data_ptr<std::int64_t>();
    const auto* prediction = predicted.data_ptr<std::int64_t>();
    const auto* probability = confidence.data_ptr<float>();
    const auto* loss = losses.data_ptr<float>();
    const auto* top = inTopK.data_ptr<bool>();
    for (std::int64_t i = 0; i < logits.size(0); ++i)
        addSample({sources[static_cast<std::size_t>(i)], label[i], prediction[i], probability[i], loss[i]}, top[i]);
}

void EvaluationAccumulator::addSample(SampleResult sample, bool inTopK)
{
    const auto classes = m_result.classCount();
    if (sample.label < 0 || sample.label >= classes || sample.predicted < 0 || sample.predicted >= classes)
        throw ShapeError("a label lies outside the " + std::to_string(classes) + " classes");
    ++m_result.confusion[static_cast<std::size_t>(sample.label * classes + sample.predicted)];
    m_top1 += sample.label == sample.predicted ? 1 : 0;
    m_top5 += inTopK ? 1 : 0;
    // Summed as the float it was computed in, so that a group's sum equals one process's.
    m_lossSum += static_cast<float>(sample.loss);
    m_result.samples.push_back(std::move(sample));
    m_inTopK.push_back(inTopK ? 1 : 0);
    ++m_result.count;
}

EvaluationResult EvaluationAccumulator::finish()
{
    const auto count = static_cast<double>(std::max<std::int64_t>(1, m_result.count));
    m_result.top1 = static_cast<double>(m_top1) / count;
    m_result.top5 = static_cast<double>(m_top5) / count;
    m_result.loss = m_lossSum / count;
    computeClassMetrics(m_result);
    return std::move(m_result);
}

namespace {

/// This process's share of `samples` in its group: contiguous, in order.
std::vector<std::size_t> shareOf(const std::vector<std::size_t>& samples, const TrainingGroup& group)
{
    const auto count = samples.size();
    const auto size = static_cast<std::size_t>(group.size());
    const auto rank = static_cast<std::size_t>(group.rank());
    return {samples.begin() + static_cast<std::ptrdiff_t>(count * rank / size),
            samples.begin() + static_cast<std::ptrdiff_t>(count * (rank + 1) / size)};
}

/// Every rank's evaluated samples, gathered in rank order (which is the samples' order), on every
/// rank: label, prediction, confidence, loss and top-k as rows of doubles, the sources named again
/// from the dataset.
EvaluationResult gatherEvaluation(const EvaluationResult& mine, const std::vector<char>& myTopK,
                                  const std::vector<std::size_t>& samples, const Dataset& data, TrainingGroup& group)
{
    const auto size = static_cast<std::size_t>(group.size());
    const auto largest = (samples.size() + size - 1) / size;
    constexpr std::int64_t kColumns = 5;
    auto rows = torch::zeros({static_cast<std::int64_t>(largest) + 1, kColumns}, torch::kFloat64);
    auto* row = rows.data_ptr<double>();
    row[0] = static_cast<double>(mine.samples.size()); // the first row: how many follow
    for (std::size_t i = 0; i < mine.samples.size(); ++i) {
        const auto& sample = mine.samples[i];
        double* values = row + (i + 1) * kColumns;
        values[0] = static_cast<double>(sample.label);
        values[1] = static_cast<double>(sample.predicted);
        values[2] = sample.confidence;
        values[3] = sample.loss;
        values[4] = myTopK[i] ? 1.0 : 0.0;
    }
    const auto all = group.allgather(rows);
    EvaluationAccumulator accumulator(mine.classNames);
    std::size_t next = 0;
    for (std::int64_t rank = 0; rank < all.size(0); ++rank) {
        const auto* values = all[rank].data_ptr<double>();
        const auto count = static_cast<std::size_t>(values[0]);
        for (std::size_t i = 0; i < count; ++i, ++next) {
            const double* sample = values + (i + 1) * kColumns;
            accumulator.addSample({data.source(samples.at(next)), static_cast<std::int64_t>(sample[0]),
                                   static_cast<std::int64_t>(sample[1]), sample[2], sample[3]},
                                  sample[4] != 0.0);
        }
    }
    if (next != samples.size())
        throw GroupError("the group evaluated " + std::to_string(next) + " of " + std::to_string(samples.size())
                         + " samples");
    return accumulator.finish();
}

} // namespace

EvaluationResult evaluateModel(ClassifierImpl& model, const Dataset& data, const std::vector<std::size_t>& allSamples,
                               const AugmentOptions& view, const EvaluateOptions& options)
{
    const auto samples = options.group ? shareOf(allSamples, *options.group) : allSamples;
    LoaderOptions loaderOptions;
    loaderOptions.batchSize = options.batchSize;
    loaderOptions.shuffle = false;
    loaderOptions.training = false;
    loaderOptions.workers = options.workers;
    loaderOptions.pinMemory = options.device.is_cuda();
    loaderOptions.augment = view;
    BatchLoader loader(data.images(), data.labels(), samples, loaderOptions);
    loader.startEpoch(0);

    model.eval();
    EvaluationAccumulator accumulator(data.classNames());
    std::size_t done = 0;
    while (auto batch = loader.next()) {
        // Per batch: the group's exchange after the loop runs on Gloo's threads, outside inference mode.
        c10::InferenceMode inference;
        torch::Tensor logits;
        {
            compat::AutocastGuard autocast(options.device.type(), options.precision.dtype, options.precision.autocasts());
            logits = model.forward(batch->images.to(options.device, /*non_blocking=*/true));
        }
        std::vector<std::string> sources;
        sources.reserve(batch->samples.size());
        for (const auto sample : batch->samples)
            sources.push_back(data.source(sample));
        accumulator.add(logits, batch->labels, sources);
        done += batch->samples.size();
        if (options.progress && !options.progress(done, samples.size())) {
            loader.stop();
            break;
        }
    }
    if (!options.group)
        return accumulator.finish();
    const auto topK = accumulator.inTopK();
    return gatherEvaluation(accumulator.finish(), topK, allSamples, data, *options.group);
}

} // namespace vitlab
