#pragma once

// How finely the CPU kernels split their work over at::parallel_for.
#include <algorithm>
#include <cstdint>

namespace vitlab {

/// Items (rows, planes) per parallel task when each holds `valuesPerItem` values: enough values
/// that a task outweighs the cost of scheduling it.
inline std::int64_t parallelGrain(std::int64_t valuesPerItem)
{
    return std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, valuesPerItem));
}

} // namespace vitlab
