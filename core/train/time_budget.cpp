#include "core/train/time_budget.h"

#include <algorithm>
#include <cmath>

namespace vitlab {

void StepPace::record(std::int64_t step, double seconds)
{
    m_steps.push_back(step);
    m_seconds.push_back(seconds);
}

std::int64_t StepPace::stepsTimed() const
{
    return m_steps.empty() ? 0 : m_steps.back() - m_steps.front();
}

double StepPace::secondsPerStep() const
{
    const auto samples = m_steps.size();
    if (samples < 2)
        return 0.0;
    const auto window = std::max<std::size_t>(20, (samples - 1) / 4);
    const auto first = samples - 1 - std::min(window, samples - 1);
    const auto steps = m_steps.back() - m_steps[first];
    return steps > 0 ? (m_seconds.back() - m_seconds[first]) / static_cast<double>(steps) : 0.0;
}

std::int64_t lastEpochSteps(std::int64_t totalSteps, int epochs, std::int64_t stepsPerEpoch)
{
    return totalSteps - static_cast<std::int64_t>(epochs - 1) * stepsPerEpoch;
}

BudgetPlan planWithinBudget(std::int64_t step, int epochsEnded, std::int64_t stepsPerEpoch, double secondsPerStep,
                            double secondsPerEpochEnd, double secondsLeft)
{
    const auto epochsOf = [stepsPerEpoch](std::int64_t steps) {
        return static_cast<int>((steps + stepsPerEpoch - 1) / stepsPerEpoch);
    };
    BudgetPlan best{step + 1, std::max(epochsEnded, epochsOf(step + 1))};
    if (stepsPerEpoch < 1 || secondsPerStep <= 0.0)
        return best;
    secondsPerEpochEnd = std::max(0.0, secondsPerEpochEnd);
    // Ending within epoch `epochsEnded + k` costs k epoch ends; the longest plan over k wins.
    const auto done = static_cast<std::int64_t>(epochsEnded);
    for (std::int64_t k = 1;; ++k) {
        const double training = secondsLeft - static_cast<double>(k) * secondsPerEpochEnd;
        const auto epochStart = (done + k - 1) * stepsPerEpoch;
        if (training <= 0.0 || step + training / secondsPerStep <= static_cast<double>(epochStart))
            break;
        const auto affordable = step + static_cast<std::int64_t>(std::floor(training / secondsPerStep));
        const auto steps = std::min(affordable, (done + k) * stepsPerEpoch);
        // An epoch end more only for steps that outweigh it: not an evaluation for 3 steps.
        const bool worthItsEnd = best.epochs >= done + k
            || static_cast<double>(steps - best.totalSteps) * secondsPerStep >= secondsPerEpochEnd;
        if (steps > best.totalSteps && worthItsEnd)
            best = {steps, epochsOf(steps)};
    }
    return best;
}

} // namespace vitlab
