#include "core/models/same_padding.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <cmath>
#include <cstdint>
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

/// One plane: out[o] = max of its window, argmax[o] = that maximum's index in the plane.
template <typename T>
void poolPlane(const T* in, const PoolGeometry& g, T* out, std::int32_t* argmax)
{
    for (std::int64_t oy = 0; oy < g.outHeight; ++oy) {
        const auto y0 = std::max<std::int64_t>(oy * g.stride - g.padTop, 0);
        const auto y1 = std::min(oy * g.stride - g.padTop + g.kernel, g.inHeight);
        for (std::int64_t ox = 0; ox < g.outWidth; ++ox) {
            const auto x0 = std::max<std::int64_t>(ox * g.stride - g.padLeft, 0);
            const auto x1 = std::min(ox * g.stride - g.padLeft + g.kernel, g.inWidth);
            auto best = y0 * g.inWidth + x0;
            float bestValue = static_cast<float>(in[best]);
            for (auto y = y0; y < y1; ++y) {
                for (auto x = x0; x < x1; ++x) {
                    const float value = static_cast<float>(in[y * g.inWidth + x]);
                    if (value > bestValue || std::isnan(value)) {
                        best = y * g.inWidth + x;
                        bestValue = value;
                    }
                }
            }
            out[oy * g.outWidth + ox] = in[best];
            argmax[oy * g.outWidth + ox] = static_cast<std::int32_t>(best);
        }
    }
}

/// Planes per parallel task: enough pixels that a task outweighs scheduling it.
std::int64_t planeGrain(const PoolGeometry& g)
{
    return std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, g.planeIn()));
}

class MaxPoolSameFunction : public torch::autograd::Function<MaxPoolSameFunction> {
public:
    static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& x,
                                 std::int64_t kernel, std::int64_t stride)
    {
        RECORD_FUNCTION("vitlab::maxPool2dSame", std::vector<c10::IValue>());
        const auto input = x.contiguous();
        const PoolGeometry g(input, kernel, stride);
        const auto planes = input.size(0) * input.size(1);
        auto out = torch::empty({input.size(0), input.size(1), g.outHeight, g.outWidth}, input.options());
        auto argmax = torch::empty(out.sizes(), input.options().dtype(torch::kInt32));
        std::int32_t* indices = argmax.data_ptr<std::int32_t>();
        AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, input.scalar_type(), "maxPool2dSame", [&] {
            const scalar_t* in = input.data_ptr<scalar_t>();
            scalar_t* dst = out.data_ptr<scalar_t>();
            at::parallel_for(0, planes, planeGrain(g), [&](std::int64_t begin, std::int64_t end) {
                for (auto p = begin; p < end; ++p)
                    poolPlane(in + p * g.planeIn(), g, dst + p * g.planeOut(), indices + p * g.planeOut());
            });
        });
        context->save_for_backward({argmax});
        context->saved_data["inputHeight"] = g.inHeight;
        context->saved_data["inputWidth"] = g.inWidth;
        return out;
    }

    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::tensor_list gradients)
    {
        RECORD_FUNCTION("vitlab::maxPool2dSameBackward", std::vector<c10::IValue>());
        const auto argmax = context->get_saved_variables()[0];
        const auto gradOut = gradients[0].contiguous();
        const auto planeIn = context->saved_data["inputHeight"].toInt() * context->saved_data["inputWidth"].toInt();
        const auto planeOut = argmax.size(2) * argmax.size(3);
        const auto planes = argmax.size(0) * argmax.size(1);
        auto gradIn = torch::zeros({argmax.size(0), argmax.size(1), context->saved_data["inputHeight"].toInt(),
                                    context->saved_data["inputWidth"].toInt()},
                                   gradOut.options());
        const std::int32_t* indices = argmax.data_ptr<std::int32_t>();
        AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, gradOut.scalar_type(), "maxPool2dSameBackward", [&] {
            const scalar_t* go = gradOut.data_ptr<scalar_t>();
            scalar_t* gi = gradIn.data_ptr<scalar_t>();
            const auto grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, planeIn));
            at::parallel_for(0, planes, grain, [&](std::int64_t begin, std::int64_t end) {
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
