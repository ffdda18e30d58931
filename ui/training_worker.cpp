#include "ui/training_worker.h"

#include <QMetaObject>

#include <algorithm>

namespace vitlab::ui {

TrainingWorker::TrainingWorker(QObject* parent)
    : QObject(parent)
{
    qRegisterMetaType<vitlab::RunStarted>();
    qRegisterMetaType<vitlab::StepReport>();
    qRegisterMetaType<vitlab::EpochReport>();
    qRegisterMetaType<vitlab::RunFinished>();
    qRegisterMetaType<std::shared_ptr<const vitlab::EvaluationResult>>();
    qRegisterMetaType<QVector<vitlab::StepReport>>();
}

TrainingWorker::~TrainingWorker()
{
    if (m_control)
        m_control->requestStop();
    joinThread();
}

bool TrainingWorker::start(const TrainConfig& config, int processes)
{
    return launch(processes, [config, processes](const TrainCallbacks& callbacks, TrainControl& control) {
        return facade::trainInProcesses(config, processes, callbacks, control);
    });
}

bool TrainingWorker::resume(const QString& runDirectory, int processes)
{
    const std::filesystem::path directory = runDirectory.toStdString();
    if (m_running)
        return false;
    m_runDirectory = runDirectory;
    return launch(processes, [directory, processes](const TrainCallbacks& callbacks, TrainControl& control) {
        return facade::resumeInProcesses(directory, processes, callbacks, control);
    });
}

bool TrainingWorker::isPaused() const
{
    return m_running && m_control && m_control->paused();
}

bool TrainingWorker::isStopping() const
{
    return m_running && m_control && m_control->stopRequested();
}

void TrainingWorker::pause()
{
    if (!canPause() || !m_control || m_control->paused())
        return;
    m_control->pause();
    Q_EMIT pausedChanged(true);
}

void TrainingWorker::resumeTraining()
{
    if (!m_running || !m_control || !m_control->paused())
        return;
    m_control->resume();
    Q_EMIT pausedChanged(false);
}

void TrainingWorker::requestStop()
{
    if (m_running && m_control)
        m_control->requestStop();
}

bool TrainingWorker::launch(int processes, std::function<RunFinished(const TrainCallbacks&, TrainControl&)> job)
{
    if (m_running)
        return false;
    m_processes = std::max(1, processes);
    joinThread(); // the previous run's thread has ended; collect it
    m_control = std::make_unique<TrainControl>();
    m_running = true;
    Q_EMIT runningChanged(true);
    {
        std::lock_guard<std::mutex> lock(m_stepMutex);
        m_pendingSteps.clear();
        m_pendingPreparing.reset();
    }
    TrainControl* control = m_control.get();
    TrainCallbacks callbacks = makeCallbacks();
    m_thread = std::thread([this, job = std::move(job), callbacks, control] {
        // One catch at the top: no exception may cross into Qt's event loop or end the program.
        RunFinished result;
        QString failure;
        try {
            result = job(callbacks, *control);
        } catch (const vitlab::Error& e) {
            failure = QString::fromStdString(e.what());
        } catch (const std::bad_alloc&) {
            failure = tr("Training ran out of memory. Try a smaller batch size, image size or model.");
        } catch (const std::exception& e) {
            failure = tr("Training stopped on an unexpected error: %1").arg(QString::fromLocal8Bit(e.what()));
        } catch (...) {
            failure = tr("Training stopped on an unknown error.");
        }
        QMetaObject::invokeMethod(this, [this, result, failure] {
            flushSteps();
            m_running = false;
            // No join here: the thread may still be tearing down (thread-local state, OpenMP's
            // team). The next launch or the destructor joins it, long after it has gone.
            if (!result.runDirectory.empty())
                m_runDirectory = QString::fromStdString(result.runDirectory);
            if (!failure.isEmpty())
                Q_EMIT failed(failure);
            else
                Q_EMIT finished(result);
            Q_EMIT runningChanged(false);
        }, Qt::QueuedConnection);
    });
    return true;
}

TrainCallbacks TrainingWorker::makeCallbacks()
{
    TrainCallbacks c;
    // Everything below runs on the training thread and only posts to this object.
    c.onPreparing = [this](const std::string& stage, std::size_t done, std::size_t total) {
        bool post = false;
        {
            std::lock_guard<std::mutex> lock(m_stepMutex);
            post = !m_pendingPreparing;
            m_pendingPreparing = Preparing{QString::fromStdString(stage), static_cast<qint64>(done),
                                           static_cast<qint64>(total)};
        }
        if (!post)
            return;
        QMetaObject::invokeMethod(this, [this] {
            Preparing latest;
            {
                std::lock_guard<std::mutex> lock(m_stepMutex);
                if (!m_pendingPreparing)
                    return;
                latest = *m_pendingPreparing;
                m_pendingPreparing.reset();
            }
            Q_EMIT preparing(latest.stage, latest.done, latest.total);
        }, Qt::QueuedConnection);
    };
    c.onStart = [this](const RunStarted& run) {
        QMetaObject::invokeMethod(this, [this, run] {
            m_runDirectory = QString::fromStdString(run.runDirectory);
            Q_EMIT runStarted(run);
        }, Qt::QueuedConnection);
    };
    c.onStep = [this](const StepReport& step) {
        bool first = false;
        {
            std::lock_guard<std::mutex> lock(m_stepMutex);
            first = m_pendingSteps.isEmpty();
            m_pendingSteps.push_back(step);
        }
        // Only the first report of a batch posts an event; the rest ride along with it.
        if (first)
            QMetaObject::invokeMethod(this, &TrainingWorker::flushSteps, Qt::QueuedConnection);
    };
    c.onEpoch = [this](const EpochReport& epoch) {
        QMetaObject::invokeMethod(this, [this, epoch] {
            flushSteps(); // the epoch's steps come before the epoch
            Q_EMIT epochReported(epoch);
        }, Qt::QueuedConnection);
    };
    c.onEvaluation = [this](const EvaluationResult& evaluation) {
        auto shared = std::make_shared<const EvaluationResult>(evaluation);
        QMetaObject::invokeMethod(this, [this, shared] { Q_EMIT evaluationReady(shared); }, Qt::QueuedConnection);
    };
    c.onMessage = [this](const std::string& text) {
        const QString message = QString::fromStdString(text);
        QMetaObject::invokeMethod(this, [this, message] { Q_EMIT this->message(message); }, Qt::QueuedConnection);
    };
    return c;
}

void TrainingWorker::flushSteps()
{
    QVector<StepReport> steps;
    {
        std::lock_guard<std::mutex> lock(m_stepMutex);
        steps.swap(m_pendingSteps);
    }
    if (!steps.isEmpty())
        Q_EMIT stepsReported(steps);
}

void TrainingWorker::joinThread()
{
    if (m_thread.joinable())
        m_thread.join();
}

} // namespace vitlab::ui
