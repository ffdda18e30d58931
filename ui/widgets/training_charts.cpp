#include "ui/widgets/training_charts.h"

#include "ui/plot.h"

#include <QGridLayout>

#include <algorithm>

#include <cmath>

namespace vitlab::ui {

namespace {

constexpr double kSmoothing = 0.95;

QCPGraph* addGraph(QCustomPlot* plot, const QString& name, const QColor& colour, double width = 1.5,
                   QCPScatterStyle::ScatterShape scatter = QCPScatterStyle::ssNone)
{
    QCPGraph* graph = plot->addGraph();
    graph->setName(name);
    graph->setPen(QPen(colour, width));
    graph->setAdaptiveSampling(true);
    if (scatter != QCPScatterStyle::ssNone)
        graph->setScatterStyle(QCPScatterStyle(scatter, colour, colour, 6));
    return graph;
}

QCustomPlot* makePlot(QWidget* parent, const QString& name, const QString& xLabel, const QString& yLabel)
{
    auto* plot = new QCustomPlot(parent);
    plot->setObjectName(name);
    plot->xAxis->setLabel(xLabel);
    plot->yAxis->setLabel(yLabel);
    plot->legend->setVisible(true);
    plot->legend->setBrush(QColor(255, 255, 255, 200));
    plot->legend->setFont(QFont(plot->font().family(), 8));
    plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    // Curves of 100 000 points stay fluid: wide polylines take QPainter's slow stroker (seconds
    // for a noisy curve) unless drawn as fast polylines; no antialiasing while dragging.
    plot->setPlottingHint(QCP::phFastPolylines, true);
    plot->setNoAntialiasingOnDrag(true);
    plot->setMinimumHeight(110);
    return plot;
}

} // namespace

TrainingCharts::TrainingCharts(QWidget* parent)
    : QWidget(parent)
    , m_lossPlot(makePlot(this, QStringLiteral("lossPlot"), tr("step"), tr("loss")))
    , m_accuracyPlot(makePlot(this, QStringLiteral("accuracyPlot"), tr("epoch"), tr("accuracy (%)")))
    , m_lrPlot(makePlot(this, QStringLiteral("learningRatePlot"), tr("step"), tr("learning rate")))
{
    m_stepLoss = addGraph(m_lossPlot, tr("step loss"), QColor(31, 119, 180, 70), 1.0);
    m_smoothLoss = addGraph(m_lossPlot, tr("smoothed"), QColor(31, 119, 180), 2.0);
    m_stepLoss->setPen(QPen(QColor(31, 119, 180, 70), 0)); // cosmetic: the fast path for the noisy curve
    m_epochTrainLoss = addGraph(m_lossPlot, tr("epoch train"), QColor(44, 160, 44), 1.5, QCPScatterStyle::ssCircle);
    m_epochValLoss = addGraph(m_lossPlot, tr("validation"), QColor(214, 39, 40), 1.5, QCPScatterStyle::ssDiamond);
    m_lossPlot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);

    m_trainAccuracy = addGraph(m_accuracyPlot, tr("train"), QColor(44, 160, 44), 1.5, QCPScatterStyle::ssCircle);
    m_valTop1 = addGraph(m_accuracyPlot, tr("validation top-1"), QColor(214, 39, 40), 2.0, QCPScatterStyle::ssDiamond);
    m_valTop5 = addGraph(m_accuracyPlot, tr("validation top-5"), QColor(255, 127, 14), 1.0, QCPScatterStyle::ssSquare);
    m_accuracyPlot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignBottom | Qt::AlignRight);
    m_accuracyPlot->yAxis->setRange(0, 100);
    // Whole epochs only: "epoch 1.5" means nothing here.
    QSharedPointer<QCPAxisTickerFixed> epochTicker(new QCPAxisTickerFixed);
    epochTicker->setTickStep(1.0);
    epochTicker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    m_accuracyPlot->xAxis->setTicker(epochTicker);

    m_lr = addGraph(m_lrPlot, tr("learning rate"), QColor(148, 103, 189), 1.5);
    m_lrPlot->legend->setVisible(false);
    m_lrPlot->yAxis->setNumberFormat(QStringLiteral("eb"));
    m_lrPlot->yAxis->setNumberPrecision(1);

    auto* layout = new QGridLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(m_lossPlot, 0, 0, 1, 2);
    layout->addWidget(m_accuracyPlot, 1, 0);
    layout->addWidget(m_lrPlot, 1, 1);
    layout->setRowStretch(0, 3);
    layout->setRowStretch(1, 2);

    m_replotTimer.setSingleShot(true);
    m_replotTimer.setInterval(kReplotIntervalMs);
    connect(&m_replotTimer, &QTimer::timeout, this, &TrainingCharts::replotNow);
}

void TrainingCharts::clear()
{
    for (QCustomPlot* plot : {m_lossPlot, m_accuracyPlot, m_lrPlot})
        for (int i = 0; i < plot->graphCount(); ++i)
            plot->graph(i)->data()->clear();
    m_ema = 0.0;
    m_emaWeight = 0.0;
    m_epochs = 0;
    scheduleReplot(AllDirty);
}

