#include "core/models/layers.h"

#include "core/errors.h"
#include "core/models/fused_bf16.h"
#include "core/torch_compat.h"

#include <atomic>
#include <cmath>

namespace vitlab {

namespace F = torch::nn::functional;

void truncNormal_(torch::Tensor tensor, double std, double a, double b)
{
    torch::NoGradGuard noGrad;
    if (a <= -6.0 * std && b >= 6.0 * std) {
        // Bounds beyond six standard deviations (timm's usual +-2 for std 0.02) never cut: a
        // plain normal is the same distribution and much faster than the inverse CDF.
        tensor.normal_(0.0, std).clamp_(a, b);
        return;
    }
    // Inverse-CDF sampling, as PyTorch's Python trunc_normal_.
    const auto normalCdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
    const double low = normalCdf(a / std);
    const double high = normalCdf(b / std);
    tensor.uniform_(2 * low - 1, 2 * high - 1);
    tensor.erfinv_();
    tensor.mul_(std * std::sqrt(2.0));
    tensor.clamp_(a, b);
}

bool cpuBf16ConvolutionSumsInFloat()
{
    // One answer per oneDNN setting, which decides the kernel (tests switch it).
    static std::atomic<int> known[2] = {-1, -1};
    auto& answer = known[at::globalContext().userEnabledMkldnn() ? 1 : 0];
    if (answer.load() < 0) {
        const compat::AutocastGuard noAutocast(c10::DeviceType::CPU, at::kBFloat16, /*enabled=*/false);
        c10::InferenceMode inference;
        const auto ones = torch::ones({1, 64, 3, 3}, torch::kBFloat16);
        const double sum = torch::conv2d(ones, ones).item<double>();
        answer = std::abs(sum - 576.0) <= 0.01 * 576.0 ? 1 : 0;
    }
    return answer.load() == 1;
}

namespace {

/// True when a convolution of `x` would be a CPU bfloat16 one that sums in bfloat16.
bool convolutionNeedsFloat32(const torch::Tensor& x)
{
    return x.is_cpu() && compat::cpuAutocastDtype() == at::kBFloat16 && !cpuBf16ConvolutionSumsInFloat();
}

} // namespace

torch::Tensor conv2dWithFloatSums(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                  torch::IntArrayRef stride, torch::IntArrayRef padding)
{
    if (convolutionNeedsFloat32(x)) {
        const compat::AutocastGuard noAutocast(c10::DeviceType::CPU, at::kBFloat16, /*enabled=*/false);
        return torch::conv2d(x.to(torch::kFloat32), weight.to(torch::kFloat32),
                             bias.defined() ? bias.to(torch::kFloat32) : bias, stride, padding);
    }
    return torch::conv2d(x, weight, bias, stride, padding);
}

torch::Tensor applyConv2d(torch::nn::Conv2d& layer, const torch::Tensor& x)
{
    if (convolutionNeedsFloat32(x)) {
        // The layer's parameters are float32: without autocast it convolves in float32.
        const compat::AutocastGuard noAutocast(c10::DeviceType::CPU, at::kBFloat16, /*enabled=*/false);
        return layer->forward(x.to(torch::kFloat32));
    }
    return layer->forward(x);
}

void initLinearTimm(torch::nn::Linear& linear)
{
    truncNormal_(linear->weight, 0.02);
    if (linear->bias.defined()) {
        torch::NoGradGuard noGrad;
        linear->bias.zero_();
    }
}

torch::Tensor DropPathImpl::forward(const torch::Tensor& x)
{
    if (m_probability == 0.0 || !is_training())
        return x;
    const double keep = 1.0 - m_probability;
    std::vector<std::int64_t> shape(x.dim(), 1);
    shape[0] = x.size(0);
    const auto mask = torch::empty(shape, x.options()).bernoulli_(keep);
    return x * mask.div_(keep);
}

LayerScaleImpl::LayerScaleImpl(std::int64_t dim, double initValue)
{
    gamma = register_parameter("gamma", torch::full({dim}, initValue));
}

MlpImpl::MlpImpl(const MlpOptions& options)
    : m_drop(options.drop())
{
    const auto out = options.out_features() > 0 ? options.out_features() : options.in_features();
    fc1 = register_module("fc1", torch::nn::Linear(options.in_features(), options.hidden_features()));
    fc2 = register_module("fc2", torch::nn::Linear(options.hidden_features(), out));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x)
{
    // Training in bf16, and float32 through oneDNN: the bias, the GELU and their gradients in one
    // fused pass each.
    const auto activated = fused::bf16TrainingApplies(x) ? fused::biasGelu(torch::linear(x, fc1->weight), fc1->bias)
        : onednnLinearApplies(x, fc1->weight)            ? fused::biasGelu(onednnLinear(x, fc1->weight, {}), fc1->bias)
                                                         : torch::gelu(applyLinear(fc1, x));
    const auto hidden = applyDropout(activated, m_drop, is_training());
    return applyDropout(applyLinear(fc2, hidden), m_drop, is_training());
}

torch::Tensor MlpImpl::forwardBf16WithoutOutputBias(const torch::Tensor& x)
{
    // linear without bias on 2-D input is one mm; autocast casts the weight once per scope.
    auto hidden = torch::linear(x.reshape({-1, x.size(-1)}), fc1->weight);
    fused::biasGelu_(hidden, fc1->bias);
    return torch::linear(hidden, fc2->weight);
}

AttentionImpl::AttentionImpl(const AttentionOptions& options)
    : m_numHeads(options.num_heads())
    , m_headDim(options.dim() / options.num_heads())
    , m_scale(1.0 / std::sqrt(static_cast<double>(options.dim() / options.num_heads())))
    , m_attnDrop(options.attn_drop())
    , m_projDrop(options.proj_drop())
{
    if (options.num_heads() < 1 || options.dim() % options.num_heads() != 0)
        throw ConfigError("embedding width " + std::to_string(options.dim()) + " is not divisible by "
                          + std::to_string(options.num_heads()) + " heads");
    qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(options.dim(), 3 * options.dim())
                                                       .bias(options.qkv_bias())));
    if (options.qk_norm()) {
        q_norm = register_module("q_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({m_headDim}).eps(1e-6)));
        k_norm = register_module("k_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({m_headDim}).eps(1e-6)));
    }
    proj = register_module("proj", torch::nn::Linear(options.dim(), options.dim()));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x)
{
    const auto batch = x.size(0);
    const auto tokens = x.size(1);
    const auto dim = x.size(2);
    // unbind, not three selects: each select's backward fills a zero tensor the size of all of
    // qkv, unbind's backward stacks the three gradients once.
    const auto qkvSplit =
        applyLinear(qkv, x).reshape({batch, tokens, 3, m_numHeads, m_headDim}).permute({2, 0, 3, 1, 4}).unbind(0);
    auto q = qkvSplit[0];
    auto k = qkvSplit[1];
    const auto v = qkvSplit[2];
    if (q_norm) {
        q = q_norm(q);
        k = k_norm(k);
    }
    auto out = attend(q, k, v, m_scale, m_attnDrop, is_training());
    out = applyLinear(proj, out.transpose(1, 2).reshape({batch, tokens, dim}));
    return applyDropout(out, m_projDrop, is_training());
}

torch::Tensor AttentionImpl::forwardBf16WithoutOutputBias(const torch::Tensor& x)
{
    const auto batch = x.size(0);
    const auto tokens = x.size(1);
    const auto dim = x.size(2);
    // The qkv bias goes into the copy that gives q, k and v their own contiguous (batch, heads,
    // tokens, head_dim) storage, which the batched products then read without further copies.
    const auto qkvProduct = torch::linear(x.reshape({batch * tokens, dim}), qkv->weight);
    const auto [q, k, v] = fused::splitHeads(qkvProduct, qkv->bias, batch, m_numHeads);
    const auto out = attend(q, k, v, m_scale, 0.0, false);
    return torch::linear(out.transpose(1, 2).reshape({batch * tokens, dim}), proj->weight);
}

BlockImpl::BlockImpl(const BlockOptions& options)
{
    const auto layerNorm = [&] {
        return torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.dim()}).eps(options.norm_eps()));
    };
    norm1 = register_module("norm1", layerNorm());
    attn = register_module("attn", Attention(AttentionOptions(options.dim(), options.num_heads())
                                                 .qkv_bias(options.qkv_bias())
                                                 .qk_norm(options.qk_norm())
                                                 .attn_drop(options.attn_drop())
                                                 .proj_drop(options.proj_drop())));
    if (options.init_values() > 0.0) {
        ls1 = register_module("ls1", LayerScale(options.dim(), options.init_values()));
        ls2 = register_module("ls2", LayerScale(options.dim(), options.init_values()));
    }
    drop_path1 = register_module("drop_path1", DropPath(options.drop_path()));
    norm2 = register_module("norm2", layerNorm());
    const auto hidden = static_cast<std::int64_t>(options.dim() * options.mlp_ratio());
    mlp = register_module("mlp", Mlp(MlpOptions(options.dim(), hidden).drop(options.proj_drop())));
    drop_path2 = register_module("drop_path2", DropPath(options.drop_path()));
}

