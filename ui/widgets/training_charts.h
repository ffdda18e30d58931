#pragma once

#include "core/facade/engine.h"

#include <QTimer>
#include <QVector>
#include <QWidget>

class QCustomPlot;
class QCPGraph;

namespace vitlab::ui {

/// The live curves of one run: step loss (raw and smoothed) with the epochs' training and
/// validation loss, accuracy per epoch, and the learning rate. Points are appended as they come;
/// the plots repaint from a single-shot timer at most every 40 ms, however fast points arrive.
class TrainingCharts : public QWidget {
    Q_OBJECT
public:
    static constexpr int kReplotIntervalMs = 40;

    explicit TrainingCharts(QWidget* parent = nullptr);

    void clear();
    /// The run's epoch count, so the accuracy axis spans the whole run from the start.
    void setEpochs(int epochs);
    void addSteps(const QVector<StepReport>& steps);
    void addEpoch(const EpochReport& epoch);
    /// Shows a finished or interrupted run's metrics.csv rows.
    void showHistory(const std::vector<MetricsRow>& rows);

    QCustomPlot* lossPlot() const { return m_lossPlot; }
    QCustomPlot* accuracyPlot() const { return m_accuracyPlot; }
    QCustomPlot* learningRatePlot() const { return m_lrPlot; }
    QCPGraph* stepLoss() const { return m_stepLoss; }
    QCPGraph* smoothedLoss() const { return m_smoothLoss; }
    QCPGraph* validationTop1() const { return m_valTop1; }
    /// Repaints done so far, to show that bursts of points are coalesced.
    int replotCount() const { return m_replots; }
    /// Draws now instead of waiting for the timer (for screenshots).
    void replotNow();

protected:
    void showEvent(QShowEvent* event) override;

private:
    enum Dirty { LossDirty = 1, AccuracyDirty = 2, RateDirty = 4, AllDirty = 7 };
    void scheduleReplot(int dirty);
    void addStepPoint(double step, double loss, double lr);
    void addEpochPoint(double step, double epoch, double trainLoss, double trainAccuracy, double validationLoss,
                       double top1, double top5);

    QCustomPlot* m_lossPlot = nullptr;
    QCustomPlot* m_accuracyPlot = nullptr;
    QCustomPlot* m_lrPlot = nullptr;
    QCPGraph* m_stepLoss = nullptr;
    QCPGraph* m_smoothLoss = nullptr;
    QCPGraph* m_epochTrainLoss = nullptr;
    QCPGraph* m_epochValLoss = nullptr;
    QCPGraph* m_trainAccuracy = nullptr;
    QCPGraph* m_valTop1 = nullptr;
    QCPGraph* m_valTop5 = nullptr;
    QCPGraph* m_lr = nullptr;
    QTimer m_replotTimer;
    // Debiased exponential moving average of the step loss, as TensorBoard smooths.
    double m_ema = 0.0;
    double m_emaWeight = 0.0;
    int m_replots = 0;
    int m_dirty = 0;
    int m_epochs = 0;
};

} // namespace vitlab::ui
