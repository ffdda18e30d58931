#pragma once

#include "core/facade/engine.h"

#include <QObject>
#include <QString>
#include <QVector>

#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace vitlab::ui {

/// The one owner of the training thread. It runs trainRun/resumeRun on a std::thread, turns the
/// engine's callbacks into queued signals that carry plain structs, and turns every exception into
/// `failed`. Pause, resume and stop act on the engine's TrainControl directly: a queued request
/// would wait behind the busy training thread.
class TrainingWorker : public QObject {
    Q_OBJECT
public:
    explicit TrainingWorker(QObject* parent = nullptr);
    /// Stops a running job and waits for it: the thread must not outlive the object.
    ~TrainingWorker() override;

    /// Starts a new run, in `processes` processes of this machine (this one is rank 0, the others
    /// vitlab-cli workers); false (and nothing started) when one is already running.
    bool start(const TrainConfig& config, int processes = 1);
    /// Continues the run in `runDirectory` from its last checkpoint.
    bool resume(const QString& runDirectory, int processes = 1);

    bool isRunning() const { return m_running; }
    bool isPaused() const;
    bool isStopping() const;
    /// The processes the current (or last) run trains in.
    int processes() const { return m_processes; }
    /// A run of several processes cannot pause (the others would wait on it): Stop and resume instead.
    bool canPause() const { return m_running && m_processes == 1; }
    /// The run folder of the current (or last) run, once known.
    QString runDirectory() const { return m_runDirectory; }

    void pause();
    void resumeTraining();
    /// Asks the run to stop after this batch; it saves a checkpoint, then `finished` follows.
    void requestStop();

Q_SIGNALS:
    void preparing(const QString& stage, qint64 done, qint64 total);
    void runStarted(const vitlab::RunStarted& run);
    /// Every step report since the previous signal, in order: one signal per batch of reports,
    /// however fast the training thread produces them.
    void stepsReported(const QVector<vitlab::StepReport>& steps);
    void epochReported(const vitlab::EpochReport& epoch);
    void evaluationReady(std::shared_ptr<const vitlab::EvaluationResult> evaluation);
    void message(const QString& text);
    /// The run ended (finished, stopped, diverged, ...); the thread is done.
    void finished(const vitlab::RunFinished& result);
    /// The run could not start or broke off; `reason` is a sentence for the user.
    void failed(const QString& reason);
    void pausedChanged(bool paused);
    /// A run started (true) or its thread ended (false, after finished or failed).
    void runningChanged(bool running);

private:
    bool launch(int processes, std::function<RunFinished(const TrainCallbacks&, TrainControl&)> job);
    TrainCallbacks makeCallbacks();
    void flushSteps();
    void joinThread();

    std::thread m_thread;
    std::unique_ptr<TrainControl> m_control;
    bool m_running = false;
    int m_processes = 1;
    QString m_runDirectory;

    std::mutex m_stepMutex;
    QVector<StepReport> m_pendingSteps;
    /// The latest preparation progress not yet shown: only the newest matters, and one event at a
    /// time carries it (a report per decoded image once kept the UI thread busy for half a minute).
    struct Preparing {
        QString stage;
        qint64 done = 0, total = 0;
    };
    std::optional<Preparing> m_pendingPreparing;
};

} // namespace vitlab::ui

Q_DECLARE_METATYPE(vitlab::RunStarted)
Q_DECLARE_METATYPE(vitlab::StepReport)
Q_DECLARE_METATYPE(vitlab::EpochReport)
Q_DECLARE_METATYPE(vitlab::RunFinished)
Q_DECLARE_METATYPE(std::shared_ptr<const vitlab::EvaluationResult>)
