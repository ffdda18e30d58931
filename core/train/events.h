#pragma once

// What a training run reports while it runs, and how it is paused or stopped. Plain data and
// std::function callbacks: no torch, no Qt. Callbacks are called on the training thread.
#include "core/train/evaluation.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace vitlab {

/// Known once the data and the model are ready, before the first step.
struct RunStarted {
    std::string runDirectory;
    std::string modelName;
    std::vector<std::string> classNames;
    std::int64_t trainImages = 0;
    std::int64_t validationImages = 0;
    std::int64_t parameters = 0;
    std::int64_t trainableParameters = 0;
    /// Optimiser steps of the whole schedule, and those already done when resuming.
    std::int64_t totalSteps = 0;
    std::int64_t firstStep = 0;
    int epochs = 0;
    std::int64_t stepsPerEpoch = 0;
    std::string device;
    std::string precision;
};

/// After each logged optimiser step.
struct StepReport {
    int epoch = 0;           ///< 1-based
    std::int64_t step = 0;   ///< optimiser steps done, over the whole run
    std::int64_t totalSteps = 0;
    double loss = 0.0;       ///< mean training loss since the previous report
    double learningRate = 0.0;
    double imagesPerSecond = 0.0;
    double elapsedSeconds = 0.0;
    /// Estimated seconds to the end of the schedule; negative while unknown.
    double etaSeconds = -1.0;
};

/// After each epoch's evaluation.
struct EpochReport {
    int epoch = 0;
    std::int64_t step = 0;
    double trainLoss = 0.0;
    /// Training accuracy on the augmented batches (against the unmixed labels).
    double trainAccuracy = 0.0;
    double validationLoss = 0.0;
    double validationTop1 = 0.0;
    double validationTop5 = 0.0;
    double learningRate = 0.0;
    double elapsedSeconds = 0.0;
    bool best = false;
};

enum class RunOutcome {
    Finished,     ///< every epoch done
    Stopped,      ///< stopped by the user; resumable
    TimeLimit,    ///< --max-minutes reached; resumable
    Diverged,     ///< a non-finite loss; the last good checkpoint stays
    OutOfMemory,  ///< the device ran out of memory; resumable with a smaller batch
    Failed,       ///< an error (see message)
};

std::string outcomeName(RunOutcome outcome);

struct RunFinished {
    RunOutcome outcome = RunOutcome::Finished;
    std::string message;
    std::string runDirectory;
    int epochsDone = 0;
    std::int64_t stepsDone = 0;
    double bestTop1 = 0.0;
};

struct TrainCallbacks {
    std::function<void(const RunStarted&)> onStart;
    /// (stage, done, total) while the data is scanned and decoded.
    std::function<void(const std::string&, std::size_t, std::size_t)> onPreparing;
    std::function<void(const StepReport&)> onStep;
    std::function<void(const EpochReport&)> onEpoch;
    std::function<void(const EvaluationResult&)> onEvaluation;
    /// Notes worth showing: weights adapted, checkpoint written, warnings.
    std::function<void(const std::string&)> onMessage;
};

/// Pause, resume and stop from any thread; the run checks between batches, so each takes effect
/// within one batch. A stop also wakes a paused run.
class TrainControl {
public:
    void requestStop()
    {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_stop = true;
        }
        m_changed.notify_all();
    }
    void pause()
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_paused = true;
    }
    void resume()
    {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_paused = false;
        }
        m_changed.notify_all();
    }
    bool stopRequested() const { return m_stop; }
    bool paused() const
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_paused;
    }
    /// Blocks while paused; returns false when a stop is requested.
    bool waitWhilePaused()
    {
        std::unique_lock<std::mutex> lock(m_mutex);
        m_changed.wait(lock, [this] { return !m_paused || m_stop; });
        return !m_stop;
    }

private:
    mutable std::mutex m_mutex;
    std::condition_variable m_changed;
    std::atomic<bool> m_stop{false};
    bool m_paused = false;
};

} // namespace vitlab
