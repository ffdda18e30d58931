#include "core/models/same_padding.h"

#include "core/models/parallel_grain.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

namespace vitlab {

namespace {

/// The padding before and after one axis of `size` pixels.
std::pair<std::int64_t, std::int64_t> samePadding(std::int64_t size, std::int64_t kernel, std::int64_t stride)
{
    const auto total = std::max<std::int64_t>((sameOutput(size, stride) - 1) * stride + kernel - size, 0);
    return {total / 2, total - total / 2};
}

/// The geometry of a pooling: output size and the padding before the first row and column.
struct PoolGeometry {
    std::int64_t kernel = 1, stride = 1;
    std::int64_t inHeight = 0, inWidth = 0, outHeight = 0, outWidth = 0;
    std::int64_t padTop = 0, padLeft = 0;

    PoolGeometry(const torch::Tensor& x, std::int64_t k, std::int64_t s)
        : kernel(k)
        , stride(s)
        , inHeight(x.size(2))
        , inWidth(x.size(3))
        , outHeight(sameOutput(inHeight, s))
        , outWidth(sameOutput(inWidth, s))
        , padTop(samePadding(inHeight, k, s).first)
        , padLeft(samePadding(inWidth, k, s).first)
    {
    }
    std::int64_t planeIn() const { return inHeight * inWidth; }
    std::int64_t planeOut() const { return outHeight * outWidth; }
};

/// Where each output's window lies, the same for every plane: its top-left corner in the plane
/// padded with -inf and in the plane itself (negative or past the row when that corner is
/// padding), and its first real pixel, where ATen's argmax starts.
struct WindowTables {
    // The padded plane holds every window and every pixel (a kernel smaller than the stride
    // leaves pixels that no window reads).
    std::int64_t paddedHeight = 0, paddedWidth = 0;
    std::vector<std::int32_t> paddedCorner, corner, firstPixel;

