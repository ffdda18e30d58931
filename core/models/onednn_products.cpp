#include "core/models/onednn_linear.h"

#include "core/torch_compat.h"

#include <cstdlib>
#include <cstring>

#ifdef VITLAB_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <map>
#include <mutex>
#include <tuple>
#endif

namespace vitlab {

#ifdef VITLAB_HAVE_ONEDNN
namespace {

using Dims = dnnl::memory::dims;

/// One product's shape: C (m x n, rows `ldc` apart) = A (m x k) B (k x n), each operand given by
/// its strides, so that transposed operands are read where they lie.
struct ProductShape {
    std::int64_t m, k, n;
    std::int64_t aRowStride, aColumnStride, bRowStride, bColumnStride, ldc;
    bool bias;
    auto key() const { return std::tie(m, k, n, aRowStride, aColumnStride, bRowStride, bColumnStride, ldc, bias); }
    bool operator<(const ProductShape& other) const { return key() < other.key(); }
};

class OnednnProducts {
public:
    static OnednnProducts& instance()
    {
        static OnednnProducts products;
        return products;
    }

    void multiply(const ProductShape& shape, const float* a, const float* b, const float* bias, float* c)
    {
        // oneDNN's OpenMP threads are the calling thread's: match LibTorch's count (a worker
        // thread starts with OpenMP's default, not what at::set_num_threads chose).
        const int threads = at::get_num_threads();
        if (omp_get_max_threads() != threads)
            omp_set_num_threads(threads);
        const auto& primitive = primitiveFor(shape);
        using dnnl::memory;
        std::unordered_map<int, memory> arguments;
        arguments.emplace(DNNL_ARG_SRC, memory(primitive.a, m_engine, const_cast<float*>(a)));
        arguments.emplace(DNNL_ARG_WEIGHTS, memory(primitive.b, m_engine, const_cast<float*>(b)));
        arguments.emplace(DNNL_ARG_DST, memory(primitive.c, m_engine, c));
        if (shape.bias)
            arguments.emplace(DNNL_ARG_BIAS, memory(primitive.bias, m_engine, const_cast<float*>(bias)));
        dnnl::stream stream(m_engine);
        primitive.product.execute(stream, arguments);
        stream.wait();
    }

private:
    struct Primitive {
        dnnl::memory::desc a, b, c, bias;
        dnnl::matmul product;
    };

    OnednnProducts() : m_engine(dnnl::engine::kind::cpu, 0) {}

    const Primitive& primitiveFor(const ProductShape& shape)
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        const auto found = m_primitives.find(shape);
        if (found != m_primitives.end())
            return found->second;
        // Shapes repeat (each layer, each batch size): a few dozen per model. Bounded all the same.
        if (m_primitives.size() >= 512)
            m_primitives.clear();
        using dnnl::memory;
        const auto f32 = memory::data_type::f32;
        Primitive primitive;
        primitive.a = memory::desc(Dims{shape.m, shape.k}, f32, Dims{shape.aRowStride, shape.aColumnStride});
        primitive.b = memory::desc(Dims{shape.k, shape.n}, f32, Dims{shape.bRowStride, shape.bColumnStride});
        primitive.c = memory::desc(Dims{shape.m, shape.n}, f32, Dims{shape.ldc, 1});
        if (shape.bias)
            primitive.bias = memory::desc(Dims{1, shape.n}, f32, Dims{shape.n, 1});
        const auto description = shape.bias ? dnnl::matmul::desc(primitive.a, primitive.b, primitive.bias, primitive.c)
                                            : dnnl::matmul::desc(primitive.a, primitive.b, primitive.c);
        primitive.product = dnnl::matmul(dnnl::matmul::primitive_desc(description, m_engine));
        return m_primitives.emplace(shape, std::move(primitive)).first->second;
    }

