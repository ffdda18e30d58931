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

    void planEndsWithinTheTimeLeft()
    {
        // 100 steps an epoch at 0.1 s, 2 s per epoch end, 35 s left from step 0: three whole
        // epochs cost 36 s, so the third is cut: 35 - 3*2 = 29 s = 290 steps.
        auto plan = planWithinBudget(0, 0, 100, 0.1, 2.0, 35.0);
        QCOMPARE(plan.totalSteps, std::int64_t{290});
        QCOMPARE(plan.epochs, 3);
        // 31.5 s: a short third epoch still beats two whole ones (31.5 - 6 s = 255 steps).
        plan = planWithinBudget(0, 0, 100, 0.1, 2.0, 31.5);
        QCOMPARE(plan.totalSteps, std::int64_t{255});
        // When an epoch end costs more than the steps it would allow, ending earlier wins:
        // 20.5 s with 10 s per end: one epoch (10 s + 10 s) rather than two ends.
        plan = planWithinBudget(0, 0, 100, 0.1, 10.0, 20.5);
        QCOMPARE(plan.totalSteps, std::int64_t{100});
        QCOMPARE(plan.epochs, 1);
    }

    void planCountsTheEpochEndStillDue()
    {
        // Step 100 just completed epoch 1, whose end has not run yet: 12 s left pay that end (2 s)
        // and the next one's (2 s), leaving 80 steps.
        auto plan = planWithinBudget(100, 0, 100, 0.1, 2.0, 12.0);
        QCOMPARE(plan.totalSteps, std::int64_t{180});
        QCOMPARE(plan.epochs, 2);
        // The same step after that end: 12 s buy 100 steps of epoch 2 and its end.
        plan = planWithinBudget(100, 1, 100, 0.1, 2.0, 12.0);
        QCOMPARE(plan.totalSteps, std::int64_t{200});
        QCOMPARE(plan.epochs, 2);
    }

    void planWithNoTimeLeftEndsWhereItIs()
    {
        auto plan = planWithinBudget(150, 1, 100, 0.1, 2.0, -3.0);
        QCOMPARE(plan.totalSteps, std::int64_t{150});
        QCOMPARE(plan.epochs, 2);
        plan = planWithinBudget(200, 2, 100, 0.1, 2.0, 1.0);
        QCOMPARE(plan.totalSteps, std::int64_t{200});
        QCOMPARE(plan.epochs, 2);
        // No pace yet: nothing is planned beyond the step.
        plan = planWithinBudget(7, 0, 100, 0.0, 2.0, 100.0);
        QCOMPARE(plan.totalSteps, std::int64_t{7});
    }
};

QTEST_APPLESS_MAIN(TestTimeBudget)
#include "tst_time_budget.moc"
