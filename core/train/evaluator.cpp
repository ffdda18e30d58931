#include "core/train/evaluator.h"

#include "core/data/loader.h"
#include "core/errors.h"
#include "core/torch_compat.h"

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
    for (std::int64_t i = 0; i < logits.size(0); ++i) {
        ++m_result.confusion[static_cast<std::size_t>(label[i] * classes + prediction[i])];
        m_top1 += label[i] == prediction[i] ? 1 : 0;
        m_top5 += top[i] ? 1 : 0;
        m_lossSum += loss[i];
        m_result.samples.push_back({sources[static_cast<std::size_t>(i)], label[i], prediction[i], probability[i], loss[i]});
    }
    m_result.count += logits.size(0);
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

EvaluationResult evaluateModel(ClassifierImpl& model, const Dataset& data, const std::vector<std::size_t>& samples,
                               const AugmentOptions& view, const EvaluateOptions& options)
{
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
    c10::InferenceMode inference;
    EvaluationAccumulator accumulator(data.classNames());
    std::size_t done = 0;
    while (auto batch = loader.next()) {
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
    return accumulator.finish();
}

} // namespace vitlab
