#include "core/models/fused_bf16.h"

#include "core/models/parallel_grain.h"
#include "core/torch_compat.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

// The row loops below are plain C++ that GCC vectorises; the project builds for baseline x86-64,
// so each row kernel is also compiled for AVX2 and AVX-512 and picked at load time.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define VITLAB_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VITLAB_VECTOR_CLONES
#endif

namespace vitlab::fused {

namespace {

using Bf16Bits = std::uint16_t;

inline float bf16ToFloat(Bf16Bits value)
{
    const std::uint32_t bits = static_cast<std::uint32_t>(value) << 16;
    float result;
    std::memcpy(&result, &bits, sizeof result);
    return result;
}

/// Round to nearest even, as c10::BFloat16; NaN stays a quiet NaN.
inline Bf16Bits floatToBf16(float value)
{
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    const std::uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
    return static_cast<Bf16Bits>(value != value ? 0x7fc0u : rounded);
}

/// 2^y for y <= 0 (softmax and GELU only need that half), relative error < 3e-6, far below
/// bf16's 4e-3: 2^n times a degree-5 polynomial for 2^f, f = y - n in [-1/2, 1/2]. Written
/// without branches or clamps so that GCC vectorises it for every instruction set.
inline float exp2NonPositive(float y)
{
    constexpr float roundingShift = 12582912.0f; // 1.5 * 2^23: adding it rounds to an integer
    const float shifted = y + roundingShift;
    const float f = y - (shifted - roundingShift);
    // Taylor coefficients of e^(f ln 2): (ln 2)^k / k!.
    float p = 1.3333558146e-3f;
    p = p * f + 9.6181291076e-3f;
    p = p * f + 5.5504108665e-2f;
    p = p * f + 2.4022650696e-1f;
    p = p * f + 6.9314718056e-1f;
    p = p * f + 1.0f;
    std::int32_t shiftedBits;
    std::memcpy(&shiftedBits, &shifted, sizeof shiftedBits);
    std::int32_t roundingBits;
    std::memcpy(&roundingBits, &roundingShift, sizeof roundingBits);
    const std::int32_t scaleBits = (shiftedBits - roundingBits + 127) * (1 << 23);
    float scale;
    std::memcpy(&scale, &scaleBits, sizeof scale);
    const float result = p * scale;
    // Below -126, 2^n leaves the normal range: flush to 0 with a bit mask. A select on a float
    // result is control flow that GCC, keeping FP traps exact, vectorises for AVX-512 only.
    std::uint32_t resultBits;
    std::memcpy(&resultBits, &result, sizeof resultBits);
    resultBits &= y >= -126.0f ? 0xffffffffu : 0u;
    float flushed;
    std::memcpy(&flushed, &resultBits, sizeof flushed);
    return flushed;
}

constexpr float kLog2e = 1.44269504088896341f;

/// The standard normal distribution at x: Phi(x), through erfc of Abramowitz & Stegun 7.1.26
/// (|error| < 1.5e-7), and the density phi(x), which shares its exponential.
struct NormalAt {
    float cdf;
    float density;
};

/// Evaluating the tail directly keeps negative inputs free of cancellation.
inline NormalAt normalAt(float x)
{
    const float z = std::fabs(x) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.3275911f * z);
    float poly = 1.061405429f;
    poly = poly * t - 1.453152027f;
    poly = poly * t + 1.421413741f;
    poly = poly * t - 0.284496736f;
    poly = poly * t + 0.254829592f;
    const float gaussian = exp2NonPositive(-z * z * kLog2e); // exp(-x^2 / 2)
    const float halfTail = 0.5f * poly * t * gaussian;        // Phi(-|x|)
    return {0.5f + std::copysign(0.5f - halfTail, x), 0.39894228040143268f * gaussian};
}

/// Exact (erf) GELU, x * Phi(x).
inline float gelu(float x)
{
    return x * normalAt(x).cdf;
}

/// d gelu / dx = Phi(x) + x * phi(x).
inline float geluDerivative(float x)
{
    const auto normal = normalAt(x);
    return normal.cdf + x * normal.density;
}

// GCC vectorises a float reduction only if it may reorder it; these keep 16 partial results
// side by side instead, which vectorises as plain element-wise work and stays deterministic.
constexpr std::int64_t kLanes = 16;

inline float sumOf(const float* values, std::int64_t n)
{
    float lanes[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (std::int64_t j = 0; j < kLanes; ++j)
            lanes[j] += values[i + j];
    float total = 0.0f;
    for (; i < n; ++i)
        total += values[i];
    for (std::int64_t j = 0; j < kLanes; ++j)
        total += lanes[j];
    return total;
}

inline float squaredDeviationsOf(const float* values, float mean, std::int64_t n)
{
    float lanes[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (std::int64_t j = 0; j < kLanes; ++j)
            lanes[j] += (values[i + j] - mean) * (values[i + j] - mean);
    float total = 0.0f;
    for (; i < n; ++i)
        total += (values[i] - mean) * (values[i] - mean);
    for (std::int64_t j = 0; j < kLanes; ++j)
        total += lanes[j];
    return total;
}

/// The largest of n bf16 values, compared as integers: with the magnitude bits of negative
/// values flipped, the bits order as the numbers do, and an integer maximum vectorises where a
/// float one (NaN rules) does not.
inline float maximumOf(const Bf16Bits* values, std::int64_t n)
{
    const auto orderKey = [](Bf16Bits v) {
        return static_cast<std::int16_t>(v ^ ((v >> 15) * 0x7fff));
    };
    std::int16_t lanes[kLanes];
    std::fill(lanes, lanes + kLanes, std::numeric_limits<std::int16_t>::min());
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (std::int64_t j = 0; j < kLanes; ++j)
            lanes[j] = std::max(lanes[j], orderKey(values[i + j]));
    std::int16_t result = std::numeric_limits<std::int16_t>::min();
    for (; i < n; ++i)
        result = std::max(result, orderKey(values[i]));
    for (std::int64_t j = 0; j < kLanes; ++j)
        result = std::max(result, lanes[j]);
    const auto bits = static_cast<Bf16Bits>(result);
    return bf16ToFloat(static_cast<Bf16Bits>(bits ^ ((bits >> 15) * 0x7fff)));
}

/// A row's mean and 1 / standard deviation, as LayerNorm computes them.
struct RowStats {
    float mean;
    float invStd;
};

/// `out` = bf16 of LayerNorm(`row`) with weight and bias (float, length n); returns the row's statistics.
VITLAB_VECTOR_CLONES RowStats layerNormRow(const float* row, const float* weight, const float* bias, float eps,
                                           std::int64_t n, Bf16Bits* out)
{
    const float mean = sumOf(row, n) / static_cast<float>(n);
    const float invStd = 1.0f / std::sqrt(squaredDeviationsOf(row, mean, n) / static_cast<float>(n) + eps);
    for (std::int64_t i = 0; i < n; ++i)
        out[i] = floatToBf16((row[i] - mean) * invStd * weight[i] + bias[i]);
    return {mean, invStd};
}

/// The gradient of a LayerNorm row of n from its bf16 output gradient `gradOut`: the float input
/// gradient into `gradIn`, and gradOut * x-hat and gradOut added to the weight and bias gradients.
/// With y-hat = gradOut * weight: gradIn = invStd * (y-hat - mean(y-hat) - x-hat * mean(y-hat * x-hat)).
VITLAB_VECTOR_CLONES void layerNormBackwardRow(const float* row, RowStats stats, const float* weight,
                                               const Bf16Bits* gradOut, std::int64_t n, float* gradIn,
                                               float* weightGrad, float* biasGrad)
{
    float lanesWeighted[kLanes] = {};
    float lanesProjected[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        for (std::int64_t j = 0; j < kLanes; ++j) {
            const float normed = (row[i + j] - stats.mean) * stats.invStd;
            const float grad = bf16ToFloat(gradOut[i + j]);
            const float weighted = grad * weight[i + j];
            lanesWeighted[j] += weighted;
            lanesProjected[j] += weighted * normed;
            weightGrad[i + j] += grad * normed;
            biasGrad[i + j] += grad;
        }
    }
    float sumWeighted = 0.0f;
    float sumProjected = 0.0f;
    for (; i < n; ++i) {
        const float normed = (row[i] - stats.mean) * stats.invStd;
        const float grad = bf16ToFloat(gradOut[i]);
        sumWeighted += grad * weight[i];
        sumProjected += grad * weight[i] * normed;
        weightGrad[i] += grad * normed;
        biasGrad[i] += grad;
    }
    for (std::int64_t j = 0; j < kLanes; ++j) {
        sumWeighted += lanesWeighted[j];
        sumProjected += lanesProjected[j];
    }
    const float meanWeighted = sumWeighted / static_cast<float>(n);
    const float meanProjected = sumProjected / static_cast<float>(n);
    for (i = 0; i < n; ++i) {
        const float normed = (row[i] - stats.mean) * stats.invStd;
        gradIn[i] = stats.invStd * (bf16ToFloat(gradOut[i]) * weight[i] - meanWeighted - normed * meanProjected);
    }
}

/// sum = x + bf16 branch + branch bias (float), over a row of n.
VITLAB_VECTOR_CLONES void addResidualRow(const float* x, const Bf16Bits* branch, const float* branchBias,
                                         std::int64_t n, float* sum)
{
    for (std::int64_t i = 0; i < n; ++i)
        sum[i] = x[i] + bf16ToFloat(branch[i]) + branchBias[i];
}

/// One token's qkv row: segment s of `length` values goes to targets[s], as bf16(src + bias).
VITLAB_VECTOR_CLONES void splitTokenRow(const Bf16Bits* src, const float* bias, std::int64_t segments,
                                        std::int64_t length, Bf16Bits* const* targets)
{
    for (std::int64_t s = 0; s < segments; ++s) {
        Bf16Bits* dst = targets[s];
        for (std::int64_t i = 0; i < length; ++i)
            dst[i] = floatToBf16(bf16ToFloat(src[s * length + i]) + bias[s * length + i]);
    }
}

/// `out` = softmax(scale * row) over n values, through the float buffer `work` of n; `out` may be `row`.
VITLAB_VECTOR_CLONES void scaledSoftmaxRow(const Bf16Bits* row, float scale, std::int64_t n, float* work,
                                           Bf16Bits* out)
{
    const float maximum = maximumOf(row, n);
    const float log2Scale = scale * kLog2e;
    for (std::int64_t i = 0; i < n; ++i)
        work[i] = exp2NonPositive((bf16ToFloat(row[i]) - maximum) * log2Scale);
    const float inverse = 1.0f / sumOf(work, n);
    for (std::int64_t i = 0; i < n; ++i)
        out[i] = floatToBf16(work[i] * inverse);
}

/// The gradient of softmax(scale * s) over a row of n, from its bf16 output `probabilities` and
/// their gradient: gradIn = scale * p * (gradOut - sum(gradOut * p)), in bf16.
VITLAB_VECTOR_CLONES void scaledSoftmaxBackwardRow(const Bf16Bits* probabilities, const Bf16Bits* gradOut, float scale,
                                                   std::int64_t n, Bf16Bits* gradIn)
{
    float lanes[kLanes] = {};
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (std::int64_t j = 0; j < kLanes; ++j)
            lanes[j] += bf16ToFloat(gradOut[i + j]) * bf16ToFloat(probabilities[i + j]);
    float dot = 0.0f;
    for (; i < n; ++i)
        dot += bf16ToFloat(gradOut[i]) * bf16ToFloat(probabilities[i]);
    for (std::int64_t j = 0; j < kLanes; ++j)
        dot += lanes[j];
    for (i = 0; i < n; ++i)
        gradIn[i] = floatToBf16(scale * bf16ToFloat(probabilities[i]) * (bf16ToFloat(gradOut[i]) - dot));
}

/// out = gelu(row + bias) over n values; `out` may be `row`.
VITLAB_VECTOR_CLONES void biasGeluRow(const Bf16Bits* row, const float* bias, std::int64_t n, Bf16Bits* out)
{
    for (std::int64_t i = 0; i < n; ++i)
        out[i] = floatToBf16(gelu(bf16ToFloat(row[i]) + bias[i]));
}

/// The gradient of gelu(row + bias) over n values: gradIn = gradOut * gelu'(row + bias), in
/// bf16, its float values also added to `biasGrad`.
VITLAB_VECTOR_CLONES void biasGeluBackwardRow(const Bf16Bits* row, const float* bias, const Bf16Bits* gradOut,
                                              std::int64_t n, Bf16Bits* gradIn, float* biasGrad)
{
    for (std::int64_t i = 0; i < n; ++i) {
        const float grad = bf16ToFloat(gradOut[i]) * geluDerivative(bf16ToFloat(row[i]) + bias[i]);
        gradIn[i] = floatToBf16(grad);
        biasGrad[i] += grad;
    }
}

/// The float32 forms of the two rows above, for training in float32.
VITLAB_VECTOR_CLONES void biasGeluRow(const float* row, const float* bias, std::int64_t n, float* out)
{
    for (std::int64_t i = 0; i < n; ++i)
        out[i] = gelu(row[i] + bias[i]);
}

VITLAB_VECTOR_CLONES void biasGeluBackwardRow(const float* row, const float* bias, const float* gradOut,
                                              std::int64_t n, float* gradIn, float* biasGrad)
{
    for (std::int64_t i = 0; i < n; ++i) {
        const float grad = gradOut[i] * geluDerivative(row[i] + bias[i]);
        gradIn[i] = grad;
        biasGrad[i] += grad;
    }
}

Bf16Bits* bf16Data(torch::Tensor& t) { return reinterpret_cast<Bf16Bits*>(t.data_ptr<at::BFloat16>()); }
const Bf16Bits* bf16Data(const torch::Tensor& t)
{
    return reinterpret_cast<const Bf16Bits*>(t.data_ptr<at::BFloat16>());
}

/// A float32 contiguous copy of an optional per-channel vector; zeros when undefined.
torch::Tensor floatVector(const torch::Tensor& v, std::int64_t n)
{
    if (!v.defined())
        return torch::zeros({n});
    TORCH_CHECK(v.numel() == n, "per-channel vector of ", v.numel(), " values for ", n, " channels");
    return v.to(torch::kFloat32).contiguous();
}

/// The elements of a bf16 or float32 tensor, as the row kernels take them.
template <typename Element>
Element* elements(torch::Tensor& t);
template <>
Bf16Bits* elements<Bf16Bits>(torch::Tensor& t)
{
    return bf16Data(t);
}
template <>
float* elements<float>(torch::Tensor& t)
{
    return t.data_ptr<float>();
}

/// Calls `body` with a value of the row kernels' element type for a bf16 or float32 tensor.
template <typename Body>
void withElementType(torch::ScalarType type, Body&& body)
{
    if (type == torch::kBFloat16)
        body(Bf16Bits{});
    else
        body(float{});
}

/// out = gelu(in + bias) over rows of n bf16 or float values; `out` may be `in`.
template <typename Element>
void biasGeluRows(const Element* in, const float* bias, std::int64_t rows, std::int64_t n, Element* out)
{
    at::parallel_for(0, rows, parallelGrain(n), [&](std::int64_t begin, std::int64_t end) {
        for (auto r = begin; r < end; ++r)
            biasGeluRow(in + r * n, bias, n, out + r * n);
    });
}

void checkBf16(const torch::Tensor& t, const char* what)
{
    TORCH_CHECK(t.scalar_type() == torch::kBFloat16 && t.device().is_cpu(), what, " must be a bf16 CPU tensor");
}

/// The operands of `x + (branch + branchBias)`: the stream in float32, the bf16 branch, its bias and
/// the float32 sum to be written, all contiguous.
struct ResidualOperands {
    ResidualOperands(const torch::Tensor& x, const torch::Tensor& branch, const torch::Tensor& branchBias)
    {
        checkBf16(branch, "the residual branch");
        TORCH_CHECK(branch.numel() == x.numel(), "the residual branch has another size than the stream");
        width = x.size(-1);
        input = x.to(torch::kFloat32).contiguous();
        branchIn = branch.contiguous();
        bias = floatVector(branchBias, width);
        sum = torch::empty(x.sizes(), x.options().dtype(torch::kFloat32));
        inputData = input.data_ptr<float>();
        branchData = bf16Data(branchIn);
        biasData = bias.data_ptr<float>();
        sumData = sum.data_ptr<float>();
    }
    std::int64_t rows() const { return input.numel() / width; }
    /// Writes row `r` of the sum.
    void addRow(std::int64_t r) const
    {
        addResidualRow(inputData + r * width, branchData + r * width, biasData, width, sumData + r * width);
    }

    std::int64_t width = 0;
    torch::Tensor input;
    torch::Tensor branchIn;
    torch::Tensor bias;
    torch::Tensor sum;
    const float* inputData = nullptr;
    const Bf16Bits* branchData = nullptr;
    const float* biasData = nullptr;
    float* sumData = nullptr;
};

} // namespace

bool bf16InferenceApplies(const torch::Tensor& x)
{
    return !at::GradMode::is_enabled() && x.device().is_cpu() && x.scalar_type() == torch::kFloat32
        && compat::cpuAutocastDtype() == at::kBFloat16;
}

torch::Tensor layerNormToBf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              double eps)
{
    RECORD_FUNCTION("vitlab::fused::layerNormToBf16", std::vector<c10::IValue>());
    const auto n = x.size(-1);
    const auto input = x.to(torch::kFloat32).contiguous();
    const auto w = weight.defined() ? floatVector(weight, n) : torch::ones({n});
    const auto b = floatVector(bias, n);
    auto out = torch::empty(x.sizes(), x.options().dtype(torch::kBFloat16));
    const float* in = input.data_ptr<float>();
    Bf16Bits* dst = bf16Data(out);
    const float* wp = w.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    at::parallel_for(0, input.numel() / n, parallelGrain(n), [&](std::int64_t begin, std::int64_t end) {
        for (auto r = begin; r < end; ++r)
            layerNormRow(in + r * n, wp, bp, static_cast<float>(eps), n, dst + r * n);
    });
    return out;
}

std::pair<torch::Tensor, torch::Tensor> addResidualLayerNormToBf16(const torch::Tensor& x, const torch::Tensor& branch,
                                                                    const torch::Tensor& branchBias,
                                                                    const torch::Tensor& weight,
                                                                    const torch::Tensor& bias, double eps)
{
    RECORD_FUNCTION("vitlab::fused::addResidualLayerNormToBf16", std::vector<c10::IValue>());
    const ResidualOperands residual(x, branch, branchBias);
    const auto n = residual.width;
    const auto w = weight.defined() ? floatVector(weight, n) : torch::ones({n});
    const auto b = floatVector(bias, n);
    auto normed = torch::empty(x.sizes(), x.options().dtype(torch::kBFloat16));
    const float* wp = w.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    const float* sump = residual.sumData;
    Bf16Bits* dst = bf16Data(normed);
    at::parallel_for(0, residual.rows(), parallelGrain(n), [&](std::int64_t begin, std::int64_t end) {
        for (auto r = begin; r < end; ++r) {
            residual.addRow(r);
            layerNormRow(sump + r * n, wp, bp, static_cast<float>(eps), n, dst + r * n);
        }
    });
    return {residual.sum, normed};
}

torch::Tensor addResidual(const torch::Tensor& x, const torch::Tensor& branch, const torch::Tensor& branchBias)
{
    RECORD_FUNCTION("vitlab::fused::addResidual", std::vector<c10::IValue>());
    const ResidualOperands residual(x, branch, branchBias);
    at::parallel_for(0, residual.rows(), parallelGrain(residual.width), [&](std::int64_t begin, std::int64_t end) {
        for (auto r = begin; r < end; ++r)
            residual.addRow(r);
    });
    return residual.sum;
}

std::array<torch::Tensor, 3> splitHeads(const torch::Tensor& qkv, const torch::Tensor& bias, std::int64_t batch,
                                        std::int64_t heads)
{
    RECORD_FUNCTION("vitlab::fused::splitHeads", std::vector<c10::IValue>());
    checkBf16(qkv, "qkv");
    TORCH_CHECK(qkv.dim() == 2 && qkv.size(1) % (3 * heads) == 0 && qkv.size(0) % batch == 0,
                "qkv must be (batch*tokens, 3*heads*headDim)");
    const auto input = qkv.contiguous();
    const auto width = qkv.size(1);
    const auto dim = width / 3;
    const auto headDim = dim / heads;
    const auto tokens = qkv.size(0) / batch;
    const auto b = floatVector(bias, width);
    std::array<torch::Tensor, 3> parts;
    std::array<Bf16Bits*, 3> dst{};
    for (std::size_t i = 0; i < 3; ++i) {
        parts[i] = torch::empty({batch, heads, tokens, headDim}, qkv.options());
        dst[i] = bf16Data(parts[i]);
    }
    const Bf16Bits* src = bf16Data(input);
    const float* bp = b.data_ptr<float>();
    // A task per token row, read in order; its 3*heads segments go to their (image, head, token)
    // rows of q, k and v. (Copying a head's column block for all tokens at a time, strided
    // reads and contiguous writes, measured 5x slower here.)
    const auto segments = 3 * heads;
    at::parallel_for(0, batch * tokens, parallelGrain(width), [&](std::int64_t begin, std::int64_t end) {
        std::vector<Bf16Bits*> targets(static_cast<std::size_t>(segments));
        for (auto row = begin; row < end; ++row) {
            const auto image = row / tokens;
            const auto token = row % tokens;
            for (std::int64_t segment = 0; segment < segments; ++segment) {
                const auto part = static_cast<std::size_t>(segment / heads);
                const auto head = segment % heads;
                const auto offset = ((image * heads + head) * tokens + token) * headDim;
                targets[static_cast<std::size_t>(segment)] = dst[part] + offset;
            }
            splitTokenRow(src + row * width, bp, segments, headDim, targets.data());
        }
    });
    return parts;
}

namespace {

/// out = softmax(scale * in) over rows of n bf16 values; `out` may be `in`.
void scaledSoftmaxRows(const Bf16Bits* in, double scale, std::int64_t rows, std::int64_t n, Bf16Bits* out)
{
    at::parallel_for(0, rows, parallelGrain(n), [&](std::int64_t begin, std::int64_t end) {
        std::vector<float> work(static_cast<std::size_t>(n));
        for (auto r = begin; r < end; ++r)
            scaledSoftmaxRow(in + r * n, static_cast<float>(scale), n, work.data(), out + r * n);
    });
}

} // namespace

void scaledSoftmax_(torch::Tensor& scores, double scale)
{
    RECORD_FUNCTION("vitlab::fused::scaledSoftmax_", std::vector<c10::IValue>());
    checkBf16(scores, "scores");
    TORCH_CHECK(scores.is_contiguous() && scale > 0.0, "scaledSoftmax_ needs contiguous scores and a positive scale");
    const auto n = scores.size(-1);
    Bf16Bits* data = bf16Data(scores);
    scaledSoftmaxRows(data, scale, scores.numel() / n, n, data);
}

void biasGelu_(torch::Tensor& x, const torch::Tensor& bias)
{
    RECORD_FUNCTION("vitlab::fused::biasGelu_", std::vector<c10::IValue>());
    checkBf16(x, "the GELU input");
    TORCH_CHECK(x.is_contiguous(), "biasGelu_ needs a contiguous input");
    const auto n = x.size(-1);
    const auto b = floatVector(bias, n);
    Bf16Bits* data = bf16Data(x);
    biasGeluRows(data, b.data_ptr<float>(), x.numel() / n, n, data);
}

namespace {

/// Rows whose bias gradients are summed together before the blocks are: a fixed block keeps the
/// order of the sum, and so its value, the same whatever the thread count.
constexpr std::int64_t kBiasGradRows = 64;

/// Calls `row(r, block)` for each of `rows` rows of n values, in parallel over fixed blocks of
/// kBiasGradRows rows: a row adds its part of a per-channel gradient to its block's partial sum.
template <typename Row>
void forEachRowInGradientBlocks(std::int64_t rows, std::int64_t n, Row&& row)
{
    const auto blocks = (rows + kBiasGradRows - 1) / kBiasGradRows;
    const auto blockGrain = std::max<std::int64_t>(1, parallelGrain(n) / kBiasGradRows);
    at::parallel_for(0, blocks, blockGrain, [&](std::int64_t begin, std::int64_t end) {
        for (auto block = begin; block < end; ++block) {
            const auto last = std::min(rows, (block + 1) * kBiasGradRows);
            for (auto r = block * kBiasGradRows; r < last; ++r)
                row(r, block);
        }
    });
}

/// gelu(preActivation + bias) with its gradient, both one fused pass over bf16 or float32 rows.
class BiasGeluFunction : public torch::autograd::Function<BiasGeluFunction> {
public:
    static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& preActivation,
                                 const torch::Tensor& bias)
    {
        RECORD_FUNCTION("vitlab::fused::biasGelu", std::vector<c10::IValue>());
        TORCH_CHECK(preActivation.device().is_cpu()
                        && (preActivation.scalar_type() == torch::kBFloat16 || preActivation.scalar_type() == torch::kFloat32),
                    "the GELU input must be a bf16 or float32 CPU tensor");
        auto input = preActivation.contiguous();
        const auto n = input.size(-1);
        const auto b = floatVector(bias, n);
        auto out = torch::empty_like(input);
        withElementType(input.scalar_type(), [&](auto element) {
            using Element = decltype(element);
            biasGeluRows(elements<Element>(input), b.data_ptr<float>(), input.numel() / n, n, elements<Element>(out));
        });
        context->save_for_backward({input, b});
        return out;
    }

    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::tensor_list gradients)
    {
        RECORD_FUNCTION("vitlab::fused::biasGeluBackward", std::vector<c10::IValue>());
        if (!gradients[0].defined())
            return {torch::Tensor(), torch::Tensor()};
        const auto saved = context->get_saved_variables();
        const auto& input = saved[0];
        const auto& b = saved[1];
        const auto n = input.size(-1);
        const auto rows = input.numel() / n;
        auto gradOut = gradients[0].to(input.scalar_type()).contiguous();
        auto gradIn = torch::empty_like(input);
        const auto blocks = (rows + kBiasGradRows - 1) / kBiasGradRows;
        auto partialBiasGrad = torch::zeros({blocks, n});
        withElementType(input.scalar_type(), [&](auto element) {
            backwardRows<decltype(element)>(input, b, gradOut, gradIn, partialBiasGrad);
        });
        return {gradIn, partialBiasGrad.sum(0)};
    }

private:
    template <typename Element>
    static void backwardRows(torch::Tensor input, const torch::Tensor& b, torch::Tensor gradOut, torch::Tensor& gradIn,
                             torch::Tensor& partialBiasGrad)
    {
        const auto n = input.size(-1);
        const auto rows = input.numel() / n;
        const Element* in = elements<Element>(input);
        const Element* go = elements<Element>(gradOut);
        Element* gi = elements<Element>(gradIn);
        const float* bp = b.data_ptr<float>();
        float* partial = partialBiasGrad.data_ptr<float>();
        forEachRowInGradientBlocks(rows, n, [&](std::int64_t r, std::int64_t block) {
            biasGeluBackwardRow(in + r * n, bp, go + r * n, n, gi + r * n, partial + block * n);
        });
    }
};