    explicit WindowTables(const PoolGeometry& g)
        : paddedHeight(std::max((g.outHeight - 1) * g.stride + g.kernel, g.padTop + g.inHeight))
        , paddedWidth(std::max((g.outWidth - 1) * g.stride + g.kernel, g.padLeft + g.inWidth))
    {
        for (std::int64_t oy = 0; oy < g.outHeight; ++oy) {
            for (std::int64_t ox = 0; ox < g.outWidth; ++ox) {
                const auto top = oy * g.stride - g.padTop;
                const auto left = ox * g.stride - g.padLeft;
                paddedCorner.push_back(static_cast<std::int32_t>(oy * g.stride * paddedWidth + ox * g.stride));
                corner.push_back(static_cast<std::int32_t>(top * g.inWidth + left));
                firstPixel.push_back(
                    static_cast<std::int32_t>(std::max<std::int64_t>(top, 0) * g.inWidth + std::max<std::int64_t>(left, 0)));
            }
        }
    }
    std::int64_t paddedSize() const { return paddedHeight * paddedWidth; }
};

/// A key that orders as the float does, compared as an integer (which vectorises where a float
/// comparison with NaN rules does not); every NaN gets the largest key.
inline std::int32_t orderKey(float value)
{
    std::int32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    const std::int32_t magnitude = bits & 0x7fffffff;
    const std::int32_t key = bits ^ ((bits >> 31) & 0x7fffffff);
    return magnitude > 0x7f800000 ? std::numeric_limits<std::int32_t>::max() : key;
}

/// One plane: out[o] = max of its window, argmax[o] = that maximum's index in the plane; the first
/// maximum in row-major order, a later NaN replacing an earlier one, as ATen. The plane's keys go
/// into `padded` (-inf borders); then each window offset is applied to every output at once, so no
/// comparison waits on the one before.
template <typename T>
void poolPlane(const T* in, const PoolGeometry& g, const WindowTables& tables, std::int32_t* __restrict padded,
               std::int32_t* __restrict bestKey, T* out, std::int32_t* __restrict argmax)
{
    for (std::int64_t y = 0; y < g.inHeight; ++y)
        for (std::int64_t x = 0; x < g.inWidth; ++x)
            padded[(y + g.padTop) * tables.paddedWidth + x + g.padLeft] = orderKey(static_cast<float>(in[y * g.inWidth + x]));
    const auto outputs = g.planeOut();
    const std::int32_t* paddedCorner = tables.paddedCorner.data();
    const std::int32_t* corner = tables.corner.data();
    const std::int32_t* firstPixel = tables.firstPixel.data();
    for (std::int64_t o = 0; o < outputs; ++o) {
        argmax[o] = firstPixel[o];
        bestKey[o] = orderKey(static_cast<float>(in[firstPixel[o]]));
    }
    constexpr auto nanKey = std::numeric_limits<std::int32_t>::max();
    for (std::int64_t dy = 0; dy < g.kernel; ++dy) {
        for (std::int64_t dx = 0; dx < g.kernel; ++dx) {
            const auto paddedOffset = static_cast<std::int32_t>(dy * tables.paddedWidth + dx);
            const auto offset = static_cast<std::int32_t>(dy * g.inWidth + dx);
            for (std::int64_t o = 0; o < outputs; ++o) {
                // Masks rather than a select: GCC turns the select into a branch, which mispredicts
                // on every other window of real activations.
                const std::int32_t key = padded[paddedCorner[o] + paddedOffset];
                const std::int32_t take = -static_cast<std::int32_t>((key > bestKey[o]) | (key == nanKey));
                argmax[o] = ((corner[o] + offset) & take) | (argmax[o] & ~take);
                bestKey[o] = (key & take) | (bestKey[o] & ~take);
            }
        }
    }
    for (std::int64_t o = 0; o < outputs; ++o)
        out[o] = in[argmax[o]];
}

class MaxPoolSameFunction : public torch::autograd::Function<MaxPoolSameFunction> {
public:
    static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& x,
                                 std::int64_t kernel, std::int64_t stride)
    {
        RECORD_FUNCTION("vitlab::maxPool2dSame", std::vector<c10::IValue>());
        const auto input = x.contiguous();
        const PoolGeometry g(input, kernel, stride);
        // Indices within a plane are 32-bit.
        TORCH_CHECK(g.planeIn() < (std::int64_t{1} << 30), "maxPool2dSame: feature map too large");
        const auto planes = input.size(0) * input.size(1);
        auto out = torch::empty({input.size(0), input.size(1), g.outHeight, g.outWidth}, input.options());
        auto argmax = torch::empty(out.sizes(), input.options().dtype(torch::kInt32));
        std::int32_t* indices = argmax.data_ptr<std::int32_t>();
        AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, input.scalar_type(), "maxPool2dSame", [&] {
            const scalar_t* in = input.data_ptr<scalar_t>();
            scalar_t* dst = out.data_ptr<scalar_t>();
            const WindowTables tables(g);
            at::parallel_for(0, planes, parallelGrain(g.planeIn()), [&](std::int64_t begin, std::int64_t end) {
                std::vector<std::int32_t> padded(static_cast<std::size_t>(tables.paddedSize()),
                                                 orderKey(-std::numeric_limits<float>::infinity()));
                std::vector<std::int32_t> bestKey(static_cast<std::size_t>(g.planeOut()));
                for (auto p = begin; p < end; ++p)
                    poolPlane(in + p * g.planeIn(), g, tables, padded.data(), bestKey.data(), dst + p * g.planeOut(),
                              indices + p * g.planeOut());
            });
        });
        context->save_for_backward({argmax});
        context->saved_data["inputSizes"] = input.sizes().vec();
        return out;
    }

    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::tensor_list gradients)
    {
        RECORD_FUNCTION("vitlab::maxPool2dSameBackward", std::vector<c10::IValue>());
        const auto argmax = context->get_saved_variables()[0];
        const auto gradOut = gradients[0].contiguous();
        auto gradIn = torch::zeros(context->saved_data["inputSizes"].toIntVector(), gradOut.options());
        const auto planeIn = gradIn.size(2) * gradIn.size(3);
        const auto planeOut = argmax.size(2) * argmax.size(3);
        const auto planes = argmax.size(0) * argmax.size(1);
        const std::int32_t* indices = argmax.data_ptr<std::int32_t>();
        AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, gradOut.scalar_type(), "maxPool2dSameBackward", [&] {
            const scalar_t* go = gradOut.data_ptr<scalar_t>();
            scalar_t* gi = gradIn.data_ptr<scalar_t>();
            at::parallel_for(0, planes, parallelGrain(planeIn), [&](std::int64_t begin, std::int64_t end) {
                for (auto p = begin; p < end; ++p)
                    for (std::int64_t o = 0; o < planeOut; ++o)
                        gi[p * planeIn + indices[p * planeOut + o]] += go[p * planeOut + o];
            });
        });
        return {gradIn, torch::Tensor(), torch::Tensor()};
    }
};

} // namespace

std::int64_t sameOutput(std::int64_t size, std::int64_t stride)
{
    return (size + stride - 1) / stride;
}

torch::Tensor padSame(const torch::Tensor& x, std::int64_t kernel, std::int64_t stride, double value)
{
    const auto [top, bottom] = samePadding(x.size(2), kernel, stride);
    const auto [left, right] = samePadding(x.size(3), kernel, stride);
    if (top == 0 && bottom == 0 && left == 0 && right == 0)
        return x;
    return torch::constant_pad_nd(x, {left, right, top, bottom}, value);
}

torch::Tensor maxPool2dSame(const torch::Tensor& x, std::int64_t kernel, std::int64_t stride)
{
    TORCH_CHECK(x.dim() == 4, "maxPool2dSame needs an NCHW tensor");
    TORCH_CHECK(kernel >= 1 && stride >= 1 && x.size(2) >= 1 && x.size(3) >= 1, "maxPool2dSame: empty window or map");
    if (x.device().is_cpu())
        return MaxPoolSameFunction::apply(x, kernel, stride);
    // Elsewhere (CUDA) ATen's pooling is fast: pad with -inf, then pool.
    const auto padded = padSame(x, kernel, stride, -std::numeric_limits<double>::infinity());
    return torch::max_pool2d(padded, {kernel, kernel}, {stride, stride});
}

} // namespace vitlab
