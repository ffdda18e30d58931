#pragma once

// Augmentation on cached uint8 images (HWC, RGB or grey), then normalisation into a float CHW
// tensor. Every random choice comes from a generator seeded per (seed, epoch, sample), so a batch
// is the same whatever thread builds it.
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>

namespace vitlab {

struct AugmentOptions {
    std::int64_t outputSize = 224;
    /// RandomResizedCrop's area and aspect-ratio ranges (torchvision's defaults).
    double scaleMin = 0.08, scaleMax = 1.0;
    double ratioMin = 3.0 / 4.0, ratioMax = 4.0 / 3.0;
    bool horizontalFlip = true;
    /// RandAugment: this many operations per image at this magnitude (0-30); 0 turns it off.
    int randAugmentOps = 0;
    int randAugmentMagnitude = 9;
    std::array<double, 3> mean{0.5, 0.5, 0.5};
    std::array<double, 3> std{0.5, 0.5, 0.5};
    /// Evaluation: the centre `outputSize` square of the image resized to outputSize / cropPct.
    double cropPct = 1.0;
    /// Enlarging: "bilinear" or "bicubic" (the weights' own, from timm). Shrinking always averages
    /// pixel areas, as an antialiased resize does.
    std::string interpolation = "bilinear";
};

/// The generator for one sample of one epoch: independent of which thread draws it.
std::mt19937_64 sampleGenerator(std::uint64_t seed, std::int64_t epoch, std::size_t sample);

/// A training view of one cached image: RandomResizedCrop, flip, RandAugment, normalised to
/// (channels, outputSize, outputSize) float32.
torch::Tensor augmentForTraining(const std::uint8_t* image, std::int64_t side, std::int64_t channels,
                                 const AugmentOptions& options, std::mt19937_64& generator);

/// The evaluation view: resize and centre crop, normalised.
torch::Tensor prepareForEvaluation(const std::uint8_t* image, std::int64_t side, std::int64_t channels,
                                   const AugmentOptions& options);

/// The same views written straight into `destination` (channels x outputSize x outputSize
/// floats), as the loader does for each slot of a batch: one pass, no temporary tensors.
void augmentForTrainingInto(const std::uint8_t* image, std::int64_t side, std::int64_t channels,
                            const AugmentOptions& options, std::mt19937_64& generator, float* destination);
void prepareForEvaluationInto(const std::uint8_t* image, std::int64_t side, std::int64_t channels,
                              const AugmentOptions& options, float* destination);

/// Mixup (alpha > 0) or, with probability `cutmixShare`, CutMix (alpha > 0) on a batch in place;
/// returns the mixed one-hot targets (N, classes), with label smoothing already applied if any.
torch::Tensor mixBatch(torch::Tensor& images, const torch::Tensor& labels, std::int64_t classes, double mixupAlpha,
                       double cutmixAlpha, double cutmixShare, double labelSmoothing, std::mt19937_64& generator);

} // namespace vitlab
