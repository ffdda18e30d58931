#pragma once

// A training run's folder, runs/<name>/, and everything in it that is not a tensor:
//   config.json    the TrainConfig and the resolved model, enough to rebuild model and data
//   classes.txt    one class name per line, in label order
//   metrics.csv    a row per logged step and per epoch
//   status.json    running / finished / stopped / ..., with the epoch and step reached
//   eval.json      the last evaluation (confusion matrix, per-class metrics, every sample)
//   last.safetensors, best.safetensors, resume.safetensors (see checkpoint.h)
// Every write is atomic. Free of torch, so the app lists and reads runs without the engine.
#include "core/train/evaluation.h"
#include "core/train/events.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <limits>
#include <string>
#include <vector>

namespace vitlab {

struct MetricsRow {
    /// "step" or "epoch"
    std::string kind = "step";
    int epoch = 0;
    std::int64_t step = 0;
    double seconds = 0.0;
    double learningRate = 0.0;
    double loss = 0.0;
    double imagesPerSecond = 0.0;
    // Epoch rows only (NaN on step rows).
    double trainAccuracy = 0.0;
    double validationLoss = 0.0;
    double validationTop1 = 0.0;
    double validationTop5 = 0.0;
    /// Optimiser steps skipped so far for non-finite gradients (float16 overflow).
    std::int64_t skippedSteps = 0;
    /// float16's loss scale at the row, NaN when the loss is not scaled.
    double lossScale = std::numeric_limits<double>::quiet_NaN();
};

struct RunStatus {
    /// "running", "finished", "stopped", "time_limit", "diverged" or "failed"; a run found
    /// "running" whose process is gone reads as "interrupted".
    std::string state = "running";
    std::string message;
    int epoch = 0;
    std::int64_t step = 0;
    int epochs = 0;
    double bestTop1 = 0.0;
    int pid = 0;
};

class RunFolder {
public:
    explicit RunFolder(std::filesystem::path directory);

    /// A new, empty run folder under `runsDirectory` named `name`, or, when empty, after the
    /// time and `model` ("20261124-101500-vit_micro_r5_s4_28"); a suffix keeps it unique.
    static RunFolder create(const std::filesystem::path& runsDirectory, const std::string& name,
                            const std::string& model);
    /// Throws IoError when `directory` is not a run folder (no config.json).
    static RunFolder open(const std::filesystem::path& directory);

    const std::filesystem::path& directory() const { return m_directory; }
    std::string name() const { return m_directory.filename().string(); }
    std::filesystem::path configPath() const { return m_directory / "config.json"; }
    std::filesystem::path classesPath() const { return m_directory / "classes.txt"; }
    std::filesystem::path metricsPath() const { return m_directory / "metrics.csv"; }
    std::filesystem::path statusPath() const { return m_directory / "status.json"; }
    std::filesystem::path evaluationPath() const { return m_directory / "eval.json"; }
    std::filesystem::path lastWeightsPath() const { return m_directory / "last.safetensors"; }
    std::filesystem::path bestWeightsPath() const { return m_directory / "best.safetensors"; }
    std::filesystem::path resumeStatePath() const { return m_directory / "resume.safetensors"; }
    /// best.safetensors when there is one, else last.safetensors; empty when neither exists.
    std::filesystem::path weightsForInference() const;

    void writeConfig(const nlohmann::json& config) const;
    nlohmann::json readConfig() const;
    void writeClasses(const std::vector<std::string>& names) const;
    std::vector<std::string> readClasses() const;
    void writeMetrics(const std::vector<MetricsRow>& rows) const;
    /// Rows in file order; a malformed line is an error naming it.
    std::vector<MetricsRow> readMetrics() const;
    void writeStatus(const RunStatus& status) const;
    /// The status; "interrupted" for a run left "running" by a process that is gone.
    RunStatus readStatus() const;
    /// Deletes temporary files that writes killed half-way left behind.
    void removeStaleTemporaryFiles() const;
    void writeEvaluation(const EvaluationResult& result) const;
    std::optional<EvaluationResult> readEvaluation() const;

private:
    std::filesystem::path m_directory;
};

/// One line per run for lists: the app's Runs view and `vitlab-cli runs`.
struct RunSummary {
    std::filesystem::path directory;
    std::string name;
    std::string model;
    std::string data;
    RunStatus status;
    /// Seconds since the epoch of the last change.
    std::int64_t modified = 0;
};

/// Every run folder directly under `runsDirectory`, newest first; unreadable ones are skipped.
std::vector<RunSummary> listRuns(const std::filesystem::path& runsDirectory);

} // namespace vitlab
