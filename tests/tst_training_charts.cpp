// The live charts: points land in the graphs at once, but bursts of points repaint at most once
// per 40 ms; the smoothed curve is a debiased moving average; a stored run's history fills the
// same graphs.
#include "ui/plot.h"
#include "ui/widgets/training_charts.h"

#include <QElapsedTimer>
#include <QtTest>

#include <cmath>

using vitlab::ui::TrainingCharts;

class TestTrainingCharts : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void burstsOfPointsRepaintOnce()
    {
        TrainingCharts charts;
        charts.resize(800, 600);
        charts.show();
        QVERIFY(QTest::qWaitForWindowExposed(&charts));
        const int before = charts.replotCount();
        // 100 000 points in 1000 signals, as fast as they come: no repaint until the event loop runs.
        for (int batch = 0; batch < 1000; ++batch) {
            QVector<vitlab::StepReport> steps(100);
            for (int i = 0; i < 100; ++i) {
                steps[i].step = batch * 100 + i + 1;
                steps[i].loss = 2.0 + std::sin(steps[i].step * 0.1);
                steps[i].learningRate = 1e-3;
            }
            charts.addSteps(steps);
        }
        QCOMPARE(charts.replotCount(), before);
        QCOMPARE(charts.stepLoss()->dataCount(), 100000);
        QTRY_COMPARE(charts.replotCount(), before + 1);
        // Nothing new, nothing drawn.
        QTest::qWait(3 * TrainingCharts::kReplotIntervalMs);
        QCOMPARE(charts.replotCount(), before + 1);
        // A forced repaint of the 100 000 points draws once (its speed is bench/ui_stall's to measure).
        charts.addEpoch({});
        charts.replotNow();
        QCOMPARE(charts.replotCount(), before + 2);
    }

    void aSteadyStreamStillRepaints()
    {
        TrainingCharts charts;
        charts.show();
        QVERIFY(QTest::qWaitForWindowExposed(&charts));
        const int before = charts.replotCount();
        QElapsedTimer timer;
        timer.start();
        int step = 0;
        // Points every 5 ms for 400 ms: the timer is not pushed back by each point.
        while (timer.elapsed() < 400) {
            vitlab::StepReport report;
            report.step = ++step;
            report.loss = 1.0;
            charts.addSteps({report});
            QTest::qWait(5);
        }
        // At least one repaint while points keep coming, and never more than one per interval,
        // however fast or slow this machine runs the loop.
        const int repaints = charts.replotCount() - before;
        const auto intervals = static_cast<int>(timer.elapsed() / TrainingCharts::kReplotIntervalMs);
        QVERIFY2(repaints >= 1 && repaints <= intervals + 1,
                 qPrintable(QStringLiteral("%1 repaints in %2 intervals").arg(repaints).arg(intervals)));
    }

    void smoothedLossIsADebiasedAverage()
    {
        TrainingCharts charts;
        QVector<vitlab::StepReport> steps(2);
        steps[0].step = 1;
        steps[0].loss = 2.0;
        steps[1].step = 2;
        steps[1].loss = 1.0;
        charts.addSteps(steps);
        // The first point is the loss itself (no pull towards zero); the second leans to the first.
        QCOMPARE(charts.smoothedLoss()->data()->at(0)->value, 2.0);
        const double second = charts.smoothedLoss()->data()->at(1)->value;
        QVERIFY(qAbs(second - (0.95 * 0.05 * 2.0 + 0.05 * 1.0) / (0.95 * 0.05 + 0.05)) < 1e-12);
        // A non-finite loss (a diverging run) is left out rather than breaking the axes.
        vitlab::StepReport bad;
        bad.step = 3;
        bad.loss = std::nan("");
        charts.addSteps({bad});
        QCOMPARE(charts.stepLoss()->dataCount(), 2);
    }

    void hiddenChartsDrawWhenShown()
    {
        TrainingCharts charts;
        vitlab::StepReport report;
        report.step = 1;
        report.loss = 1.0;
        charts.addSteps({report});
        QTest::qWait(3 * TrainingCharts::kReplotIntervalMs);
        QCOMPARE(charts.replotCount(), 0);
        charts.show();
        QVERIFY(QTest::qWaitForWindowExposed(&charts));
        QCOMPARE(charts.replotCount(), 1);
    }

    void historyFillsTheSameGraphs()
    {
        TrainingCharts charts;
        std::vector<vitlab::MetricsRow> rows;
        for (int s = 1; s <= 10; ++s)
            rows.push_back({"step", 1 + (s > 5), s, 0.0, 1e-3, 2.0 / s, 100.0, NAN, NAN, NAN, NAN});
        rows.push_back({"epoch", 1, 5, 0.0, 1e-3, 0.8, 0, 0.6, 0.7, 0.55, 0.9});
        rows.push_back({"epoch", 2, 10, 0.0, 1e-3, 0.5, 0, 0.8, 0.6, 0.75, 0.95});
        charts.showHistory(rows);
        QCOMPARE(charts.stepLoss()->dataCount(), 10);
        QCOMPARE(charts.validationTop1()->dataCount(), 2);
        QCOMPARE(charts.validationTop1()->data()->at(1)->value, 75.0);
        charts.clear();
        QCOMPARE(charts.stepLoss()->dataCount(), 0);
    }
};

QTEST_MAIN(TestTrainingCharts)
#include "tst_training_charts.moc"
