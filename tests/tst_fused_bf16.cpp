// The fused bf16 kernels against the ATen ops they replace, computed in float32 on the
// same bf16 inputs: each may differ only by bf16 rounding of its output.
#include "core/models/fused_bf16.h"
#include "core/models/layers.h"
#include "core/torch_compat.h"
#include "test_support.h"

#include <ATen/record_function.h>
#include <QtTest>

#include <mutex>
#include <set>
#include <string>

using namespace vitlab;

namespace {

torch::Tensor bf16Randn(at::IntArrayRef shape, double scale = 1.0)
{
    return (torch::randn(shape) * scale).to(torch::kBFloat16);
}

/// Within two bf16 roundings (2^-8 relative each) of `expected`, with an absolute floor.
bool closeInBf16(const torch::Tensor& actual, const torch::Tensor& expected, double absolute = 1e-6)
{
    const auto a = actual.to(torch::kFloat64);
    const auto e = expected.to(torch::kFloat64);
    return ((a - e).abs() <= e.abs() * (2.0 / 256.0) + absolute).all().item<bool>();
}

/// The names of the fused kernels that ran (their RECORD_FUNCTION scopes) while a Recorder lived.
class KernelRecorder {
public:
    KernelRecorder()
    {
        names().clear();
        m_handle = at::addGlobalCallback(at::RecordFunctionCallback(&KernelRecorder::onStart));
    }
    ~KernelRecorder() { at::removeCallback(m_handle); }
    KernelRecorder(const KernelRecorder&) = delete;
    KernelRecorder& operator=(const KernelRecorder&) = delete;

    static bool ran(const std::string& name)
    {
        const std::lock_guard<std::mutex> lock(mutex());
        return names().count(name) > 0;
    }

private:
    static std::unique_ptr<at::ObserverContext> onStart(const at::RecordFunction& function)
    {
        const std::string name = function.name();
        if (name.rfind("vitlab::", 0) == 0) {
            const std::lock_guard<std::mutex> lock(mutex());
            names().insert(name);
        }
        return nullptr;
    }
    static std::set<std::string>& names()
    {
        static std::set<std::string> recorded;
        return recorded;
    }
    static std::mutex& mutex()
    {
        static std::mutex guard;
        return guard;
    }
    at::CallbackHandle m_handle;
};

/// The largest difference from `expected` over its largest magnitude.
double relativeError(const torch::Tensor& actual, const torch::Tensor& expected)
{
    const auto e = expected.to(torch::kFloat64);
    return ((actual.to(torch::kFloat64) - e).abs().max() / e.abs().max()).item<double>();
}

} // namespace

