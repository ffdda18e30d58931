// Where the models look: maps of every family against timm's fixtures, Swin's shift undone, TNT's
// pixel grid, relevance peaking where the evidence is in a trained model, and the overlays.
#include "core/attention/explain.h"
#include "core/attention/overlay.h"
#include "core/errors.h"
#include "core/io/safetensors.h"
#include "core/models/registry.h"
#include "core/models/swin.h"
#include "core/models/tnt.h"
#include "core/models/weights.h"
#include "core/train/optimization.h"
#include "synthetic_images.h"
#include "test_support.h"

#include <QtTest>

#include <fstream>

using namespace vitlab;

namespace {

nlohmann::json fixtureConfig(const std::string& name)
{
    std::ifstream in(test::timmFixturesDir() / "index.json");
    return nlohmann::json::parse(in)[name]["config"];
}

Classifier fixtureModel(const std::string& name)
{
    auto model = createModel(specFromConfig(fixtureConfig(name)));
    loadWeights(*model, test::timmFixturesDir() / (name + ".safetensors"));
    model->eval();
    return model;
}

torch::Tensor fixtureInput(const std::string& name)
{
    return safetensors::load(test::timmFixturesDir() / (name + ".io.safetensors")).tensors.at("input");
}

void verifyScaledMap(const torch::Tensor& map, std::int64_t height, std::int64_t width)
{
    QCOMPARE(test::shapeString(map), QStringLiteral("(%1, %2)").arg(height).arg(width));
    QVERIFY(map.min().item<float>() >= 0.0f);
    QVERIFY(std::abs(map.max().item<float>() - 1.0f) < 1e-6f);
}

/// A 3-class tiny ViT trained in memory on coloured squares at random places (32 px).
Classifier trainedPatternModel()
{
    torch::manual_seed(0);
    auto model = createModel(specFromConfig(nlohmann::json::parse(
        R"({"family": "vit", "img_size": 32, "patch_size": 4, "embed_dim": 48, "depth": 2, "num_heads": 3, "num_classes": 3})")));
    std::mt19937 random(7);
    const int count = 384;
    auto images = torch::empty({count, 3, 32, 32});
    auto labels = torch::empty({count}, torch::kInt64);
    for (int i = 0; i < count; ++i) {
        const int label = i % 3;
        cv::Mat rgb;
        cv::cvtColor(test::patternImage(label, 32, random), rgb, cv::COLOR_BGR2RGB);
        images[i] = torch::from_blob(rgb.data, {32, 32, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat32) / 127.5 - 1.0;
        labels[i] = label;
    }
    OptimizationOptions options;
    options.clipGradNorm = 1.0;
    Optimization optimization(model, options);
    const auto targets = torch::one_hot(labels, 3).to(torch::kFloat32);
    for (int epoch = 0; epoch < 12; ++epoch) {
        for (int first = 0; first < count; first += 32) {
            optimization.accumulate(images.narrow(0, first, 32), targets.narrow(0, first, 32), labels.narrow(0, first, 32));
            optimization.step(2e-3);
        }
    }
    model->eval();
    return model;
}

} // namespace

class TestExplain : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void rolloutMatchesTheFixtures_data()
    {
        QTest::addColumn<QString>("name");
        QTest::newRow("vit") << QStringLiteral("vit");
        QTest::newRow("deit_distilled") << QStringLiteral("deit_distilled");
    }
    void rolloutMatchesTheFixtures()
    {
        QFETCH(QString, name);
        const auto model = fixtureModel(name.toStdString());
        const auto io = safetensors::load(test::timmFixturesDir() / (name.toStdString() + ".io.safetensors")).tensors;
        for (std::int64_t sample = 0; sample < 2; ++sample) {
            const auto explanation = explain(*model, io.at("input").narrow(0, sample, 1), {});
            QVERIFY(test::maxAbsDifference(explanation.map, io.at("rollout")[sample]) <= 1e-4);
        }
        // Capture is off again afterwards.
        QVERIFY(!model->attentionSites().front()->captured().defined());
    }

    void attentionMatchesTheFixturesClassRow()
    {
        const auto model = fixtureModel("vit");
        const auto io = safetensors::load(test::timmFixturesDir() / "vit.io.safetensors").tensors;
        ExplainOptions options;
        options.method = ExplainMethod::Attention;
        options.layer = 1;
        options.head = 2;
        const auto explanation = explain(*model, io.at("input").narrow(0, 0, 1), options);
        auto expected = io.at("attn.1")[0][2][0].narrow(0, 1, 16).reshape({4, 4});
        expected = expected / expected.max();
        QVERIFY(test::maxAbsDifference(explanation.map, expected) <= 1e-4);
        QCOMPARE(explanation.layers, 2);
        QCOMPARE(explanation.heads, 3);

        // A query point reads that patch's row: the patch under (0.9, 0.1) is row 0, column 3.
        options.queryPoint = std::make_pair(0.9, 0.1);
        options.head = -1;
        const auto fromPatch = explain(*model, io.at("input").narrow(0, 0, 1), options);
        auto row = io.at("attn.1")[0].mean(0)[1 + 3].narrow(0, 1, 16).reshape({4, 4});
        QVERIFY(test::maxAbsDifference(fromPatch.map, row / row.max()) <= 1e-4);

        const auto heads = attentionPerHead(*model, io.at("input").narrow(0, 0, 1), options);
        QCOMPARE(test::shapeString(heads), QStringLiteral("(3, 4, 4)"));
    }

