#pragma once

// timm-compatible weights in and out: timm's state-dict keys and layouts in .safetensors files.
#include "core/io/safetensors.h"
#include "core/models/registry.h"

#include <filesystem>
#include <string>
#include <vector>

namespace vitlab {

struct WeightsLoadOptions {
    /// Refuse missing, unexpected or mismatched keys (other than an intentionally fresh head).
    bool strict = true;
    /// When the file's class count differs from the model's, keep the model's fresh head
    /// (fine-tuning) instead of failing.
    bool allowFreshHead = true;
};

/// What loading did: the timm-style report of key differences and the adaptations made.
struct WeightsReport {
    std::vector<std::string> missing;
    std::vector<std::string> unexpected;
    /// "key: file (a, b) vs model (c, d)"
    std::vector<std::string> mismatched;
    /// Adaptations: resized position embeddings, summed input channels, converted dtypes, fresh head.
    std::vector<std::string> notes;
    std::size_t loaded = 0;
    bool freshHead = false;

    bool clean() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
    /// One paragraph for logs and error messages; long key lists are shortened.
    std::string summary() const;
};

/// Copies a timm state dict into `model`: the family's checkpoint filter first, then bf16/f16/f64
/// converted to the model's dtype. Throws FormatError listing the differences when strict and
/// anything differs; otherwise loads what matches.
WeightsReport loadStateDict(ClassifierImpl& model, StateDict stateDict, const WeightsLoadOptions& options = {});
WeightsReport loadWeights(ClassifierImpl& model, const std::filesystem::path& file,
                          const WeightsLoadOptions& options = {});

/// Classes of the file's classifier head ("head.weight" or "head.fc.weight"), 0 when it has none.
std::int64_t numClassesInWeights(const std::filesystem::path& file);

/// Builds `spec` and loads `file` into it. A spec without "num_classes" takes the file's.
Classifier createModelWithWeights(ModelSpec spec, const std::filesystem::path& file,
                                  const WeightsLoadOptions& options = {}, WeightsReport* report = nullptr);

/// Writes the model's parameters and buffers under timm's keys (float32 unless the model is in
/// another dtype), atomically, with `metadata` in the header.
void saveWeights(const ClassifierImpl& model, const std::filesystem::path& file,
                 const safetensors::Metadata& metadata = {});

/// Transfer learning: which parameters stay trainable.
struct FreezeSpec {
    enum class Mode { None, AllButHead, FirstUnits };
    Mode mode = Mode::None;
    int units = 0;
};

/// "none", "head" (train the head only) or a number N (freeze the stem and the first N blocks
/// or stages). Throws ConfigError otherwise.
FreezeSpec parseFreezeSpec(const std::string& text);
/// Sets requires_grad on every parameter; returns the number of frozen parameters (elements).
std::int64_t applyFreeze(ClassifierImpl& model, const FreezeSpec& spec);

} // namespace vitlab
