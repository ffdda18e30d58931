// Float32 products through oneDNN: linear layers with the same values and gradients as
// LibTorch's linear, for the shapes the models use (3-D tokens, a transposed view, no bias, frozen
// weights, one row); attention's batched products as LibTorch's matmul, on the views attention
// takes (heads interleaved in a qkv projection, keys transposed, a scale); and LibTorch's own path
// wherever oneDNN must not run (autocast, other dtypes, other batch shapes).
#include "core/models/onednn_products.h"
#include "core/torch_compat.h"

#include <QtTest>

using namespace vitlab;

namespace {

double relativeError(const torch::Tensor& actual, const torch::Tensor& expected)
{
    return (actual - expected).abs().max().item<double>() / std::max(1e-12, expected.abs().max().item<double>());
}

} // namespace

class TestOnednnProducts : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        if (!onednnLinearBuilt())
            QSKIP("this build has no oneDNN (libdnnl-dev): float32 products stay LibTorch's");
    }

    void matchesLinearForwardAndBackward_data()
    {
        QTest::addColumn<QList<int>>("shape");
        QTest::addColumn<int>("outFeatures");
        QTest::addColumn<bool>("bias");
        QTest::addColumn<bool>("transposed");
        QTest::newRow("tokens") << QList<int>{4, 197, 192} << 576 << true << false;
        QTest::newRow("no bias, odd sizes") << QList<int>{3, 13, 37} << 29 << false << false;
        QTest::newRow("transposed view") << QList<int>{2, 50, 64} << 64 << true << true;
        QTest::newRow("one row") << QList<int>{1, 192} << 10 << true << false;
    }

    void matchesLinearForwardAndBackward()
    {
        QFETCH(QList<int>, shape);
        QFETCH(int, outFeatures);
        QFETCH(bool, bias);
        QFETCH(bool, transposed);
        torch::manual_seed(1);
        std::vector<std::int64_t> sizes(shape.begin(), shape.end());
        auto base = torch::randn(sizes);
        if (transposed) // a non-contiguous input, as attention's head merge gives
            base = torch::randn({sizes[0], sizes[2], sizes[1]}).transpose(1, 2);
        const auto x = base.clone().requires_grad_(true);
        const auto weight = (0.1 * torch::randn({outFeatures, sizes.back()})).requires_grad_(true);
        const auto b = bias ? torch::randn({outFeatures}).requires_grad_(true) : torch::Tensor();
        const auto input = transposed ? base.detach().requires_grad_(true) : x;
        QVERIFY(onednnLinearApplies(input, weight));

        const auto y = onednnLinear(input, weight, b);
        const auto upstream = torch::randn(y.sizes());
        y.backward(upstream);
        const auto xRef = input.detach().clone().requires_grad_(true);
        const auto wRef = weight.detach().clone().requires_grad_(true);
        const auto bRef = bias ? b.detach().clone().requires_grad_(true) : torch::Tensor();
        const auto yRef = torch::linear(xRef, wRef, bRef);
        yRef.backward(upstream);

        QCOMPARE(y.sizes(), yRef.sizes());
        QVERIFY2(relativeError(y, yRef) < 1e-5, qPrintable(QString::number(relativeError(y, yRef))));
        QVERIFY(relativeError(input.grad(), xRef.grad()) < 1e-5);
        QVERIFY(relativeError(weight.grad(), wRef.grad()) < 1e-5);
        if (bias)
            QVERIFY(relativeError(b.grad(), bRef.grad()) < 1e-5);
    }

    void batchedProductsMatchMatmul_data()
    {
        QTest::addColumn<QString>("layout");
        QTest::addColumn<double>("alpha");
        QTest::newRow("q k^T scaled, heads from qkv") << "qkv" << 0.125;
        QTest::newRow("p v, contiguous") << "contiguous" << 1.0;
        QTest::newRow("3-D, every other column") << "strided" << 0.5;
    }

    void batchedProductsMatchMatmul()
    {
        QFETCH(QString, layout);
        QFETCH(double, alpha);
        torch::manual_seed(2);
        torch::Tensor a, b;
        if (layout == "qkv") {
            // (batch, tokens, 3, heads, head_dim) -> q and k (batch, heads, tokens, head_dim).
            const auto qkv = torch::randn({2, 17, 3, 3, 8}).permute({2, 0, 3, 1, 4});
            a = qkv[0];
            b = qkv[1].transpose(-2, -1);
        } else if (layout == "contiguous") {
            a = torch::randn({2, 3, 17, 17}).softmax(-1);
            b = torch::randn({2, 3, 17, 8});
        } else {
            a = torch::randn({4, 9, 22}).slice(2, 0, 22, 2); // neither of its last strides is 1
            b = torch::randn({4, 11, 5});
        }
        a = a.detach().requires_grad_(true);
        b = b.detach().requires_grad_(true);
        QVERIFY(onednnMatmulApplies(a, b));
        const auto c = onednnMatmul(a, b, alpha);
        const auto upstream = torch::randn(c.sizes());
        c.backward(upstream);
        const auto aRef = a.detach().clone().requires_grad_(true);
        const auto bRef = b.detach().clone().requires_grad_(true);
        const auto cRef = torch::matmul(aRef, bRef) * alpha;
        cRef.backward(upstream);
        QCOMPARE(c.sizes(), cRef.sizes());
        QVERIFY2(relativeError(c, cRef) < 1e-5, qPrintable(QString::number(relativeError(c, cRef))));
        QVERIFY(relativeError(a.grad(), aRef.grad()) < 1e-5);
        QVERIFY(relativeError(b.grad(), bRef.grad()) < 1e-5);
    }

    void batchedProductsNeedTheSameBatch()
    {
        QVERIFY(!onednnMatmulApplies(torch::randn({2, 3, 4}), torch::randn({1, 4, 5}))); // broadcast: LibTorch's
        QVERIFY(!onednnMatmulApplies(torch::randn({2, 3, 4}), torch::randn({2, 3, 5}))); // sizes that do not chain
        QVERIFY(!onednnMatmulApplies(torch::randn({2, 3, 4}).to(torch::kBFloat16), torch::randn({2, 4, 5})));
    }

    void frozenWeightsGetNoGradient()
    {
        const auto x = torch::randn({2, 5, 8}, torch::requires_grad());
        const auto weight = torch::randn({6, 8});
        const auto b = torch::randn({6});
        onednnLinear(x, weight, b).sum().backward();
        QVERIFY(!weight.grad().defined());
        QVERIFY(relativeError(x.grad(), weight.sum(0).expand({2, 5, 8})) < 1e-5);
    }

    void runsUnderInferenceMode()
    {
        c10::InferenceMode inference;
        const auto x = torch::randn({3, 8});
        const auto weight = torch::randn({4, 8});
        QVERIFY(relativeError(onednnLinear(x, weight, {}), torch::linear(x, weight)) < 1e-5);
    }

    void saysWhatRunsTheProducts()
    {
        QVERIFY2(QString::fromStdString(float32ProductsDescription()).startsWith("oneDNN 2."),
                 float32ProductsDescription().c_str());
    }

    void leavesAutocastAndOtherTypesToLibTorch()
    {
        const auto weight = torch::randn({4, 8});
        QVERIFY(!onednnLinearApplies(torch::randn({3, 8}, torch::kFloat64), weight.to(torch::kFloat64)));
        QVERIFY(!onednnLinearApplies(torch::randn({3, 8}).to(torch::kBFloat16), weight));
        compat::AutocastGuard autocast(c10::DeviceType::CPU, torch::kBFloat16);
        QVERIFY(!onednnLinearApplies(torch::randn({3, 8}), weight));
    }
};

QTEST_APPLESS_MAIN(TestOnednnProducts)
#include "tst_onednn_products.moc"