void TrainingCharts::setEpochs(int epochs)
{
    m_epochs = epochs;
    scheduleReplot(AccuracyDirty);
}

void TrainingCharts::addStepPoint(double step, double loss, double lr)
{
    if (!std::isfinite(loss))
        return;
    m_stepLoss->addData(step, loss);
    m_ema = kSmoothing * m_ema + (1.0 - kSmoothing) * loss;
    m_emaWeight = kSmoothing * m_emaWeight + (1.0 - kSmoothing);
    m_smoothLoss->addData(step, m_ema / m_emaWeight);
    m_lr->addData(step, lr);
}

void TrainingCharts::addEpochPoint(double step, double epoch, double trainLoss, double trainAccuracy,
                                   double validationLoss, double top1, double top5)
{
    m_epochTrainLoss->addData(step, trainLoss);
    m_epochValLoss->addData(step, validationLoss);
    m_trainAccuracy->addData(epoch, 100.0 * trainAccuracy);
    m_valTop1->addData(epoch, 100.0 * top1);
    m_valTop5->addData(epoch, 100.0 * top5);
}

void TrainingCharts::addSteps(const QVector<StepReport>& steps)
{
    for (const StepReport& step : steps)
        addStepPoint(static_cast<double>(step.step), step.loss, step.learningRate);
    scheduleReplot(LossDirty | RateDirty);
}

void TrainingCharts::addEpoch(const EpochReport& e)
{
    addEpochPoint(static_cast<double>(e.step), e.epoch, e.trainLoss, e.trainAccuracy, e.validationLoss,
                  e.validationTop1, e.validationTop5);
    scheduleReplot(LossDirty | AccuracyDirty);
}

void TrainingCharts::showHistory(const std::vector<MetricsRow>& rows)
{
    clear();
    for (const MetricsRow& row : rows) {
        if (row.kind == "epoch")
            addEpochPoint(static_cast<double>(row.step), row.epoch, row.loss, row.trainAccuracy, row.validationLoss,
                          row.validationTop1, row.validationTop5);
        else
            addStepPoint(static_cast<double>(row.step), row.loss, row.learningRate);
        if (row.kind == "epoch")
            m_epochs = std::max(m_epochs, row.epoch);
    }
    scheduleReplot(AllDirty);
}

void TrainingCharts::scheduleReplot(int dirty)
{
    m_dirty |= dirty;
    // Armed by the first point after a repaint and never pushed back, so a steady stream of
    // points still repaints every 40 ms rather than never.
    if (!m_replotTimer.isActive())
        m_replotTimer.start();
}

void TrainingCharts::showEvent(QShowEvent* event)
{
    QWidget::showEvent(event);
    if (m_dirty)
        replotNow();
}

void TrainingCharts::replotNow()
{
    m_replotTimer.stop();
    // Hidden charts keep their points and draw when shown: on two cores every repaint we skip is
    // time the training gets.
    if (!isVisible() || m_dirty == 0)
        return;
    if (m_dirty & LossDirty) {
        m_lossPlot->xAxis->rescale();
        // A little room on the right, so the epoch markers at the last step show whole.
        const double upper = std::max(1.0, m_lossPlot->xAxis->range().upper);
        m_lossPlot->xAxis->setRange(0, upper * 1.02);
        bool found = false;
        QCPRange range = m_smoothLoss->data()->valueRange(found);
        // Raw step losses spike; frame the smoothed curve and the epoch points, with room above.
        for (QCPGraph* g : {m_epochTrainLoss, m_epochValLoss}) {
            bool any = false;
            const QCPRange r = g->data()->valueRange(any);
            if (any) {
                range = found ? QCPRange(std::min(range.lower, r.lower), std::max(range.upper, r.upper)) : r;
                found = true;
            }
        }
        m_lossPlot->yAxis->setRange(0, found ? range.upper * 1.25 : 1.0);
        m_lossPlot->replot(QCustomPlot::rpQueuedRefresh);
    }
    if (m_dirty & AccuracyDirty) {
        bool found = false;
        const QCPRange epochs = m_valTop1->data()->keyRange(found);
        const double last = std::max({2.0, static_cast<double>(m_epochs), found ? epochs.upper : 0.0});
        m_accuracyPlot->xAxis->setRange(0.5, last + 0.5);
        m_accuracyPlot->yAxis->setRange(0, 100);
        m_accuracyPlot->replot(QCustomPlot::rpQueuedRefresh);
    }
    if (m_dirty & RateDirty) {
        m_lrPlot->rescaleAxes();
        if (m_lrPlot->xAxis->range().size() < 1)
            m_lrPlot->xAxis->setRange(0, std::max(1.0, m_lrPlot->xAxis->range().upper));
        m_lrPlot->yAxis->setRangeLower(0);
        m_lrPlot->replot(QCustomPlot::rpQueuedRefresh);
    }
    m_dirty = 0;
    ++m_replots;
}

} // namespace vitlab::ui
