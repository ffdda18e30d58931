#include "core/models/onednn_products.h"

#include "core/torch_compat.h"

#include <cstdlib>
#include <cstring>

#ifdef VITLAB_HAVE_ONEDNN
#include <ATen/record_function.h>
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

/// One product as oneDNN reads it: C = alpha A B (+ bias) over the last two dimensions, any
/// leading (batch) dimensions the same for all three; each operand given by its sizes and
/// strides, so that transposed and interleaved operands (attention's heads) are read where they lie.
struct ProductShape {
    Dims aSizes, aStrides, bSizes, bStrides, cSizes, cStrides;
    bool bias = false;
    float alpha = 1.0f;
    auto key() const { return std::tie(aSizes, aStrides, bSizes, bStrides, cSizes, cStrides, bias, alpha); }
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
        primitive.a = memory::desc(shape.aSizes, f32, shape.aStrides);
        primitive.b = memory::desc(shape.bSizes, f32, shape.bStrides);
        primitive.c = memory::desc(shape.cSizes, f32, shape.cStrides);
        if (shape.bias) {
            Dims sizes(shape.cSizes.size(), 1), strides(shape.cSizes.size(), shape.cSizes.back());
            sizes.back() = shape.cSizes.back();
            strides.back() = 1;
            primitive.bias = memory::desc(sizes, f32, strides);
        }
        const auto description = shape.bias ? dnnl::matmul::desc(primitive.a, primitive.b, primitive.bias, primitive.c)
                                            : dnnl::matmul::desc(primitive.a, primitive.b, primitive.c);
        dnnl::primitive_attr attributes;
        if (shape.alpha != 1.0f)
            attributes.set_output_scales(0, {shape.alpha}); // attention's 1/sqrt(d), for free
        primitive.product = dnnl::matmul(dnnl::matmul::primitive_desc(description, attributes, m_engine));
        return m_primitives.emplace(shape, std::move(primitive)).first->second;
    }

    dnnl::engine m_engine;
    std::mutex m_mutex;
    std::map<ProductShape, Primitive> m_primitives;
};

/// `x` as oneDNN's fast kernels read it: one of its last two dimensions dense (a matrix or its
/// transpose), else a contiguous copy.
torch::Tensor withDenseMatrices(const torch::Tensor& x)
{
    return x.stride(-1) == 1 || x.stride(-2) == 1 ? x : x.contiguous();
}

/// A 2-D float32 tensor whose last dimension is dense, as oneDNN's strides need.
torch::Tensor rowsOf(const torch::Tensor& x)
{
    auto rows = x.reshape({-1, x.size(-1)});
    return rows.stride(1) == 1 ? rows : rows.contiguous();
}

/// alpha a b (+ bias) over the last two dimensions into a new contiguous tensor; `a` and `b`
/// have the same leading dimensions and dense matrices (withDenseMatrices).
torch::Tensor product(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& bias = {}, float alpha = 1.0f)
{
    auto sizes = a.sizes().vec();
    sizes.back() = b.size(-1);
    if (a.size(-1) == 0) // no products to sum: only the bias
        return bias.defined() ? bias.expand(sizes).clone() : torch::zeros(sizes, a.options());
    RECORD_FUNCTION("vitlab::onednn_product", std::vector<c10::IValue>()); // named in profiles
    auto out = torch::empty(sizes, a.options());
    if (out.numel() == 0)
        return out;
    const auto contiguousBias = bias.defined() ? bias.contiguous() : bias;
    ProductShape shape{a.sizes().vec(), a.strides().vec(), b.sizes().vec(), b.strides().vec(),
                       out.sizes().vec(), out.strides().vec(), bias.defined(), alpha};
    OnednnProducts::instance().multiply(shape, a.data_ptr<float>(), b.data_ptr<float>(),
                                        bias.defined() ? contiguousBias.data_ptr<float>() : nullptr,
                                        out.data_ptr<float>());
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

/// alpha a b over the last two dimensions, differentiable: dA = alpha dC B^T, dB = alpha A^T dC,
/// each a product of the saved operands' own views.
class OnednnMatmulFunction : public torch::autograd::Function<OnednnMatmulFunction> {
public:
    static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& a,
                                 const torch::Tensor& b, double alpha)
    {
        const auto denseA = withDenseMatrices(a);
        const auto denseB = withDenseMatrices(b);
        context->save_for_backward({denseA, denseB});
        context->saved_data["alpha"] = alpha;
        return product(denseA, denseB, {}, static_cast<float>(alpha));
    }

    static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::tensor_list gradients)
    {
        const auto saved = context->get_saved_variables();
        const auto alpha = static_cast<float>(context->saved_data["alpha"].toDouble());
        const auto gradient = withDenseMatrices(gradients[0]);
        torch::Tensor gradA, gradB;
        if (context->needs_input_grad(0))
            gradA = product(gradient, saved[1].transpose(-2, -1), {}, alpha);
        if (context->needs_input_grad(1))
            gradB = product(saved[0].transpose(-2, -1), gradient, {}, alpha);
        return {gradA, gradB, torch::Tensor()};
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

#ifdef VITLAB_HAVE_ONEDNN
namespace {

/// What every oneDNN product needs: the path on, the library of its headers, float32 CPU
/// operands, and no CPU autocast (whose products are LibTorch's, in bf16).
bool onednnTakes(const torch::Tensor& a, const torch::Tensor& b)
{
    const auto isFloat32OnCpu = [](const torch::Tensor& t) {
        return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32;
    };
    return switchedOn() && libraryMatchesHeaders() && isFloat32OnCpu(a) && isFloat32OnCpu(b)
        && !compat::cpuAutocastDtype().has_value();
}

} // namespace
#endif

bool onednnLinearApplies(const torch::Tensor& x, const torch::Tensor& weight)
{
#ifdef VITLAB_HAVE_ONEDNN
    return onednnTakes(x, weight) && weight.dim() == 2 && x.dim() >= 1;
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

bool onednnMatmulApplies(const torch::Tensor& a, const torch::Tensor& b)
{
#ifdef VITLAB_HAVE_ONEDNN
    return onednnTakes(a, b) && a.dim() >= 2 && a.dim() == b.dim()
        && a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2) && a.size(-1) == b.size(-2);
#else
    (void)a;
    (void)b;
    return false;
#endif
}

torch::Tensor onednnMatmul(const torch::Tensor& a, const torch::Tensor& b, double alpha)
{
#ifdef VITLAB_HAVE_ONEDNN
    return OnednnMatmulFunction::apply(a, b, alpha);
#else
    return alpha == 1.0 ? torch::matmul(a, b) : torch::matmul(a, b) * alpha;
#endif
}

} // namespace vitlab
