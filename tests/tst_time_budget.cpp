// Training to a time budget, the arithmetic: the pace of the recent steps, and the plan of steps
// and epoch ends that fits the time left.
#include "core/train/time_budget.h"

#include <QtTest>

using namespace vitlab;

class TestTimeBudget : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void paceFollowsTheRecentSteps()
    {
        StepPace pace;
        QCOMPARE(pace.secondsPerStep(), 0.0);
        pace.record(1, 0.0);
        QCOMPARE(pace.secondsPerStep(), 0.0);
        // 100 steps at 10 ms, then 40 at 30 ms: the window (a quarter of the steps, at least 20)
        // sees only the slow ones.
        double seconds = 0.0;
        for (std::int64_t step = 2; step <= 101; ++step)
            pace.record(step, seconds += 0.010);
        QCOMPARE(pace.stepsTimed(), std::int64_t{100});
        QVERIFY(std::abs(pace.secondsPerStep() - 0.010) < 1e-9);
        for (std::int64_t step = 102; step <= 141; ++step)
            pace.record(step, seconds += 0.030);
        QVERIFY(std::abs(pace.secondsPerStep() - 0.030) < 1e-9);
        // One slow step counts for its share of the window (35 of the 141 steps timed).
        pace.record(142, seconds += 0.230);
        QVERIFY(std::abs(pace.secondsPerStep() - (0.030 * 34 + 0.230) / 35) < 1e-9);
    }

    void planFitsTheTimeLeft_data()
    {
        QTest::addColumn<qint64>("step");
        QTest::addColumn<int>("epochsEnded");
        QTest::addColumn<double>("secondsPerStep");
        QTest::addColumn<double>("secondsPerEpochEnd");
        QTest::addColumn<double>("secondsLeft");
        QTest::addColumn<qint64>("totalSteps");
        QTest::addColumn<int>("epochs");
        // 100 steps an epoch throughout. From step 0 at 0.1 s a step and 2 s an epoch end, 35 s:
        // three whole epochs cost 36 s, so the third is cut (35 - 3*2 = 29 s = 290 steps).
        QTest::newRow("third epoch cut") << qint64(0) << 0 << 0.1 << 2.0 << 35.0 << qint64(290) << 3;
        // 31.5 s: a short third epoch still beats two whole ones (31.5 - 6 s = 255 steps).
        QTest::newRow("short third epoch") << qint64(0) << 0 << 0.1 << 2.0 << 31.5 << qint64(255) << 3;
        // 26.3 s: a third epoch of 3 steps (0.3 s) is not worth its 2 s end: two whole epochs.
        QTest::newRow("partial epoch not worth its end") << qint64(0) << 0 << 0.1 << 2.0 << 26.3 << qint64(200) << 2;
        // An epoch end dearer than the steps it would allow: one epoch (10 s + 10 s) of 20.5 s.
        QTest::newRow("end earlier") << qint64(0) << 0 << 0.1 << 10.0 << 20.5 << qint64(100) << 1;
        // Step 100 just completed epoch 1, whose end has not run yet: 12 s pay that end (2 s)
        // and the next one's (2 s), leaving 80 steps.
        QTest::newRow("end still due") << qint64(100) << 0 << 0.1 << 2.0 << 12.0 << qint64(180) << 2;
        // The same step after that end: 12 s buy 100 steps of epoch 2 and its end.
        QTest::newRow("end behind") << qint64(100) << 1 << 0.1 << 2.0 << 12.0 << qint64(200) << 2;
        // No time left: one more step, at the decay's end rate, and its epoch's end (after a
        // whole epoch, a new epoch of one step).
        QTest::newRow("time up mid-epoch") << qint64(150) << 1 << 0.1 << 2.0 << -3.0 << qint64(151) << 2;
        QTest::newRow("time up at an end") << qint64(200) << 2 << 0.1 << 2.0 << 1.0 << qint64(201) << 3;
        // Time for the next step but not for the end it would bring: still that one step.
        QTest::newRow("next end unaffordable") << qint64(100) << 1 << 0.1 << 2.0 << 1.5 << qint64(101) << 2;
        // No pace yet: nothing is planned beyond the next step.
        QTest::newRow("no pace") << qint64(7) << 0 << 0.0 << 2.0 << 100.0 << qint64(8) << 1;
    }

    void planFitsTheTimeLeft()
    {
        QFETCH(qint64, step);
        QFETCH(int, epochsEnded);
        QFETCH(double, secondsPerStep);
        QFETCH(double, secondsPerEpochEnd);
        QFETCH(double, secondsLeft);
        QFETCH(qint64, totalSteps);
        QFETCH(int, epochs);
        const auto plan = planWithinBudget(step, epochsEnded, 100, secondsPerStep, secondsPerEpochEnd, secondsLeft);
        QCOMPARE(plan.totalSteps, std::int64_t(totalSteps));
        QCOMPARE(plan.epochs, epochs);
    }
};

QTEST_APPLESS_MAIN(TestTimeBudget)
#include "tst_time_budget.moc"
