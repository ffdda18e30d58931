#pragma once

// Training runs: a new run from a TrainConfig, or an earlier run continued from its checkpoint.
// Runs on the calling thread; callbacks report progress, a TrainControl pauses and stops it.
// Free of torch, so the app's worker adapter includes it through the facade.
#include "core/train/events.h"
#include "core/train/group_launch.h"
#include "core/train/train_config.h"

#include <filesystem>
#include <functional>
#include <optional>

namespace vitlab {

/// Data-parallel training in a group of processes (PyTorch's c10d on Gloo): every rank runs the
/// same run with its share of every batch; rank 0 alone writes the run folder.
struct GroupOptions {
    GroupLaunch launch;
    /// How long a collective (or forming the group) may wait on the others before the run fails,
    /// naming the rank at fault.
    double timeoutSeconds = 300.0;
    /// Asked while the group forms: a reason ("rank 1 exited ...") gives up at once, with a
    /// GroupError that says it. A stop requested through the TrainControl gives up too.
    std::function<std::string()> abandon;
};

/// Trains a new run in a new run folder. Throws ConfigError or IoError when the run cannot start
/// (unknown model, unreadable data, bad weights); once the run folder exists, any later error is
/// also recorded in its status.json before it is thrown. With `group`, joins it first (throws
/// GroupError when it does not form).
RunFinished trainRun(const TrainConfig& config, const TrainCallbacks& callbacks, TrainControl& control,
                     const std::optional<GroupOptions>& group = std::nullopt);

struct ResumeOptions {
    /// Replaces the run's time limit for this session (0: none).
    std::optional<double> maxMinutes;
    /// Continues at another batch size (after running out of memory, say). With `accumulation`
    /// the product must stay the run's effective batch, so the schedule and the data order stay
    /// the same; the run's config then keeps the new values.
    std::optional<std::int64_t> batchSize;
    std::optional<int> accumulation;
    /// Continues in a group of processes, of any size (every rank reads the run folder).
    std::optional<GroupOptions> group;
};

/// Continues the run in `runDirectory` from its last checkpoint (resume.safetensors) with the
/// same schedule; the metrics history is kept up to that checkpoint. Throws IoError when the
/// folder has no checkpoint.
RunFinished resumeRun(const std::filesystem::path& runDirectory, const TrainCallbacks& callbacks,
                      TrainControl& control, const ResumeOptions& options = {});

} // namespace vitlab
