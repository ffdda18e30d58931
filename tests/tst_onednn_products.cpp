// Float32 linear layers through oneDNN: the same values and gradients as LibTorch's linear, for
// the shapes the models use (3-D tokens, a transposed view, no bias, frozen weights, one row),
// and LibTorch's own path wherever oneDNN must not run (autocast, other dtypes).
#include "core/models/onednn_linear.h"
#include "core/torch_compat.h"

#include <QtTest>

using namespace vitlab;

namespace {

double relativeError(const torch::Tensor& actual, const torch::Tensor& expected)
{
    return (actual - expected).abs().max().item<double>() / std::max(1e-12, expected.abs().max().item<double>());
}

} // namespace

class TestOnednnLinear : public QObject {
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

QTEST_APPLESS_MAIN(TestOnednnLinear)
#include "tst_onednn_linear.moc"