class TestFusedBf16 : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { torch::manual_seed(0); }

    // Every bf16 product the models make under autocast (linear layers, attention's batched
    // products, convolutions) on both of LibTorch's CPU paths: oneDNN's and ATen's own, which CPUs
    // without AVX-512 take. With float32 sums, each output differs from the float32 product of the
    // same operands by the rounding of both operands (2u per term) and of the result (u), u = 2^-8,
    // so by at most 3u times the sum of |a_i b_i| (plus float32's own K 2^-24, negligible). Positive
    // operands make that sum the result itself, and are the worst case for a sum kept in bf16,
    // which stalls once the running sum outgrows its increments.
    void bf16ProductsKeepFloatSums_data()
    {
        QTest::addColumn<bool>("onednn");
        QTest::newRow("onednn") << true;
        QTest::newRow("aten") << false;
    }
    void bf16ProductsKeepFloatSums()
    {
        QFETCH(bool, onednn);
        const test::OneDnnGuard onednnGuard(onednn);
        c10::InferenceMode inference;
        const auto positive = [](at::IntArrayRef shape) { return torch::rand(shape) + 0.5; };
        const auto withinBound = [](const torch::Tensor& bf16, const torch::Tensor& float32) {
            const double u = 1.0 / 256.0;
            return ((bf16.to(torch::kFloat64) - float32.to(torch::kFloat64)).abs() <= 3 * u * float32.to(torch::kFloat64))
                .all()
                .item<bool>();
        };
        const auto tokens = positive({2, 50, 576});
        const auto weight = positive({64, 576});
        const auto keys = positive({2, 64, 576});
        const auto images = positive({2, 64, 8, 8});
        const auto kernel = positive({32, 64, 3, 3});
        const auto linear = torch::linear(tokens, weight);
        const auto batched = torch::matmul(tokens, keys.transpose(1, 2));
        const auto convolved = conv2dWithFloatSums(images, kernel, {}, {1, 1}, {1, 1});
        torch::Tensor linearBf16, batchedBf16, convolvedBf16;
        {
            compat::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
            linearBf16 = torch::linear(tokens, weight);
            batchedBf16 = torch::matmul(tokens, keys.transpose(1, 2));
            convolvedBf16 = conv2dWithFloatSums(images, kernel, {}, {1, 1}, {1, 1});
        }
        QCOMPARE(linearBf16.scalar_type(), torch::kBFloat16);
        QVERIFY2(withinBound(linearBf16, linear), "linear");
        QVERIFY2(withinBound(batchedBf16, batched), "batched matmul");
        QVERIFY2(withinBound(convolvedBf16, convolved), "convolution");
        // The check that routes convolutions agrees with LibTorch's own bf16 convolution (which
        // on LibTorch 1.13's ATen path sums in bf16 and misses the bound by far).
        torch::Tensor plainBf16;
        {
            compat::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
            plainBf16 = torch::conv2d(images, kernel, {}, 1, 1);
        }
        QCOMPARE(plainBf16.scalar_type(), torch::kBFloat16);
        QCOMPARE(withinBound(plainBf16, convolved), cpuBf16ConvolutionSumsInFloat());
    }

    void appliesOnlyToFloat32StreamsUnderBf16AutocastWithoutGradients()
    {
        const auto x = torch::randn({2, 3});
        {
            torch::NoGradGuard noGrad;
            QVERIFY(!fused::bf16InferenceApplies(x));
            compat::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
            QVERIFY(fused::bf16InferenceApplies(x));
            QVERIFY(!fused::bf16InferenceApplies(x.to(torch::kBFloat16)));
        }
        compat::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
        QVERIFY(!fused::bf16InferenceApplies(x));
    }

    void layerNormMatchesAten()
    {
        const auto x = torch::randn({5, 7, 192}) * 3 + 1;
        const auto weight = torch::randn({192});
        const auto bias = torch::randn({192});
        const auto expected = torch::layer_norm(x, {192}, weight, bias, 1e-6);
        const auto actual = fused::layerNormToBf16(x, weight, bias, 1e-6);
        QCOMPARE(actual.scalar_type(), torch::kBFloat16);
        QCOMPARE(test::shapeString(actual), test::shapeString(x));
        QVERIFY(closeInBf16(actual, expected, 1e-4));
    }

    void residualAddAndNormMatchAten()
    {
        const auto x = torch::randn({3, 11, 48});
        const auto branch = bf16Randn({33, 48});
        const auto branchBias = torch::randn({48});
        const auto weight = torch::randn({48});
        const auto bias = torch::randn({48});
        const auto sum = x + branch.to(torch::kFloat32).view_as(x) + branchBias;
        const auto [actualSum, normed] = fused::addResidualLayerNormToBf16(x, branch, branchBias, weight, bias, 1e-5);
        QCOMPARE(actualSum.scalar_type(), torch::kFloat32);
        QVERIFY(torch::allclose(actualSum, sum, 1e-6, 1e-6));
        QVERIFY(closeInBf16(normed, torch::layer_norm(sum, {48}, weight, bias, 1e-5), 1e-4));
        QVERIFY(torch::allclose(fused::addResidual(x, branch, {}), x + branch.to(torch::kFloat32).view_as(x)));
    }

    void splitHeadsMatchesReshapeAndPermute()
    {
        const std::int64_t batch = 2, tokens = 5, heads = 3, headDim = 4;
        const auto qkv = bf16Randn({batch * tokens, 3 * heads * headDim});
        const auto bias = torch::randn({3 * heads * headDim});
        const auto expected = (qkv.to(torch::kFloat32) + bias)
                                  .reshape({batch, tokens, 3, heads, headDim})
                                  .permute({2, 0, 3, 1, 4});
        const auto parts = fused::splitHeads(qkv, bias, batch, heads);
        for (std::int64_t i = 0; i < 3; ++i) {
            const auto& part = parts[static_cast<std::size_t>(i)];
            QVERIFY(part.is_contiguous());
            QCOMPARE(test::shapeString(part), QStringLiteral("(2, 3, 5, 4)"));
            QVERIFY(closeInBf16(part, expected[i]));
        }
        const auto unbiased = fused::splitHeads(qkv, {}, batch, heads);
        QVERIFY(torch::equal(unbiased[2], qkv.reshape({batch, tokens, 3, heads, headDim}).permute({2, 0, 3, 1, 4})[2]));
    }

    void scaledSoftmaxMatchesAten_data()
    {
        QTest::addColumn<double>("offset");
        QTest::newRow("mixed signs") << 0.0;
        QTest::newRow("all negative") << -300.0;
        QTest::newRow("all positive") << 300.0;
    }
    void scaledSoftmaxMatchesAten()
    {
        QFETCH(double, offset);
        // 197 keys: a length no vector width divides, so the tails run too.
        auto scores = (torch::randn({2, 3, 197, 197}) * 8.0 + offset).to(torch::kBFloat16);
        const auto expected = (scores.to(torch::kFloat32) * 0.125).softmax(-1);
        fused::scaledSoftmax_(scores, 0.125);
        QVERIFY(closeInBf16(scores, expected, 1e-7));
        QVERIFY(torch::allclose(scores.to(torch::kFloat32).sum(-1), torch::ones({2, 3, 197}), 0.0, 1e-2));
    }

    void biasGeluMatchesExactGelu()
    {
        // Every sign and size of input, including the tails where GELU is 0 or x.
        auto x = (torch::linspace(-12.0, 12.0, 3001).unsqueeze(1) + torch::randn({20}) * 0.01)
                     .to(torch::kBFloat16)
                     .contiguous();
        const auto bias = torch::randn({20});
        const auto expected = torch::gelu(x.to(torch::kFloat32) + bias);
        fused::biasGelu_(x, bias);
        QVERIFY(closeInBf16(x, expected, 2e-6));
    }

    void trainingPathAppliesOnlyUnderBf16AutocastWithGradients()
    {
        const auto x = torch::randn({2, 3});
        QVERIFY(!fused::bf16TrainingApplies(x));
        compat::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
        QVERIFY(fused::bf16TrainingApplies(x));
        torch::NoGradGuard noGrad;
        QVERIFY(!fused::bf16TrainingApplies(x));
    }

    void differentiableBiasGeluMatchesAtenAndItsGradients()
    {
        // Rows that do not fill the last block of the bias-gradient sum, every sign and size of input.
        const auto rows = 3001;
        const auto preActivation = (torch::linspace(-12.0, 12.0, rows).unsqueeze(1) + torch::randn({24}) * 0.5)
                                       .to(torch::kBFloat16)
                                       .requires_grad_();
        const auto bias = torch::randn({24}).requires_grad_();
        const auto upstream = bf16Randn({rows, 24});

        const auto actual = fused::biasGelu(preActivation, bias);
        QCOMPARE(actual.scalar_type(), torch::kBFloat16);
        actual.backward(upstream);

        const auto floatInput = preActivation.detach().to(torch::kFloat32).requires_grad_();
        const auto floatBias = bias.detach().clone().requires_grad_();
        const auto expected = torch::gelu(floatInput + floatBias);
        expected.backward(upstream.to(torch::kFloat32));

        QVERIFY(closeInBf16(actual, expected, 2e-6));
        QCOMPARE(preActivation.grad().scalar_type(), torch::kBFloat16);
        QVERIFY(closeInBf16(preActivation.grad(), floatInput.grad(), 1e-5));
        QCOMPARE(bias.grad().scalar_type(), torch::kFloat32);
        // A sum over 3001 rows: float rounding of the partial sums, far below a wrong derivative.
        QVERIFY(torch::allclose(bias.grad(), floatBias.grad(), 1e-4, 1e-3));
    }

    void differentiableLayerNormMatchesAtenAndItsGradients()
    {
        // Rows off the mean (cancellation), a width no vector divides, rows that do not fill the
        // last block of the weight-gradient sum.
        const auto rows = 3001;
        const auto x = (torch::randn({rows, 40}) * 3.0 + 5.0).requires_grad_();
        const auto weight = torch::randn({40}).requires_grad_();
        const auto bias = torch::randn({40}).requires_grad_();
        const auto upstream = bf16Randn({rows, 40});

        const auto actual = fused::trainableLayerNormToBf16(x, weight, bias, 1e-6);
        QCOMPARE(actual.scalar_type(), torch::kBFloat16);
        actual.backward(upstream);

        const auto x64 = x.detach().to(torch::kFloat64).requires_grad_();
        const auto weight64 = weight.detach().to(torch::kFloat64).requires_grad_();
        const auto bias64 = bias.detach().to(torch::kFloat64).requires_grad_();
        const auto expected = torch::layer_norm(x64, {40}, weight64, bias64, 1e-6);
        expected.backward(upstream.to(torch::kFloat64));

        QVERIFY(closeInBf16(actual, expected, 1e-5));
        QCOMPARE(x.grad().scalar_type(), torch::kFloat32);
        QVERIFY2(torch::allclose(x.grad().to(torch::kFloat64), x64.grad(), 1e-4, 1e-5),
                 qPrintable(QString::number(relativeError(x.grad(), x64.grad()))));
        QVERIFY(torch::allclose(weight.grad().to(torch::kFloat64), weight64.grad(), 1e-4, 1e-3));
        QVERIFY(torch::allclose(bias.grad().to(torch::kFloat64), bias64.grad(), 1e-4, 1e-3));
    }

    void differentiableScaledSoftmaxMatchesAtenAndItsGradients()
    {
        // 197 keys: the tails run; scores wide enough that the softmax is far from uniform.
        const auto scores = (torch::randn({2, 3, 13, 197}) * 8.0).to(torch::kBFloat16).requires_grad_();
        const auto upstream = bf16Randn({2, 3, 13, 197});
        const auto actual = fused::scaledSoftmax(scores, 0.125);
        QCOMPARE(actual.scalar_type(), torch::kBFloat16);
        actual.backward(upstream);

        const auto scores64 = scores.detach().to(torch::kFloat64).requires_grad_();
        const auto expected = (scores64 * 0.125).softmax(-1);
        expected.backward(upstream.to(torch::kFloat64));

        QVERIFY(closeInBf16(actual, expected, 1e-7));
        QCOMPARE(scores.grad().scalar_type(), torch::kBFloat16);
        // The gradient reads the bf16 probabilities: a few bf16 roundings of the largest entry.
        QVERIFY2(relativeError(scores.grad(), scores64.grad()) < 2e-2,
                 qPrintable(QString::number(relativeError(scores.grad(), scores64.grad()))));
    }

    void blockTrainsInBf16ThroughTheFusedKernels()
    {
        // A ViT block training under bf16 autocast: its norms (and on LibTorch 1.13 its attention
        // softmax) run through the differentiable kernels, and its output and every gradient stay
        // float32's within bf16's rounding of the products.
        torch::manual_seed(1);
        Block block(BlockOptions(48, 3));
        block->train();
        const auto input = torch::randn({2, 197, 48}).requires_grad_();
        const auto upstream = torch::randn({2, 197, 48});
        const auto run = [&](bool bf16) {
            block->zero_grad();
            input.mutable_grad() = torch::Tensor();
            torch::Tensor out;
            {
                compat::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16, bf16);
                out = block(input);
            }
            out.to(torch::kFloat32).backward(upstream);
            std::vector<std::pair<std::string, torch::Tensor>> results{{"output", out.detach().to(torch::kFloat32)},
                                                                        {"input gradient", input.grad().clone()}};
            for (const auto& parameter : block->named_parameters())
                results.emplace_back(parameter.key(), parameter.value().grad().clone());
            return results;
        };
        const auto reference = run(false);
        std::vector<std::pair<std::string, torch::Tensor>> mixed;
        {
            const KernelRecorder recorder;
            mixed = run(true);
            QVERIFY(KernelRecorder::ran("vitlab::fused::trainableLayerNormToBf16"));
            QVERIFY(KernelRecorder::ran("vitlab::fused::trainableLayerNormToBf16Backward"));
            QCOMPARE(KernelRecorder::ran("vitlab::fused::scaledSoftmaxBackward"), !compat::kHasFusedAttention);
        }
        for (std::size_t i = 0; i < reference.size(); ++i) {
            QCOMPARE(mixed[i].first, reference[i].first);
            QCOMPARE(mixed[i].second.scalar_type(), torch::kFloat32);
            // The qkv weight's gradient sums products of q, k, v, scores and probabilities, each rounded
            // to bf16: about 5% from float32's on CPUs that emulate bf16 (Zen 3: 0.0503), where a wrong
            // gradient is off by its own size.
            const double error = relativeError(mixed[i].second, reference[i].second);
            QVERIFY2(error < 8e-2, qPrintable(QString::fromStdString(reference[i].first) + ": " + QString::number(error)));
        }
    }

    void differentiableBiasGeluInFloat32()
    {
        // The float32 path (training through oneDNN): values and gradients as ATen's exact GELU,
        // to float32's precision rather than bf16's, on a non-contiguous input.
        const auto rows = 3001;
        const auto base = torch::linspace(-12.0, 12.0, rows).unsqueeze(1) + torch::randn({24}) * 0.5;
        const auto preActivation = base.t().contiguous().t().requires_grad_(); // column-major
        const auto bias = torch::randn({24}).requires_grad_();
        const auto upstream = torch::randn({rows, 24});
        const auto actual = fused::biasGelu(preActivation, bias);
        QCOMPARE(actual.scalar_type(), torch::kFloat32);
        actual.backward(upstream);

        const auto input = preActivation.detach().clone().requires_grad_();
        const auto biasCopy = bias.detach().clone().requires_grad_();
        const auto expected = torch::gelu(input + biasCopy);
        expected.backward(upstream);
        QVERIFY2(torch::allclose(actual, expected, 1e-6, 1e-6),
                 qPrintable(QString::number((actual - expected).abs().max().item<double>())));
        QVERIFY2(torch::allclose(preActivation.grad(), input.grad(), 1e-5, 1e-6),
                 qPrintable(QString::number((preActivation.grad() - input.grad()).abs().max().item<double>())));
        QVERIFY(torch::allclose(bias.grad(), biasCopy.grad(), 1e-4, 1e-3));
    }
};

QTEST_GUILESS_MAIN(TestFusedBf16)
#include "tst_fused_bf16.moc"
