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
#include "core/hub/hub_client.h"
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

/// timm's pretrained weights for a model, as the Model page offers them.
struct PretrainedChoice {
    /// What TrainConfig::weights takes: "hub:deit_tiny_patch16_224.fb_in1k".
    std::string weights;
    /// "timm/deit_tiny_patch16_224.fb_in1k"
    std::string repository;
    /// A short name for a menu: "ImageNet", "ImageNet-21k", "DINO".
    std::string title;
    /// What they were trained on: "ImageNet-21k, fine-tuned on ImageNet-1k".
    std::string description;
    std::string license;
    /// The cached file's size, else the estimate from the architecture.
    std::int64_t bytes = 0;
    bool bytesExact = false;
    bool cached = false;
    bool isDefault = false;
    std::int64_t classes = 0;
};
/// The model's published tags, timm's default first; none for the small presets.
std::vector<PretrainedChoice> pretrainedChoices(const std::string& model);

/// The weights ("hub:NAME.TAG") in the Hugging Face cache, downloaded first when missing; returns
/// the file. `progress` gets (bytes, total) and returns false to cancel. Throws hub::HubError
/// (Kind::Cancelled when cancelled) or another vitlab::Error.
std::string fetchPretrained(const std::string& weights, const hub::DownloadProgress& progress);

/// Whether the Hub answers for these weights (one HEAD, a short timeout): "" when it does, else why
/// not. Blocks for up to seconds: call it off the UI thread.
std::string probePretrained(const std::string& weights);

/// Whether a photo folder's suggestion can start from pretrained weights.
enum class PretrainedAvailability {
    Unchecked,   ///< not cached, and the Hub not asked yet
    Cached,      ///< the weights are in the cache
    Reachable,   ///< not cached, but the Hub answers
    Unreachable, ///< not cached, and the Hub does not answer (or HF_HUB_OFFLINE is set)
};

/// Settings that suit a dataset on a small CPU: model, image size, batch, epochs and why; for
/// photos, timm's weights with a fine-tuning recipe when they are cached or reachable.
struct SuggestedSettings {
    std::string model;
    std::int64_t imageSize = 0;
    std::int64_t batchSize = 64;
    int epochs = 10;
    double learningRate = 1e-3;
    double warmupEpochs = 1.0;
    /// "hub:NAME.TAG" to fine-tune, or empty to train from scratch.
    std::string weights;
    /// A time budget that the epochs are fitted to on this machine (0: the epochs as they are).
    double budgetMinutes = 0.0;
    std::string reason;
};
/// The pretrained weights a photo folder's suggestion starts from.
std::string photoPretrainedWeights();
/// Whether photoPretrainedWeights() is cached (never the network).
PretrainedAvailability cachedPhotoWeights();
/// `machine` sizes the budgets: the Fashion-MNIST demo gets 15 minutes on a CPU without native
/// bfloat16 (float32), 12 where the CPU computes bfloat16, and its recipe's epochs on a GPU.
SuggestedSettings suggestSettings(const ScanReport& report, bool builtin, const RuntimeInfo& machine,
                                  PretrainedAvailability pretrained = PretrainedAvailability::Unchecked);

/// How many processes a run on this machine can train in at once: one per CUDA GPU, else one per
/// usable core.
int maxLocalProcesses(const RuntimeInfo& machine);

/// Trains `config` data-parallel in `processes` processes on this machine (c10d, as
/// `vitlab-cli train --nproc` does): the calling thread is rank 0, reporting to `callbacks` and
/// obeying `control` as trainRun does; ranks 1 and up are `vitlab-cli train` processes (VITLAB_CLI,
/// else the one beside this program), each with its share of the cores. Pause is not offered in a
/// group; Stop stops every rank with a checkpoint. A worker that fails before the group forms
/// ends the wait at once, with its own error in the GroupError. 1 process is trainRun.
RunFinished trainInProcesses(const TrainConfig& config, int processes, const TrainCallbacks& callbacks,
                             TrainControl& control);
/// resumeRun in `processes` processes, as above.
RunFinished resumeInProcesses(const std::filesystem::path& runDirectory, int processes, const TrainCallbacks& callbacks,
                              TrainControl& control);

} // namespace vitlab::facade

namespace vitlab::facade {

/// Up to `limit` images of class `label` for thumbnails, as Dataset sources: file paths of a
/// scanned folder, or "<folder>#train:<n>" for IDX sets (whose report lists no files).
std::vector<std::string> classSamples(const ScanReport& report, std::int64_t label, std::size_t limit);

} // namespace vitlab::facade
