#pragma once

// The result of evaluating a model on labelled images: plain data (no torch) for the CLI, the
// run folder's eval.json and the desktop front end.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace vitlab {

struct ClassMetrics {
    std::string name;
    double precision = 0.0;
    double recall = 0.0;
    double f1 = 0.0;
    /// Samples whose true class this is.
    std::int64_t support = 0;
};

/// One evaluated sample, for the misclassified and hardest-examples views.
struct SampleResult {
    /// Where the image comes from: a file path, or "<idx folder>#t10k:<index>" for IDX sets.
    std::string source;
    std::int64_t label = 0;
    std::int64_t predicted = 0;
    /// Softmax probability of the predicted class.
    double confidence = 0.0;
    /// Cross-entropy of the true class (no label smoothing).
    double loss = 0.0;
};

struct EvaluationResult {
    std::vector<std::string> classNames;
    /// confusion[true * classes + predicted], row-major.
    std::vector<std::int64_t> confusion;
    std::int64_t count = 0;
    double top1 = 0.0;
    double top5 = 0.0;
    /// Mean cross-entropy (no label smoothing).
    double loss = 0.0;
    double macroF1 = 0.0;
    std::vector<ClassMetrics> perClass;
    std::vector<SampleResult> samples;

    std::int64_t classCount() const { return static_cast<std::int64_t>(classNames.size()); }
    std::int64_t cell(std::int64_t trueClass, std::int64_t predicted) const
    {
        return confusion[static_cast<std::size_t>(trueClass * classCount() + predicted)];
    }

    nlohmann::json toJson(bool withSamples = true) const;
    /// Throws FormatError when the JSON is not an evaluation.
    static EvaluationResult fromJson(const nlohmann::json& json);
};

/// Precision, recall and F1 of every class and their macro mean, from a square confusion matrix
/// (rows: true classes). A class never predicted has precision 0; one never present, recall 0.
void computeClassMetrics(EvaluationResult& result);

} // namespace vitlab
