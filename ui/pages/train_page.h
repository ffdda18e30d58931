#pragma once

#include "core/facade/engine.h"

#include <QVector>
#include <QWidget>

class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace vitlab::ui {

class TrainingCharts;
class TrainingWorker;

/// Training: start, pause, resume and stop, live curves, progress and an event log. The page
/// follows the worker's signals; what to train comes from the window (startRequested).
class TrainPage : public QWidget {
    Q_OBJECT
public:
    explicit TrainPage(TrainingWorker* worker, QWidget* parent = nullptr);

    TrainingCharts* charts() const { return m_charts; }
    /// A line that says what Start will train ("vit_micro_r5_s4_28 on Fashion-MNIST, 10 epochs").
    void setPlan(const QString& plan, bool ready);
    /// Shows a stored run's curves (opened from the Runs page).
    void showHistory(const QString& runName, const std::vector<MetricsRow>& rows);
    void appendLog(const QString& text);
    QString logText() const;

Q_SIGNALS:
    void startRequested();

private:
    void updateButtons();
    void onRunStarted(const RunStarted& run);
    void onSteps(const QVector<StepReport>& steps);
    void onEpoch(const EpochReport& epoch);
    void onFinished(const RunFinished& result);
    void onFailed(const QString& reason);

    TrainingWorker* m_worker;
    QLabel* m_plan = nullptr;
    QLabel* m_runInfo = nullptr;
    QPushButton* m_start = nullptr;
    QPushButton* m_pause = nullptr;
    QPushButton* m_stop = nullptr;
    QProgressBar* m_progress = nullptr;
    QLabel* m_speed = nullptr;
    QLabel* m_eta = nullptr;
    QLabel* m_state = nullptr;
    TrainingCharts* m_charts = nullptr;
    QPlainTextEdit* m_log = nullptr;
    bool m_ready = false;
    std::int64_t m_totalSteps = 0;
};

} // namespace vitlab::ui