/// LayerNorm of float32 rows written as bf16, with its gradient: one pass each way.
class LayerNormToBf16Function : public torch::autograd::Function<LayerNormToBf16Function> {
public:
    static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& x,
                                 const torch::Tensor& weight, const torch::Tensor& bias, double eps)
    {
        RECORD_FUNCTION("vitlab::fused::trainableLayerNormToBf16", std::vector<c10::IValue>());
        TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == torch::kFloat32,
                    "the LayerNorm input must be a float32 CPU tensor");
        const auto n = x.size(-1);
        const auto input = x.contiguous();
        const auto w = weight.defined() ? floatVector(weight, n) : torch::ones({n});
        const auto b = floatVector(bias, n);
        const auto rows = input.numel() / n;
        auto out = torch::empty(x.sizes(), x.options().dtype(torch::kBFloat16));
        auto stats = torch::empty({rows, 2});
        const float* in = input.data_ptr<float>();
        Bf16Bits* dst = bf16Data(out);
        const float* wp = w.data_ptr<float>();
        const float* bp = b.data_ptr<float>();
        float* statsData = stats.data_ptr<float>();
        at::parallel_for(0, rows, parallelGrain(n), [&](std::int64_t begin, std::int64_t end) {
            for (auto r = begin; r < end; ++r) {
                const auto rowStats = layerNormRow(in + r * n, wp, bp, static_cast<float>(eps), n, dst + r * n);
                statsData[2 * r] = rowStats.mean;
                statsData[2 * r + 1] = rowStats.invStd;
            }
        });
        context->save_for_backward({input, w, stats});
        context->saved_data["weighted"] = weight.defined();
        context->saved_data["biased"] = bias.defined();
        return out;
    }

    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::tensor_list gradients)
    {
        RECORD_FUNCTION("vitlab::fused::trainableLayerNormToBf16Backward", std::vector<c10::IValue>());
        if (!gradients[0].defined())
            return {torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
        const auto saved = context->get_saved_variables();
        const auto& input = saved[0];
        const auto& w = saved[1];
        const auto& stats = saved[2];
        const auto n = input.size(-1);
        const auto rows = input.numel() / n;
        const auto gradOut = gradients[0].to(torch::kBFloat16).contiguous();
        auto gradIn = torch::empty_like(input);
        const auto blocks = (rows + kBiasGradRows - 1) / kBiasGradRows;
        auto partial = torch::zeros({2, blocks, n}); // weight, then bias gradients per block
        const float* in = input.data_ptr<float>();
        const float* wp = w.data_ptr<float>();
        const float* statsData = stats.data_ptr<float>();
        const Bf16Bits* go = bf16Data(gradOut);
        float* gi = gradIn.data_ptr<float>();
        float* weightPartial = partial.data_ptr<float>();
        float* biasPartial = weightPartial + blocks * n;
        forEachRowInGradientBlocks(rows, n, [&](std::int64_t r, std::int64_t block) {
            layerNormBackwardRow(in + r * n, {statsData[2 * r], statsData[2 * r + 1]}, wp, go + r * n, n, gi + r * n,
                                 weightPartial + block * n, biasPartial + block * n);
        });
        const auto sums = partial.sum(1);
        return {gradIn, context->saved_data["weighted"].toBool() ? sums[0] : torch::Tensor(),
                context->saved_data["biased"].toBool() ? sums[1] : torch::Tensor(), torch::Tensor()};
    }
};

