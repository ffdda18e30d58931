#pragma once

// Training runs: a new run from a TrainConfig, or an earlier run continued from its checkpoint.
// Runs on the calling thread; callbacks report progress, a TrainControl pauses and stops it.
// Free of torch, so the app's worker adapter includes it through the facade.
#include "core/train/events.h"
#include "core/train/train_config.h"

#include <filesystem>
#include <optional>

namespace vitlab {

/// Trains a new run in a new run folder. Throws ConfigError or IoError when the run cannot start
/// (unknown model, unreadable data, bad weights); once the run folder exists, any later error is
/// also recorded in its status.json before it is thrown.
RunFinished trainRun(const TrainConfig& config, const TrainCallbacks& callbacks, TrainControl& control);

struct ResumeOptions {
    /// Replaces the run's time limit for this session (0: none).
    std::optional<double> maxMinutes;
    /// Continues at another batch size (after running out of memory, say). With `accumulation`
    /// the product must stay the run's effective batch, so the schedule and the data order stay
    /// the same; the run's config then keeps the new values.
    std::optional<std::int64_t> batchSize;
    std::optional<int> accumulation;
};

/// Continues the run in `runDirectory` from its last checkpoint (resume.safetensors) with the
/// same schedule; the metrics history is kept up to that checkpoint. Throws IoError when the
/// folder has no checkpoint.
RunFinished resumeRun(const std::filesystem::path& runDirectory, const TrainCallbacks& callbacks,
                      TrainControl& control, const ResumeOptions& options = {});

} // namespace vitlab
