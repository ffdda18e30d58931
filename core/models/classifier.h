#pragma once

#include <torch/torch.h>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace vitlab {

using StateDict = std::map<std::string, torch::Tensor>;

/// What a parameter belongs to, for freezing and layer-wise learning rates.
struct ParameterGroup {
    enum class Role { Stem, Unit, Head };
    Role role = Role::Stem;
    /// For Role::Unit: the block (ViT, DeiT, TNT, hybrid) or stage (Swin) index, from the input side.
    int unit = 0;
};

/// Implemented by every attention module, so inspection can switch all of them to the explicit
/// path that materialises the softmax map. Off by default: capturing costs nothing when off.
class AttentionCaptureSite {
public:
    virtual ~AttentionCaptureSite() = default;
    void setCapture(bool on)
    {
        m_capture = on;
        if (!on)
            m_captured = torch::Tensor();
    }
    bool capturing() const { return m_capture; }
    /// The last softmax attention, (batch*windows, heads, queries, keys); empty when not capturing.
    const torch::Tensor& captured() const { return m_captured; }

protected:
    /// softmax(q k^T * scale + additive) v for (N, heads, tokens, head_dim) inputs, `additive`
    /// (optional) broadcasting to (N, heads, queries, keys). LibTorch 2's fused kernel unless
    /// capturing; the explicit path keeps the softmax map when capturing.
    torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                         double dropout, bool training, const torch::Tensor& additive = {});

private:
    bool m_capture = false;
    torch::Tensor m_captured;
};

/// The common face of every family: timm's split of forward_features and forward_head, the
/// classifier head, the grouping of parameters and the checkpoint filter.
class ClassifierImpl : public torch::nn::Module {
public:
    /// Images (N, C, H, W) to the final features (tokens or a feature map, family-specific).
    virtual torch::Tensor forward_features(const torch::Tensor& images) = 0;
    /// Features to logits (N, classes), or to the pooled features when `preLogits`.
    virtual torch::Tensor forward_head(const torch::Tensor& features, bool preLogits = false) = 0;
    torch::Tensor forward(const torch::Tensor& images) { return forward_head(forward_features(images)); }

    virtual std::int64_t numClasses() const = 0;
    /// Replaces the head by a freshly initialised one for `classes` outputs (0: no head).
    virtual void resetClassifier(std::int64_t classes) = 0;

    /// Blocks (or stages) that "freeze the first N" counts.
    virtual int numUnits() const = 0;
    virtual ParameterGroup parameterGroup(const std::string& parameterName) const = 0;

    /// timm's checkpoint filter: adapts a state dict written for another image size, window,
    /// channel count or layout to this model, in place, appending a note for each change.
    virtual void adaptStateDict(StateDict& stateDict, std::vector<std::string>& notes) const
    {
        (void)stateDict;
        (void)notes;
    }

    /// Image size the model was built for (height, width) and its input channels.
    std::array<std::int64_t, 2> imageSize() const { return m_imageSize; }
    std::int64_t inputChannels() const { return m_inputChannels; }

    /// Every attention module, in the order the input passes them.
    std::vector<AttentionCaptureSite*> attentionSites();
    void setAttentionCapture(bool on);

protected:
    std::array<std::int64_t, 2> m_imageSize{224, 224};
    std::int64_t m_inputChannels = 3;
};

using Classifier = std::shared_ptr<ClassifierImpl>;

/// The model's parameters and persistent buffers by timm key, as a checkpoint holds them.
StateDict stateDictOf(const ClassifierImpl& model);

/// Checks an image batch against what the model was built for; throws ShapeError otherwise.
void checkImageBatch(const ClassifierImpl& model, const torch::Tensor& images);

} // namespace vitlab
