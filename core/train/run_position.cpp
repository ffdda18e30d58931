#include "core/train/run_position.h"

#include "core/errors.h"

#include <cstdio>
#include <stdexcept>

namespace vitlab {

namespace {
constexpr const char* kResumeFormat = "vitlab-resume-1";
} // namespace

std::string exact(double value)
{
    char text[40];
    std::snprintf(text, sizeof text, "%.17g", value);
    return text;
}

safetensors::Metadata positionMetadata(const Position& p)
{
    return {{"format", kResumeFormat},
            {"epoch", std::to_string(p.epoch)},
            {"batch", std::to_string(p.batch)},
            {"step", std::to_string(p.step)},
            {"best_top1", exact(p.bestTop1)},
            {"train_seconds", exact(p.trainSeconds)},
            {"epoch_loss_sum", exact(p.epochLossSum)},
            {"epoch_loss_per", "image"},
            {"epoch_correct", std::to_string(p.epochCorrect)},
            {"epoch_seen", std::to_string(p.epochSeen)},
            {"epoch_batches", std::to_string(p.epochBatches)},
            {"skipped_steps", std::to_string(p.skippedSteps)}};
}

Position positionFromMetadata(const safetensors::Metadata& metadata, const std::string& file)
{
    const auto get = [&](const char* key) -> const std::string& {
        const auto it = metadata.find(key);
        if (it == metadata.end())
            throw FormatError(file + " is not a ViTLab resume state (it lacks \"" + key + "\")");
        return it->second;
    };
    if (get("format") != kResumeFormat)
        throw FormatError(file + " is a resume state of another format (" + get("format") + ")");
    try {
        Position p;
        p.epoch = std::stoi(get("epoch"));
        p.batch = std::stoull(get("batch"));
        p.step = std::stoll(get("step"));
        p.bestTop1 = std::stod(get("best_top1"));
        p.trainSeconds = std::stod(get("train_seconds"));
        p.epochLossSum = std::stod(get("epoch_loss_sum"));
        p.epochCorrect = std::stoll(get("epoch_correct"));
        p.epochSeen = std::stoll(get("epoch_seen"));
        p.epochBatches = std::stoll(get("epoch_batches"));
        // States from before summed batch means; their batches were all of one size.
        if (metadata.count("epoch_loss_per") == 0 && p.epochBatches > 0)
            p.epochLossSum *= static_cast<double>(p.epochSeen) / static_cast<double>(p.epochBatches);
        // Written since float16 training; older states skipped none.
        if (const auto it = metadata.find("skipped_steps"); it != metadata.end())
            p.skippedSteps = std::stoll(it->second);
        return p;
    } catch (const std::logic_error&) {
        throw FormatError(file + " has a malformed resume position");
    }
}

std::uint64_t batchSeed(std::uint64_t seed, int epoch, std::size_t batch)
{
    std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(epoch) * 0xBF58476D1CE4E5B9ull
        + static_cast<std::uint64_t>(batch) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    x *= 0xD6E8FEB86659FD93ull;
    return x ^ (x >> 32);
}

} // namespace vitlab