    void distilledRowsDiffer()
    {
        const auto model = fixtureModel("deit_distilled");
        const auto input = fixtureInput("deit_distilled").narrow(0, 0, 1);
        ExplainOptions options;
        options.token = QueryToken::Distillation;
        const auto distillation = explain(*model, input, options).map;
        options.token = QueryToken::Class;
        const auto classRow = explain(*model, input, options).map;
        QVERIFY(test::maxAbsDifference(distillation, classRow) > 1e-3);
        options.token = QueryToken::Mean;
        verifyScaledMap(explain(*model, input, options).map, 4, 4);
        // A plain ViT has no distillation token.
        options.token = QueryToken::Distillation;
        QVERIFY_THROWS_EXCEPTION(ConfigError, explain(*fixtureModel("vit"), fixtureInput("vit").narrow(0, 0, 1), options));
    }

    void swinMapsLieOnEachStagesGridWithTheShiftUndone()
    {
        const auto model = fixtureModel("swin");
        auto* swin = dynamic_cast<SwinTransformerImpl*>(model.get());
        QVERIFY(swin);
        const auto input = fixtureInput("swin").narrow(0, 0, 1);
        ExplainOptions options;
        options.method = ExplainMethod::Attention;
        const std::array<std::int64_t, 4> sides{16, 16, 8, 8}; // 32 px, patch 2, merged once
        for (int layer = 0; layer < 4; ++layer) {
            options.layer = layer;
            options.queryPoint.reset();
            const auto explanation = explain(*model, input, options);
            verifyScaledMap(explanation.map, sides[static_cast<std::size_t>(layer)], sides[static_cast<std::size_t>(layer)]);
            QCOMPARE(explanation.layers, 4);
            // A query attends within its window, itself included; across the shifted regions the
            // mask leaves nothing, so no more cells than a 4x4 window light up.
            for (const auto& point : {std::make_pair(0.05, 0.05), std::make_pair(0.97, 0.97), std::make_pair(0.5, 0.03)}) {
                options.queryPoint = point;
                const auto map = explain(*model, input, options).map;
                const auto side = sides[static_cast<std::size_t>(layer)];
                const auto y = static_cast<std::int64_t>(point.second * side), x = static_cast<std::int64_t>(point.first * side);
                QVERIFY2(map[y][x].item<float>() > 1e-6f, qPrintable(QStringLiteral("layer %1").arg(layer)));
                QVERIFY(map.gt(1e-6).sum().item<std::int64_t>() <= 16);
            }
        }
        options.method = ExplainMethod::GradCam;
        options.queryPoint.reset();
        verifyScaledMap(explain(*model, input, options).map, 8, 8);
        options.method = ExplainMethod::Rollout;
        QVERIFY_THROWS_EXCEPTION(ConfigError, explain(*model, input, options));
    }

    void tntOuterAndInnerMaps()
    {
        const auto model = fixtureModel("tnt");
        const auto* tnt = dynamic_cast<TntImpl*>(model.get());
        QVERIFY(tnt);
        const auto input = fixtureInput("tnt").narrow(0, 0, 1);
        ExplainOptions options;
        verifyScaledMap(explain(*model, input, options).map, 4, 4); // rollout over the patches
        options.method = ExplainMethod::Relevance;
        verifyScaledMap(explain(*model, input, options).map, 4, 4);
        options.method = ExplainMethod::Attention;
        options.innerAttention = true;
        const auto side = tnt->options().pixelSide();
        const auto inner = explain(*model, input, options).map;
        verifyScaledMap(inner, 4 * side, 4 * side);
        options.queryPoint = std::make_pair(0.1, 0.6);
        const auto fromPixel = explain(*model, input, options).map;
        // Only the pixels of the query's own patch (row 2, column 0) are attended.
        QCOMPARE(fromPixel.gt(0).sum().item<std::int64_t>(), fromPixel.narrow(0, 2 * side, side).narrow(1, 0, side).gt(0).sum().item<std::int64_t>());
    }