namespace {

/// `norm`(x) for a block's two norms, which feed products: those run in bf16 when training under
/// bf16 autocast, and then the fused norm writes bf16 at once, where ATen's writes float32 for
/// autocast to cast.
torch::Tensor applyNorm(torch::nn::LayerNorm& norm, const torch::Tensor& x)
{
    if (fused::bf16TrainingApplies(x) && x.scalar_type() == torch::kFloat32)
        return fused::trainableLayerNormToBf16(x, norm->weight, norm->bias, norm->options.eps());
    return norm(x);
}

} // namespace

torch::Tensor BlockImpl::forward(const torch::Tensor& input)
{
    if (fusedBf16Eligible() && fused::bf16InferenceApplies(input)) {
        const auto normed1 = fused::layerNormToBf16(input, norm1->weight, norm1->bias, norm1->options.eps());
        return forwardFusedBf16(input, normed1, nullptr).first;
    }
    auto branch = attn(applyNorm(norm1, input));
    auto x = input + drop_path1(ls1 ? ls1(branch) : branch);
    branch = mlp(applyNorm(norm2, x));
    return x + drop_path2(ls2 ? ls2(branch) : branch);
}

bool BlockImpl::fusedBf16Eligible() const
{
    return !is_training() && !ls1 && !attn->q_norm && !attn->capturing();
}

