#pragma once

// Swin Transformer v1: timm's SwinTransformer (timm/models/swin_transformer.py). Tokens stay
// channels-last (N, H, W, C) from the patch embedding to the final norm; attention runs inside
// (shifted) windows with a learned relative position bias.
#include "core/models/layers.h"
#include "core/models/model_args.h"

namespace vitlab {

class ModelRegistry;

/// timm's SwinTransformer constructor arguments that ViTLab supports.
struct SwinOptions {
    std::array<std::int64_t, 2> img_size{224, 224};
    std::int64_t patch_size = 4;
    std::int64_t in_chans = 3;
    std::int64_t num_classes = 1000;
    /// Only "avg" (mean over the final grid): timm's "" leaves a spatial map, which is no classifier.
    std::string global_pool = "avg";
    /// Width of the first stage; stage i has embed_dim * 2^i channels.
    std::int64_t embed_dim = 96;
    std::vector<std::int64_t> depths{2, 2, 6, 2};
    std::vector<std::int64_t> num_heads{3, 6, 12, 24};
    /// Channels per head; 0 (timm's None) means dim / num_heads.
    std::int64_t head_dim = 0;
    /// (height, width), the same for every stage.
    std::array<std::int64_t, 2> window_size{7, 7};
    /// Keep the window (and shift) even where the grid is not larger than it.
    bool always_partition = false;
    double mlp_ratio = 4.0;
    bool qkv_bias = true;
    double drop_rate = 0.0;
    double proj_drop_rate = 0.0;
    double attn_drop_rate = 0.0;
    double drop_path_rate = 0.1;

    /// Reads the arguments it knows and checks that every stage's grid can be merged; the
    /// caller calls args.rejectUnknown() when done.
    static SwinOptions fromArgs(ModelArgs& args);

    std::int64_t numStages() const { return static_cast<std::int64_t>(depths.size()); }
    std::int64_t stageDim(std::int64_t stage) const { return embed_dim << stage; }
    /// The token grid the blocks of `stage` see (after its patch merging).
    std::array<std::int64_t, 2> stageResolution(std::int64_t stage) const;
};

/// A block's attention geometry after timm's clamping: where the grid is not larger than the
/// window, the window shrinks to the grid and the shift is 0.
struct WindowGeometry {
    std::array<std::int64_t, 2> window{7, 7};
    std::array<std::int64_t, 2> shift{0, 0};
    /// The grid padded up to whole windows.
    std::array<std::int64_t, 2> padded{7, 7};
    std::int64_t area() const { return window[0] * window[1]; }
    std::int64_t numWindows() const { return (padded[0] / window[0]) * (padded[1] / window[1]); }
    bool shifted() const { return shift[0] > 0 || shift[1] > 0; }
};

/// timm's _calc_window_shift for one block on a `resolution` grid; `shiftedBlock` for odd blocks.
WindowGeometry windowGeometry(std::array<std::int64_t, 2> resolution, std::array<std::int64_t, 2> window,
                              bool shiftedBlock, bool alwaysPartition);

/// timm's get_relative_position_index: (area, area) indices into the (2h-1)(2w-1) bias table.
torch::Tensor relativePositionIndex(std::array<std::int64_t, 2> window);

/// timm's shifted-window mask: (windows, area, area), 0 inside one region of the rolled grid and
/// -100 across regions; undefined when the block is not shifted.
torch::Tensor shiftedWindowMask(const WindowGeometry& geometry);

/// timm's resize_rel_pos_bias_table (without SciPy): a square (S*S, heads) table resampled to
/// (2*window-1) per side by placing the source offsets on a geometric progression and
/// interpolating linearly, so the small offsets keep their values.
torch::Tensor resizeRelativePositionBiasTable(const torch::Tensor& table, std::array<std::int64_t, 2> window);

/// Window multi-head self-attention with a relative position bias (timm's WindowAttention).
/// The capture site of Swin: captured() is (batch * windows, heads, area, area), one map per
/// window in window_partition order (row-major over the padded grid), in the shifted frame for
/// shifted blocks. Mapping it back onto the image is left to the caller.
class WindowAttentionImpl : public torch::nn::Module, public AttentionCaptureSite {
public:
    WindowAttentionImpl(std::int64_t dim, std::int64_t numHeads, std::int64_t headDim,
                        std::array<std::int64_t, 2> window, bool qkvBias, double attnDrop, double projDrop);
    /// `windows` (batch * windows, area, dim); `mask` (windows, area, area) or undefined.
    torch::Tensor forward(const torch::Tensor& windows, const torch::Tensor& mask = {});

    torch::Tensor relative_position_bias_table;
    torch::nn::Linear qkv{nullptr}, proj{nullptr};

private:
    torch::Tensor relativePositionBias();

