#pragma once

// Training to a time budget: how fast the steps go lately, and how many optimiser steps still fit
// in the time left so that the schedule's decay ends with the budget. Free of torch.
#include <cstdint>
#include <vector>

namespace vitlab {

/// Seconds per optimiser step over the recent steps: the last quarter of those timed (at least
/// 20), so that a machine that slows down mid-run (another job, thermal limits) is seen within a
/// few epochs, while one slow step is not.
class StepPace {
public:
    /// `seconds`: training time (epoch ends excluded) when optimiser step `step` completed.
    void record(std::int64_t step, double seconds);
    std::int64_t stepsTimed() const;
    /// 0 until two steps have been recorded.
    double secondsPerStep() const;

private:
    std::vector<std::int64_t> m_steps;
    std::vector<double> m_seconds;
};

struct BudgetPlan {
    /// The run's optimiser steps; the last epoch may be partial.
    std::int64_t totalSteps = 0;
    int epochs = 0;
};

/// The steps of the last of `epochs` epochs in a run of `totalSteps` (stepsPerEpoch when whole).
std::int64_t lastEpochSteps(std::int64_t totalSteps, int epochs, std::int64_t stepsPerEpoch);

/// The longest run from `step` on whose steps and epoch ends (an evaluation and checkpoint after
/// each epoch, the last one partial or not) take at most `secondsLeft`, an epoch more only where its
/// steps take at least as long as its end; `epochsEnded` epochs have
/// had their end already (the one that `step` completes may not have). Always at least one step
/// more than `step`: the step just taken had the rate of a longer plan, so a run whose time is up
/// still takes one step at the decay's end rate (a step and maybe an epoch end over the budget,
/// where ending at once would leave a model trained at a high rate to its last step).
BudgetPlan planWithinBudget(std::int64_t step, int epochsEnded, std::int64_t stepsPerEpoch, double secondsPerStep,
                            double secondsPerEpochEnd, double secondsLeft);

} // namespace vitlab
