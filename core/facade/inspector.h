#pragma once

// The app's window onto where a trained model looks: torch-free, so ui/ can hold one. Every call
// is synchronous and may take a few hundred milliseconds: call it off the UI thread.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace vitlab::facade {

struct AttentionRequest {
    /// "attention", "rollout", "relevance" or "gradcam".
    std::string method = "rollout";
    /// attention: the block (-1: the last) and one head (-1: the heads fused).
    int layer = -1;
    int head = -1;
    /// "mean", "max" or "min".
    std::string fusion = "mean";
    double discardRatio = 0.0;
    /// Distilled DeiT: "class", "dist" or "mean".
    std::string token = "class";
    /// attention: the query is the patch under (queryX, queryY), fractions of the image.
    bool hasQuery = false;
    double queryX = 0.0;
    double queryY = 0.0;
    /// relevance, gradcam: the class (-1: the predicted one).
    int classIndex = -1;
    /// TNT: the inner (pixel) attention.
    bool innerAttention = false;
};

/// An RGB image, 8 bits per channel, row-major.
struct RgbImage {
    int width = 0;
    int height = 0;
    std::vector<std::uint8_t> pixels;
};

struct AttentionView {
    /// What the model saw (the evaluation crop, normalisation undone).
    RgbImage image;
    /// The map coloured (JET) at the image's size; blend it over `image` at any opacity.
    RgbImage heatmap;
    int gridHeight = 0;
    int gridWidth = 0;
    /// gridHeight x gridWidth values in [0, 1].
    std::vector<float> map;
    int layers = 0;
    int heads = 0;
    int classIndex = 0;
    std::vector<float> probabilities;
};

struct HeadMaps {
    int heads = 0;
    int gridHeight = 0;
    int gridWidth = 0;
    /// heads x gridHeight x gridWidth values, each head scaled to a maximum of 1.
    std::vector<float> maps;
    /// Each head's map coloured (JET) at the size of the image the model saw.
    std::vector<RgbImage> heatmaps;
};

/// What the app shows for one request: the map and every head of the chosen block.
struct Inspection {
    AttentionView view;
    HeadMaps heads;
};

class Inspector {
public:
    /// Loads a run's best (else last) weights on the CPU. Throws vitlab::Error with a message for
    /// the user when the run cannot be loaded.
    explicit Inspector(const std::filesystem::path& runDirectory);
    ~Inspector();
    Inspector(const Inspector&) = delete;
    Inspector& operator=(const Inspector&) = delete;

    const std::vector<std::string>& classNames() const;
    /// "vit", "deit", "swin", "tnt" or "hybrid".
    std::string family() const;
    /// The methods this family supports, in the order the app offers them.
    std::vector<std::string> methods() const;
    /// The query tokens of the class-token maps: "class", and for distilled DeiT also "dist" and "mean".
    std::vector<std::string> queryTokens() const;
    /// TNT: the model also has inner (pixel) attention.
    bool hasInnerAttention() const;

    /// `source` is an image file or a Dataset source. Throws vitlab::Error with the reason.
    AttentionView explain(const std::string& source, const AttentionRequest& request);
    /// Every head of `request.layer` (method attention), for the grid of heads.
    HeadMaps heads(const std::string& source, const AttentionRequest& request);
    /// `explain` and `heads` together, decoding the image once.
    Inspection inspect(const std::string& source, const AttentionRequest& request);

    /// Writes `view`'s heatmap blended over its image at `opacity` (0 to 1) as a PNG, as the CLI's
    /// explain does. Throws vitlab::Error naming the path when it cannot.
    static void saveOverlay(const AttentionView& view, double opacity, const std::filesystem::path& path);

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace vitlab::facade
