#pragma once

// The torch-free face of the engine for the desktop front end. ui/ includes only this header
// (and the plain structs it brings); it never sees a tensor. The engine headers below are
// themselves free of torch; the model registry is not, so the Model page's questions about it
// are answered by the functions at the end, which return plain structs.
#include "core/data/dataset.h"
#include "core/data/dataset_location.h"
#include "core/data/image_folder.h"
#include "core/data/inspect.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/train/evaluation.h"
#include "core/train/events.h"
#include "core/train/predictor.h"
#include "core/train/run_folder.h"
#include "core/train/train_config.h"
#include "core/train/trainer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace vitlab::facade {

/// Starts the engine for the app: threads and device, as `initRuntime` does.
RuntimeInfo startEngine();

/// Resolves a dataset request without throwing; `error` receives the reason on failure.
bool tryResolveDataset(const std::string& request, DatasetLocation& location, std::string& error);

/// A registry entry as the Model page lists it.
struct ModelInfo {
    std::string name;
    std::string family;
    /// "ViT", "DeiT", "Swin", "TNT", "ResNet+ViT", ...
    std::string architecture;
    std::string description;
    std::int64_t imageSize = 0;
    std::int64_t channels = 3;
    /// Patch size (1 when the family has none), so the page can offer image sizes that fit.
    std::int64_t patchSize = 1;
};

/// Every named model, sorted by architecture then name.
std::vector<ModelInfo> listModels();

/// What a model costs at an image size and class count. `error` says why the combination cannot
/// be built (an image size that the patch size does not divide, ...), and the counts are then 0.
struct ModelCost {
    std::int64_t parameters = 0;
    /// Multiply-accumulates of one forward pass of one image; FLOPs are twice this.
    std::int64_t macs = 0;
    std::int64_t channels = 0;
    std::int64_t imageSize = 0;
    std::string error;
};

/// `model` is a registry name or a JSON config path; `imageSize` 0 keeps the model's own.
ModelCost modelCost(const std::string& model, std::int64_t imageSize, std::int64_t classes);

/// Settings that suit a dataset on a small CPU: model, image size, batch, epochs and why.
struct SuggestedSettings {
    std::string model;
    std::int64_t imageSize = 0;
    std::int64_t batchSize = 64;
    int epochs = 10;
    double learningRate = 1e-3;
    std::string reason;
};
SuggestedSettings suggestSettings(const ScanReport& report, bool builtin);

} // namespace vitlab::facade

namespace vitlab::facade {

/// Up to `limit` images of class `label` for thumbnails, as Dataset sources: file paths of a
/// scanned folder, or "<folder>#train:<n>" for IDX sets (whose report lists no files).
std::vector<std::string> classSamples(const ScanReport& report, std::int64_t label, std::size_t limit);

} // namespace vitlab::facade
