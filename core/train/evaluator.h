#pragma once

// Evaluation of a model on a split of a dataset: top-1 and top-5, loss, the confusion matrix,
// per-class metrics and every sample's prediction.
#include "core/data/augment.h"
#include "core/data/dataset.h"
#include "core/models/classifier.h"
#include "core/train/evaluation.h"
#include "core/train/execution.h"

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace vitlab {

class TrainingGroup;

struct EvaluateOptions {
    std::int64_t batchSize = 256;
    ComputePrecision precision;
    torch::Device device = torch::kCPU;
    int workers = 0;
    /// (done, total) images after each batch; returning false stops early (the result then
    /// covers the images seen so far).
    std::function<bool(std::size_t, std::size_t)> progress;
    /// In a group of processes each evaluates a contiguous share of the samples (no sample
    /// twice) and every rank gets the whole result, equal to one process's.
    TrainingGroup* group = nullptr;
};

/// Adds batches of logits to a growing evaluation; finish() computes the metrics.
class EvaluationAccumulator {
public:
    explicit EvaluationAccumulator(std::vector<std::string> classNames);
    /// `logits` (N, classes) and `labels` (N) on any device; `sources` name the N samples.
    void add(const torch::Tensor& logits, const torch::Tensor& labels, const std::vector<std::string>& sources);
    /// One sample already evaluated; `inTopK`: its label is among the five best (or all) classes.
    void addSample(SampleResult sample, bool inTopK);
    EvaluationResult finish();
    /// Per sample added, in order: whether its label is among the top five.
    const std::vector<char>& inTopK() const { return m_inTopK; }

private:
    EvaluationResult m_result;
    double m_lossSum = 0.0;
    std::int64_t m_top1 = 0;
    std::int64_t m_top5 = 0;
    std::vector<char> m_inTopK;
};

/// Evaluates `model` (put in eval mode) on `samples` of `data` with the evaluation `view`.
EvaluationResult evaluateModel(ClassifierImpl& model, const Dataset& data, const std::vector<std::size_t>& samples,
                               const AugmentOptions& view, const EvaluateOptions& options);

} // namespace vitlab