/// softmax(scale * scores) in bf16 with its gradient, one pass each way.
class ScaledSoftmaxFunction : public torch::autograd::Function<ScaledSoftmaxFunction> {
public:
    static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& scores, double scale)
    {
        RECORD_FUNCTION("vitlab::fused::scaledSoftmax", std::vector<c10::IValue>());
        checkBf16(scores, "scores");
        TORCH_CHECK(scale > 0.0, "scaledSoftmax needs a positive scale");
        const auto input = scores.contiguous();
        const auto n = input.size(-1);
        auto out = torch::empty_like(input);
        scaledSoftmaxRows(bf16Data(input), scale, input.numel() / n, n, bf16Data(out));
        context->save_for_backward({out});
        context->saved_data["scale"] = scale;
        return out;
    }

    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::tensor_list gradients)
    {
        RECORD_FUNCTION("vitlab::fused::scaledSoftmaxBackward", std::vector<c10::IValue>());
        if (!gradients[0].defined())
            return {torch::Tensor(), torch::Tensor()};
        const auto probabilities = context->get_saved_variables()[0];
        const auto scale = static_cast<float>(context->saved_data["scale"].toDouble());
        const auto gradOut = gradients[0].to(torch::kBFloat16).contiguous();
        auto gradIn = torch::empty_like(probabilities);
        const auto n = probabilities.size(-1);
        const Bf16Bits* p = bf16Data(probabilities);
        const Bf16Bits* go = bf16Data(gradOut);
        Bf16Bits* gi = bf16Data(gradIn);
        at::parallel_for(0, probabilities.numel() / n, parallelGrain(n), [&](std::int64_t begin, std::int64_t end) {
            for (auto r = begin; r < end; ++r)
                scaledSoftmaxBackwardRow(p + r * n, go + r * n, scale, n, gi + r * n);
        });
        return {gradIn, torch::Tensor()};
    }
};

} // namespace

torch::Tensor trainableLayerNormToBf16(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                       double eps)
{
    return LayerNormToBf16Function::apply(x, weight, bias, eps);
}

torch::Tensor scaledSoftmax(const torch::Tensor& scores, double scale)
{
    return ScaledSoftmaxFunction::apply(scores, scale);
}

bool bf16TrainingApplies(const torch::Tensor& x)
{
    return at::GradMode::is_enabled() && x.device().is_cpu() && compat::cpuAutocastDtype() == at::kBFloat16;
}

torch::Tensor biasGelu(const torch::Tensor& preActivation, const torch::Tensor& bias)
{
    return BiasGeluFunction::apply(preActivation, bias);
}

} // namespace vitlab::fused