    void hybridGradCamOnTheBackboneAndRelevanceOnTheTokens()
    {
        const auto model = fixtureModel("hybrid");
        const auto input = fixtureInput("hybrid").narrow(0, 0, 1);
        ExplainOptions options;
        options.method = ExplainMethod::GradCam;
        options.classIndex = 2;
        const auto gradcam = explain(*model, input, options);
        QCOMPARE(gradcam.classIndex, std::int64_t(2));
        QCOMPARE(gradcam.map.dim(), std::int64_t(2));
        QVERIFY(std::abs(gradcam.map.max().item<float>() - 1.0f) < 1e-6f);
        options.method = ExplainMethod::Relevance;
        const auto relevance = explain(*model, input, options);
        QCOMPARE(relevance.map.sizes(), gradcam.map.sizes()); // patch 1: one token per backbone cell
        options.classIndex = 9;
        QVERIFY_THROWS_EXCEPTION(ConfigError, explain(*model, input, options));
    }

    void badRequestsAreConfigErrors()
    {
        const auto model = fixtureModel("vit");
        const auto input = fixtureInput("vit").narrow(0, 0, 1);
        ExplainOptions options;
        options.method = ExplainMethod::GradCam;
        QVERIFY_THROWS_EXCEPTION(ConfigError, explain(*model, input, options));
        options.method = ExplainMethod::Attention;
        options.layer = 5;
        QVERIFY_THROWS_EXCEPTION(ConfigError, explain(*model, input, options));
        options.layer = -1;
        options.head = 3;
        QVERIFY_THROWS_EXCEPTION(ConfigError, explain(*model, input, options));
        QVERIFY_THROWS_EXCEPTION(ShapeError, explain(*model, fixtureInput("vit"), {}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, parseExplainMethod("saliency"));
        // Average pooling has no class row to roll out.
        QVERIFY_THROWS_EXCEPTION(ConfigError, explain(*fixtureModel("vit_gap"), fixtureInput("vit_gap").narrow(0, 0, 1), {}));
    }

    void relevancePeaksWhereTheEvidenceIs()
    {
        const auto model = trainedPatternModel();
        std::mt19937 random(1234);
        int inside = 0, correct = 0;
        const int trials = 30;
        for (int i = 0; i < trials; ++i) {
            const int label = i % 3;
            cv::Point corner;
            cv::Mat rgb;
            cv::cvtColor(test::patternImage(label, 32, random, &corner), rgb, cv::COLOR_BGR2RGB);
            const auto input = (torch::from_blob(rgb.data, {32, 32, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat32)
                                / 127.5 - 1.0).unsqueeze(0);
            ExplainOptions options;
            options.method = ExplainMethod::Relevance;
            const auto explanation = explain(*model, input, options);
            correct += explanation.classIndex == label ? 1 : 0;
            const auto peak = explanation.map.argmax().item<std::int64_t>();
            const auto cellY = peak / 8, cellX = peak % 8;
            // The square covers pixels [corner, corner + 8); a 4-px cell overlaps it when their
            // ranges intersect.
            const bool overlaps = cellX * 4 < corner.x + 8 && cellX * 4 + 4 > corner.x && cellY * 4 < corner.y + 8
                && cellY * 4 + 4 > corner.y;
            inside += overlaps ? 1 : 0;
        }
        QVERIFY2(correct >= trials * 9 / 10, qPrintable(QStringLiteral("only %1 of %2 classified").arg(correct).arg(trials)));
        QVERIFY2(inside >= trials * 8 / 10, qPrintable(QStringLiteral("relevance peaked on the square in %1 of %2").arg(inside).arg(trials)));
    }

    void overlayBlendsTheColouredMap()
    {
        cv::Mat image(40, 40, CV_8UC3, cv::Scalar(0, 0, 0));
        const std::vector<float> map{1.0f, 0.0f, 0.0f, 0.0f};
        OverlayOptions options;
        options.opacity = 1.0;
        options.smooth = false;
        const auto blended = overlayMap(image, map, 2, 2, options);
        QCOMPARE(blended.size(), image.size());
        const auto hot = blended.at<cv::Vec3b>(5, 5), cold = blended.at<cv::Vec3b>(35, 35);
        QVERIFY(hot[0] > 100 && hot[2] < 50);   // JET's top is red (RGB)
        QVERIFY(cold[2] > 100 && cold[0] < 50); // and its bottom blue
        options.opacity = 0.0;
        QCOMPARE(cv::norm(overlayMap(image, map, 2, 2, options)), 0.0);
        QVERIFY_THROWS_EXCEPTION(ShapeError, overlayMap(image, map, 3, 2, options));
        QVERIFY_THROWS_EXCEPTION(IoError, saveRgbPng("/no/such/folder/x.png", image));
    }
};

QTEST_GUILESS_MAIN(TestExplain)
#include "tst_explain.moc"