std::pair<torch::Tensor, torch::Tensor> BlockImpl::forwardFusedBf16(const torch::Tensor& x, const torch::Tensor& normed1,
                                                                     const torch::nn::LayerNorm& nextNorm)
{
    const auto [afterAttention, normed2] =
        fused::addResidualLayerNormToBf16(x, attn->forwardBf16WithoutOutputBias(normed1), attn->proj->bias,
                                          norm2->weight, norm2->bias, norm2->options.eps());
    const auto mlpOut = mlp->forwardBf16WithoutOutputBias(normed2);
    if (!nextNorm)
        return {fused::addResidual(afterAttention, mlpOut, mlp->fc2->bias), torch::Tensor()};
    return fused::addResidualLayerNormToBf16(afterAttention, mlpOut, mlp->fc2->bias, nextNorm->weight, nextNorm->bias,
                                             nextNorm->options.eps());
}

PatchEmbedImpl::PatchEmbedImpl(std::array<std::int64_t, 2> imageSize, std::int64_t patchSize,
                               std::int64_t inChannels, std::int64_t embedDim, bool flatten, bool bias)
    : m_flatten(flatten)
{
    if (patchSize < 1 || imageSize[0] % patchSize != 0 || imageSize[1] % patchSize != 0)
        throw ConfigError("image size " + std::to_string(imageSize[0]) + "x" + std::to_string(imageSize[1])
                          + " is not divisible by the patch size " + std::to_string(patchSize));
    m_grid = {imageSize[0] / patchSize, imageSize[1] / patchSize};
    proj = register_module(
        "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(inChannels, embedDim, patchSize).stride(patchSize).bias(bias)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images)
{
    auto x = applyConv2d(proj, images);
    return m_flatten ? x.flatten(2).transpose(1, 2) : x;
}

std::vector<double> dropPathRates(double maxRate, std::int64_t depth)
{
    std::vector<double> rates(static_cast<std::size_t>(depth), 0.0);
    for (std::int64_t i = 0; i < depth && depth > 1; ++i)
        rates[static_cast<std::size_t>(i)] = maxRate * static_cast<double>(i) / static_cast<double>(depth - 1);
    return rates;
}

torch::Tensor resamplePositionEmbedding(const torch::Tensor& posEmbed, std::array<std::int64_t, 2> newGrid,
                                        std::int64_t numPrefixTokens)
{
    const auto gridTokens = posEmbed.size(1) - numPrefixTokens;
    const auto oldSide = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(gridTokens))));
    if (oldSide * oldSide != gridTokens)
        throw ShapeError("the checkpoint's position embedding has " + std::to_string(gridTokens)
                         + " grid tokens, which is not a square grid");
    if (oldSide == newGrid[0] && oldSide == newGrid[1])
        return posEmbed;
    const auto prefix = posEmbed.narrow(1, 0, numPrefixTokens);
    const auto dim = posEmbed.size(2);
    auto grid = posEmbed.narrow(1, numPrefixTokens, gridTokens).to(torch::kFloat32);
    grid = grid.reshape({1, oldSide, oldSide, dim}).permute({0, 3, 1, 2});
    grid = F::interpolate(grid, F::InterpolateFuncOptions()
                                    .size(std::vector<std::int64_t>{newGrid[0], newGrid[1]})
                                    .mode(torch::kBicubic)
                                    .align_corners(false)
                                    .antialias(true));
    grid = grid.permute({0, 2, 3, 1}).reshape({1, newGrid[0] * newGrid[1], dim}).to(posEmbed.dtype());
    return torch::cat({prefix, grid}, 1);
}

torch::Tensor adaptInputConv(const torch::Tensor& weight, std::int64_t inChannels)
{
    const auto fromChannels = weight.size(1);
    if (fromChannels == inChannels)
        return weight;
    const auto original = weight.scalar_type();
    auto w = weight.to(torch::kFloat32);
    if (inChannels == 1) {
        w = w.sum(1, /*keepdim=*/true);
    } else if (fromChannels == 3) {
        const auto repeat = (inChannels + 2) / 3;
        w = w.repeat({1, repeat, 1, 1}).narrow(1, 0, inChannels) * (3.0 / static_cast<double>(inChannels));
    } else {
        throw ShapeError("cannot adapt a " + std::to_string(fromChannels) + "-channel input layer to "
                         + std::to_string(inChannels) + " channels");
    }
    return w.to(original);
}

} // namespace vitlab