    dnnl::engine m_engine;
    std::mutex m_mutex;
    std::map<ProductShape, Primitive> m_primitives;
};

/// A 2-D float32 tensor whose last dimension is dense, as oneDNN's strides need.
torch::Tensor rowsOf(const torch::Tensor& x)
{
    auto rows = x.reshape({-1, x.size(-1)});
    return rows.stride(1) == 1 ? rows : rows.contiguous();
}

/// out (m x n) = a b (+ bias), a and b 2-D with any strides.
void multiplyInto(torch::Tensor& out, const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias)
{
    ProductShape shape{a.size(0), a.size(1), b.size(1), a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                       out.stride(0), bias.defined()};
    OnednnProducts::instance().multiply(shape, a.data_ptr<float>(), b.data_ptr<float>(),
                                        bias.defined() ? bias.data_ptr<float>() : nullptr, out.data_ptr<float>());
}

torch::Tensor product(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias = {})
{
    if (a.size(1) == 0) // no products to sum: only the bias
        return bias.defined() ? bias.expand({a.size(0), b.size(1)}).clone() : torch::zeros({a.size(0), b.size(1)}, a.options());
    auto out = torch::empty({a.size(0), b.size(1)}, a.options());
    if (out.numel() > 0)
        multiplyInto(out, a, b, bias.defined() ? bias.contiguous() : bias);
    return out;
}

class OnednnLinearFunction : public torch::autograd::Function<OnednnLinearFunction> {
public:
    /// `bias` is an empty tensor for none: LibTorch 1.13's custom functions take no undefined input.
    static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& x,
                                 const torch::Tensor& weight, const torch::Tensor& bias)
    {
        const auto rows = rowsOf(x);
        const bool hasBias = bias.numel() > 0;
        context->save_for_backward({rows, weight});
        context->saved_data["has_bias"] = hasBias;
        auto sizes = x.sizes().vec();
        sizes.back() = weight.size(0);
        return product(rows, weight.t(), hasBias ? bias : torch::Tensor()).view(sizes);
    }

    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::tensor_list gradients)
    {
        const auto saved = context->get_saved_variables();
        const auto& rows = saved[0];
        const auto& weight = saved[1];
        const auto gradient = rowsOf(gradients[0]);
        torch::Tensor gradX, gradWeight, gradBias;
        if (context->needs_input_grad(0)) {
            auto sizes = gradients[0].sizes().vec();
            sizes.back() = weight.size(1);
            gradX = product(gradient, weight).view(sizes);
        }
        if (context->needs_input_grad(1))
            gradWeight = product(gradient.t(), rows);
        if (context->needs_input_grad(2) && context->saved_data["has_bias"].toBool())
            gradBias = gradient.sum(0);
        return {gradX, gradWeight, gradBias};
    }
};

bool switchedOn()
{
    static const bool on = [] {
        const char* value = std::getenv("VITLAB_ONEDNN");
        return value == nullptr || std::strcmp(value, "0") != 0;
    }();
    return on;
}

/// The library loaded is the one compiled against (the API changed in 3.0).
bool libraryMatchesHeaders()
{
    static const bool matches = dnnl_version()->major == DNNL_VERSION_MAJOR;
    return matches;
}

} // namespace
#endif

bool onednnLinearBuilt()
{
#ifdef VITLAB_HAVE_ONEDNN
    return true;
#else
    return false;
#endif
}

std::string float32ProductsDescription()
{
#ifdef VITLAB_HAVE_ONEDNN
    const auto* version = dnnl_version();
    if (!libraryMatchesHeaders())
        return "LibTorch's BLAS (the oneDNN loaded, " + std::to_string(version->major)
            + ".x, is not the one built against, " + std::to_string(DNNL_VERSION_MAJOR) + ".x)";
    if (!switchedOn())
        return "LibTorch's BLAS (oneDNN switched off: VITLAB_ONEDNN=0)";
    return "oneDNN " + std::to_string(version->major) + "." + std::to_string(version->minor) + "."
        + std::to_string(version->patch);
#else
    return "LibTorch's BLAS (built without oneDNN: libdnnl-dev missing, or a LibTorch with its own)";
#endif
}

bool onednnLinearApplies(const torch::Tensor& x, const torch::Tensor& weight)
{
#ifdef VITLAB_HAVE_ONEDNN
    return switchedOn() && libraryMatchesHeaders() && x.device().is_cpu() && x.scalar_type() == torch::kFloat32 && weight.defined()
        && weight.scalar_type() == torch::kFloat32 && weight.device().is_cpu() && weight.dim() == 2
        && x.dim() >= 1 && !compat::cpuAutocastDtype().has_value();
#else
    (void)x;
    (void)weight;
    return false;
#endif
}

torch::Tensor onednnLinear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias)
{
#ifdef VITLAB_HAVE_ONEDNN
    return OnednnLinearFunction::apply(x, weight, bias.defined() ? bias : torch::empty({0}, weight.options()));
#else
    return torch::linear(x, weight, bias);
#endif
}

} // namespace vitlab