    std::int64_t m_numHeads;
    std::int64_t m_headDim;
    std::array<std::int64_t, 2> m_window;
    double m_attnDrop;
    double m_projDrop;
    /// Not a buffer (timm's is non-persistent): computed once, moved to the table's device on use.
    torch::Tensor m_relativeIndex;
};
TORCH_MODULE(WindowAttention);

/// norm1, (shifted) window attention, residual; norm2, MLP, residual. Channels-last in and out.
class SwinTransformerBlockImpl : public torch::nn::Module {
public:
    SwinTransformerBlockImpl(std::int64_t dim, std::int64_t numHeads, std::int64_t headDim,
                             const WindowGeometry& geometry, const SwinOptions& options, double dropPath);
    torch::Tensor forward(const torch::Tensor& x);
    const WindowGeometry& geometry() const { return m_geometry; }

    torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
    WindowAttention attn{nullptr};
    Mlp mlp{nullptr};
    DropPath drop_path1{nullptr}, drop_path2{nullptr};

private:
    torch::Tensor windowAttention(const torch::Tensor& x);
    /// The shifted-window mask on the input's device and dtype, rebuilt only when those change.
    const torch::Tensor& maskFor(const torch::Tensor& x);

    WindowGeometry m_geometry;
    torch::Tensor m_mask;
    torch::Tensor m_maskOnDevice;
};
TORCH_MODULE(SwinTransformerBlock);

/// Concatenates each 2x2 neighbourhood (4C), normalises it and projects to `outDim` without bias.
class PatchMergingImpl : public torch::nn::Module {
public:
    PatchMergingImpl(std::int64_t dim, std::int64_t outDim);
    torch::Tensor forward(const torch::Tensor& x);

    torch::nn::LayerNorm norm{nullptr};
    torch::nn::Linear reduction{nullptr};
};
TORCH_MODULE(PatchMerging);

/// One stage: patch merging first (every stage but the first), then the blocks.
class SwinTransformerStageImpl : public torch::nn::Module {
public:
    SwinTransformerStageImpl(const SwinOptions& options, std::int64_t stage, const std::vector<double>& dropPaths);
    torch::Tensor forward(torch::Tensor x);

    PatchMerging downsample{nullptr};
    torch::nn::ModuleList blocks{nullptr};
};
TORCH_MODULE(SwinTransformerStage);

/// timm's PatchEmbed with a norm and NHWC output: images to (N, h, w, embed_dim).
class SwinPatchEmbedImpl : public torch::nn::Module {
public:
    SwinPatchEmbedImpl(std::int64_t patchSize, std::int64_t inChannels, std::int64_t embedDim);
    torch::Tensor forward(const torch::Tensor& images);

    torch::nn::Conv2d proj{nullptr};
    torch::nn::LayerNorm norm{nullptr};
};
TORCH_MODULE(SwinPatchEmbed);

/// timm's ClassifierHead for NHWC features: average over H and W, dropout, "fc" (absent for 0 classes).
class SwinClassifierHeadImpl : public torch::nn::Module {
public:
    SwinClassifierHeadImpl(std::int64_t features, std::int64_t classes, double dropRate);
    torch::Tensor forward(const torch::Tensor& features, bool preLogits = false);
    void reset(std::int64_t classes);

    torch::nn::Linear fc{nullptr};

private:
    std::int64_t m_features;
    double m_dropRate;
};
TORCH_MODULE(SwinClassifierHead);

class SwinTransformerImpl : public ClassifierImpl {
public:
    explicit SwinTransformerImpl(const SwinOptions& options);

    /// The final normalised grid, channels-last (N, H, W, C).
    torch::Tensor forward_features(const torch::Tensor& images) override;
    torch::Tensor forward_head(const torch::Tensor& features, bool preLogits = false) override;

    std::int64_t numClasses() const override { return m_options.num_classes; }
    void resetClassifier(std::int64_t classes) override;
    /// Stages: freezing N freezes the patch embedding and stages 0..N-1 (with their merging).
    int numUnits() const override { return static_cast<int>(m_options.numStages()); }
    ParameterGroup parameterGroup(const std::string& parameterName) const override;
    /// timm's checkpoint_filter_fn: drops stored index and mask buffers, renames the old layout
    /// (merging at the end of a stage, "head.*"), resizes bias tables to this model's windows and
    /// adapts the patch embedding to the input channels.
    void adaptStateDict(StateDict& stateDict, std::vector<std::string>& notes) const override;

    const SwinOptions& options() const { return m_options; }
    SwinTransformerBlockImpl& block(std::int64_t stage, std::int64_t index) const;

    SwinPatchEmbed patch_embed{nullptr};
    torch::nn::ModuleList layers{nullptr};
    torch::nn::LayerNorm norm{nullptr};
    SwinClassifierHead head{nullptr};

private:
    SwinOptions m_options;
};
TORCH_MODULE(SwinTransformer);

void registerSwinFamily(ModelRegistry& registry);

} // namespace vitlab
