#pragma once

// Where a training run stands, as its checkpoint (resume.safetensors) records it beyond the
// tensors, and the seeds that make an interrupted run draw what an uninterrupted one would.
#include "core/io/safetensors.h"

#include <cstdint>
#include <string>

namespace vitlab {

/// Where a run stands: what a checkpoint records beyond the tensors.
struct Position {
    int epoch = 1;                 ///< the epoch in progress (1-based)
    std::size_t batch = 0;         ///< batches of it already consumed
    std::int64_t step = 0;         ///< optimiser steps done
    double bestTop1 = -1.0;
    double trainSeconds = 0.0;     ///< training time over all sessions, pauses excluded
    // The running sums of the epoch in progress, so a resumed epoch reports what an
    // uninterrupted one would.
    /// The epoch's loss summed per image (batch mean times batch size): a run resumed at another
    /// batch size averages its epoch as one that was not.
    double epochLossSum = 0.0;
    std::int64_t epochCorrect = 0;
    std::int64_t epochSeen = 0;
    std::int64_t epochBatches = 0;
    /// Optimiser steps skipped for non-finite (float16: overflowed) gradients, over the run.
    std::int64_t skippedSteps = 0;
};

/// The position as the resume state's metadata ("format": "vitlab-resume-1").
safetensors::Metadata positionMetadata(const Position& position);
/// Reads it back; throws FormatError naming `file` when it is not a resume state or is malformed.
Position positionFromMetadata(const safetensors::Metadata& metadata, const std::string& file);

/// One seed per (run seed, epoch, batch): dropout, drop path and mixing draw the same numbers
/// whether or not the run was interrupted in between.
std::uint64_t batchSeed(std::uint64_t seed, int epoch, std::size_t batch);

/// `value` in as many digits as give it back exactly ("%.17g").
std::string exact(double value);

} // namespace vitlab
