// The hybrid ResNetV2 + ViT beyond the shared fixture tests: TensorFlow 'SAME' padding and weight
// standardisation, the token grid from the backbone's stride, timm's keys without stages, timm's
// init, resizing pos_embed, grey and other channel counts through a standardised stem, freezing,
// attention capture, and the analytic counts.
#include "core/errors.h"
#include "core/io/safetensors.h"
#include "core/models/hybrid.h"
#include "core/models/registry.h"
#include "core/models/same_padding.h"
#include "core/models/weights.h"
#include "test_support.h"

#include <QtTest>

#include <fstream>
#include <limits>

using namespace vitlab;

namespace {

ModelSpec fixtureSpec()
{
    std::ifstream in(test::timmFixturesDir() / "index.json");
    return specFromConfig(nlohmann::json::parse(in)["hybrid"]["config"]);
}

std::filesystem::path fixtureWeights()
{
    return test::timmFixturesDir() / "hybrid.safetensors";
}

StateDict fixtureStateDict()
{
    return safetensors::load(fixtureWeights()).tensors;
}

HybridVisionTransformerImpl& asHybrid(const Classifier& model)
{
    auto* hybrid = dynamic_cast<HybridVisionTransformerImpl*>(model.get());
    if (!hybrid)
        throw std::runtime_error("not a hybrid model");
    return *hybrid;
}

ModelSpec hybridSpec(nlohmann::json args)
{
    args["family"] = "hybrid";
    return specFromConfig(args);
}

double cosine(const torch::Tensor& a, const torch::Tensor& b)
{
    return (a * b).sum().item<double>() / (a.norm().item<double>() * b.norm().item<double>());
}

} // namespace

class TestHybrid : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { torch::manual_seed(0); }

    void samePaddingPutsTheOddPixelBottomRight()
    {
        torch::NoGradGuard noGrad;
        // (size, kernel, stride) -> (left/top, right/bottom) as TensorFlow pads.
        const std::vector<std::array<std::int64_t, 5>> cases{
            {32, 7, 2, 2, 3}, {15, 3, 2, 1, 1}, {16, 3, 2, 0, 1}, {8, 3, 1, 1, 1}, {9, 1, 2, 0, 0}};
        for (const auto& [size, kernel, stride, before, after] : cases) {
            StdConv2dSame conv(2, 4, kernel, stride);
            const auto x = torch::randn({1, 2, size, size});
            const auto padded = torch::constant_pad_nd(x, {before, after, before, after});
            const auto expected = torch::conv2d(padded, conv->standardizedWeight(), {}, stride);
            const auto got = conv(x);
            QCOMPARE(got.size(2), (size + stride - 1) / stride);
            QVERIFY2(test::maxAbsDifference(got, expected) < 1e-5, qPrintable(QString::number(size)));
        }
    }

    void maxPoolSameMatchesAtenForwardAndBackward_data()
    {
        QTest::addColumn<int>("height");
        QTest::addColumn<int>("width");
        QTest::addColumn<int>("kernel");
        QTest::addColumn<int>("stride");
        QTest::addColumn<bool>("bfloat16");
        QTest::newRow("stem 14x14") << 14 << 14 << 3 << 2 << false;
        QTest::newRow("odd 15x9") << 15 << 9 << 3 << 2 << false;
        QTest::newRow("bf16 16x16") << 16 << 16 << 3 << 2 << true;
        QTest::newRow("kernel 2 stride 1") << 5 << 6 << 2 << 1 << false;
        QTest::newRow("kernel 1 stride 2, pixels no window reads") << 10 << 11 << 1 << 2 << false;
    }

    void maxPoolSameMatchesAtenForwardAndBackward()
    {
        QFETCH(int, height);
        QFETCH(int, width);
        QFETCH(int, kernel);
        QFETCH(int, stride);
        QFETCH(bool, bfloat16);
        const auto dtype = bfloat16 ? torch::kBFloat16 : torch::kFloat32;
        auto x = torch::randn({3, 5, height, width}).to(dtype);
        // Ties (a constant plane, a repeated value) send the gradient to the first maximum.
        x.select(1, 0).fill_(0.5);
        x.select(1, 1).select(1, 0).fill_(2.0);
        const auto ours = x.clone().requires_grad_();
        const auto aten = x.clone().requires_grad_();
        const auto upstream = torch::randn({3, 5, (height + stride - 1) / stride, (width + stride - 1) / stride}).to(dtype);

        const auto got = maxPool2dSame(ours, kernel, stride);
        got.backward(upstream);
        const auto expected = torch::max_pool2d(padSame(aten, kernel, stride, -std::numeric_limits<double>::infinity()),
                                                {kernel, kernel}, {stride, stride});
        expected.backward(upstream);

        QCOMPARE(test::shapeString(got), test::shapeString(expected));
        QVERIFY(torch::equal(got, expected));
        QVERIFY(torch::equal(ours.grad(), aten.grad()));
    }

    void weightStandardisationIgnoresScaleAndShift()
    {
        torch::NoGradGuard noGrad;
        StdConv2dSame conv(3, 8, 3);
        const auto standardized = conv->standardizedWeight().reshape({8, -1});
        QVERIFY(standardized.mean(1).abs().max().item<double>() < 1e-5);
        QVERIFY((standardized.pow(2).mean(1) - 1).abs().max().item<double>() < 1e-4);
        const auto x = torch::randn({2, 3, 10, 10});
        const auto before = conv(x);
        conv->weight.mul_(5).add_(3);
        QVERIFY(test::maxAbsDifference(conv(x), before) < 1e-4);
    }

    void tokenGridFollowsTheBackboneStride()
    {
        struct Case {
            nlohmann::json args;
            QString grid;
        };
        // Stem stride 4, then x1, x2, x2, x2 per stage; 'SAME' rounds up at every stride.
        const std::vector<Case> cases{
            {{{"img_size", 32}, {"backbone_layers", {1, 1}}}, QStringLiteral("(2, 16, 48)")},
            {{{"img_size", 30}, {"backbone_layers", {1, 1}}}, QStringLiteral("(2, 16, 48)")},
            {{{"img_size", 28}, {"backbone_layers", nlohmann::json::array()}}, QStringLiteral("(2, 49, 48)")},
            {{{"img_size", 32}, {"backbone_layers", {1}}}, QStringLiteral("(2, 64, 48)")},
            {{{"img_size", 64}, {"backbone_layers", {1, 1, 1}}, {"patch_size", 2}}, QStringLiteral("(2, 4, 48)")},
        };
        torch::NoGradGuard noGrad;
        for (const auto& c : cases) {
            auto args = c.args;
            args.update({{"embed_dim", 48}, {"depth", 1}, {"num_heads", 3}, {"num_classes", 5}});
            const auto spec = hybridSpec(args);
            auto model = createModel(spec);
            auto& hybrid = asHybrid(model);
            const auto size = spec.input.size;
            const auto tokens = hybrid.patch_embed->forward(torch::randn({2, 3, size[0], size[1]}));
            QCOMPARE(test::shapeString(tokens), c.grid);
            QCOMPARE(hybrid.pos_embed.size(1), tokens.size(1) + 1);
            QCOMPARE(test::shapeString(model->forward(torch::randn({2, 3, size[0], size[1]}))), QStringLiteral("(2, 5)"));
        }
    }

    void stemOnlyBackboneHasTimmsKeys()
    {
        // timm's vit_tiny_r_s16_p8_224: with no stages the backbone is the stem Sequential itself.
        const auto& spec = ModelRegistry::instance().model("vit_tiny_r_s16_p8_224");
        const auto model = createModel(spec);
        const auto state = stateDictOf(*model);
        QCOMPARE(test::shapeString(state.at("patch_embed.backbone.conv.weight")), QStringLiteral("(64, 3, 7, 7)"));
        QVERIFY(state.count("patch_embed.backbone.norm.weight"));
        QCOMPARE(test::shapeString(state.at("patch_embed.proj.weight")), QStringLiteral("(192, 64, 8, 8)"));
        QCOMPARE(test::shapeString(state.at("pos_embed")), QStringLiteral("(1, 50, 192)"));
        for (const auto& [key, tensor] : state)
            QVERIFY2(key.find("stem.") == std::string::npos && key.find("stages.") == std::string::npos, key.c_str());
        // timm's model table: 6.34 M parameters and 0.44 GMACs.
        QCOMPARE(countParameters(*model), std::int64_t{6337704});
        QVERIFY(std::abs(static_cast<double>(macsPerImage(spec)) - 0.44e9) < 0.02e9);
    }

    void initialisationFollowsTimm()
    {
        auto model = createModel(fixtureSpec());
        const auto params = model->named_parameters();
        // ResNetV2.init_weights(zero_init_last=True): each block starts as its shortcut.
        for (const auto& item : params) {
            const auto& key = item.key();
            if (key.find("norm3.weight") != std::string::npos)
                QVERIFY2(item.value().abs().max().item<double>() == 0.0, key.c_str());
            else if (key.find("backbone") != std::string::npos && key.find("norm") != std::string::npos
                     && key.find(".weight") != std::string::npos)
                QVERIFY2(torch::all(item.value() == 1).item<bool>(), key.c_str());
        }
        // Kaiming normal, fan out: std sqrt(2 / (64 * 7 * 7)) for the stem.
        const auto stemStd = params["patch_embed.backbone.stem.conv.weight"].std().item<double>();
        QVERIFY2(std::abs(stemStd / std::sqrt(2.0 / (64 * 49)) - 1) < 0.1, qPrintable(QString::number(stemStd)));
        // The stem-only backbone is a plain Sequential in timm and keeps PyTorch's conv default.
        auto stemOnly = createModel(ModelRegistry::instance().model("vit_tiny_d6_r_s4_p1_28"));
        const auto bound = 1.0 / std::sqrt(1.0 * 49);
        QVERIFY(stemOnly->named_parameters()["patch_embed.backbone.conv.weight"].abs().max().item<double>() <= bound);

        torch::NoGradGuard noGrad;
        auto* stage = asHybrid(model).hybridEmbed().resnet->stages[1]->as<ResNetStageImpl>();
        auto* block = stage->blocks[0]->as<BottleneckImpl>();
        const auto x = torch::randn({2, 256, 9, 9});
        QVERIFY(test::maxAbsDifference(block->forward(x), torch::relu(block->downsample(x))) < 1e-6);
    }

    void positionEmbeddingResizesForAnotherImageSize()
    {
        WeightsReport report;
        auto model = createModelWithWeights(withImageSize(fixtureSpec(), 64, 64), fixtureWeights(), {}, &report);
        QVERIFY2(report.clean(), report.summary().c_str());
        QVERIFY(QString::fromStdString(report.summary()).contains(QStringLiteral("pos_embed")));
        auto& hybrid = asHybrid(model);
        // 64 px: stem 32, pool 16, stage 0 16, stage 1 8: an 8x8 grid.
        QCOMPARE(hybrid.gridSize()[0], std::int64_t{8});
        QCOMPARE(test::shapeString(hybrid.pos_embed), QStringLiteral("(1, 65, 48)"));
        const auto timm = fixtureStateDict();
        QVERIFY(torch::equal(hybrid.pos_embed.narrow(1, 0, 1), timm.at("pos_embed").narrow(1, 0, 1)));
        // Convolutions do not depend on the image size: the backbone and projection load unchanged.
        const auto ours = stateDictOf(*model);
        for (const auto& [key, tensor] : timm) {
            if (key != "pos_embed")
                QVERIFY2(torch::equal(ours.at(key), tensor), key.c_str());
        }
        model->eval();
        torch::NoGradGuard noGrad;
        QVERIFY(torch::isfinite(model->forward(torch::randn({2, 3, 64, 64}))).all().item<bool>());
    }

    void greyInputFromTheRgbCheckpoint()
    {
        WeightsReport report;
        auto grey = createModelWithWeights(withInputChannels(fixtureSpec(), 1), fixtureWeights(), {}, &report);
        QVERIFY2(report.clean(), report.summary().c_str());
        auto rgb = createModelWithWeights(fixtureSpec(), fixtureWeights());
        grey->eval();
        rgb->eval();
        const auto timm = fixtureStateDict();
        const auto ours = stateDictOf(*grey);
        const auto& rgbKernel = timm.at("patch_embed.backbone.stem.conv.weight");
        QVERIFY(test::maxAbsDifference(ours.at("patch_embed.backbone.stem.conv.weight"), rgbKernel.sum(1, true)) < 1e-5);
        // patch_embed.proj reads backbone features, not the image: ViT's input filter must not touch it.
        QVERIFY(torch::equal(ours.at("patch_embed.proj.weight"), timm.at("patch_embed.proj.weight")));

        torch::NoGradGuard noGrad;
        const auto image = torch::rand({2, 1, 32, 32});
        const auto repeated = image.expand({2, 3, 32, 32});
        // Standardisation renormalises the summed kernel, so the grey stem is the RGB stem on the
        // repeated image divided, per output channel, by the standard deviation of the sum of the
        // standardised RGB kernels.
        const auto summed = asHybrid(rgb).hybridEmbed().stemConv()->standardizedWeight().sum(1);
        const auto channelStd = (summed.reshape({64, -1}).var(1, /*unbiased=*/false)).sqrt().reshape({1, 64, 1, 1});
        const auto greyStem = asHybrid(grey).hybridEmbed().stemConv()->forward(image);
        const auto rgbStem = asHybrid(rgb).hybridEmbed().stemConv()->forward(repeated);
        QVERIFY(test::maxAbsDifference(greyStem * channelStd, rgbStem) < 1e-4 * rgbStem.abs().max().item<double>());
        QVERIFY(channelStd.min().item<double>() > 1.05); // so the sum alone cannot be exact
        // The stem's GroupNorm absorbs much of that scale: the logits stay close, not equal.
        const auto greyLogits = grey->forward(image);
        const auto rgbLogits = rgb->forward(repeated);
        for (std::int64_t i = 0; i < 2; ++i)
            QVERIFY(cosine(greyLogits[i], rgbLogits[i]) > 0.95);
    }

    void moreChannelsRepeatTheRgbKernel()
    {
        // Repeating a multiple of three channels scales every output channel alike, which the
        // stem's GroupNorm removes: six channels of a repeated image give the RGB logits.
        auto six = createModelWithWeights(withInputChannels(fixtureSpec(), 6), fixtureWeights());
        auto rgb = createModelWithWeights(fixtureSpec(), fixtureWeights());
        six->eval();
        rgb->eval();
        torch::NoGradGuard noGrad;
        const auto image = torch::rand({2, 3, 32, 32});
        const auto expected = rgb->forward(image);
        const double tolerance = 1e-4 * std::max(1.0, expected.abs().max().item<double>());
        QVERIFY(test::maxAbsDifference(six->forward(torch::cat({image, image}, 1)), expected) < tolerance);
    }

    void freezingFirstBlocksFreezesTheBackbone()
    {
        auto model = createModel(fixtureSpec());
        QCOMPARE(model->numUnits(), 2);
        applyFreeze(*model, parseFreezeSpec("1"));
        for (const auto& item : model->named_parameters()) {
            const auto& key = item.key();
            const bool trainable = key.rfind("blocks.1.", 0) == 0 || key.rfind("norm.", 0) == 0 || key.rfind("head.", 0) == 0;
            QVERIFY2(item.value().requires_grad() == trainable, key.c_str());
        }
        // Backbone norms are stem parameters, never the final norm.
        QVERIFY(model->parameterGroup("patch_embed.backbone.stages.1.blocks.0.norm3.weight").role
                == ParameterGroup::Role::Stem);
        auto stemOnly = createModel(ModelRegistry::instance().model("vit_tiny_d6_r_s4_p1_28"));
        QVERIFY(stemOnly->parameterGroup("patch_embed.backbone.norm.weight").role == ParameterGroup::Role::Stem);
        QVERIFY(model->parameterGroup("norm.weight").role == ParameterGroup::Role::Head);
    }

    void attentionCaptureSeesEveryToken()
    {
        auto model = createModelWithWeights(fixtureSpec(), fixtureWeights());
        model->eval();
        model->setAttentionCapture(true);
        torch::NoGradGuard noGrad;
        model->forward(torch::randn({2, 3, 32, 32}));
        const auto sites = model->attentionSites();
        QCOMPARE(sites.size(), std::size_t{2});
        for (auto* site : sites) {
            QCOMPARE(test::shapeString(site->captured()), QStringLiteral("(2, 3, 17, 17)"));
            QVERIFY(test::maxAbsDifference(site->captured().sum(-1), torch::ones({2, 3, 17})) < 1e-5);
        }
        model->setAttentionCapture(false);
        QVERIFY(!sites.front()->captured().defined());
    }

    void analyticCountsMatchTheBuiltModel()
    {
        const std::vector<nlohmann::json> configs{
            {{"img_size", 32}, {"backbone_layers", {2, 1}}},
            {{"img_size", 48}, {"backbone_layers", {1, 1, 2}}, {"in_chans", 1}},
            {{"img_size", 28}, {"backbone_layers", nlohmann::json::array()}, {"patch_size", 7}},
            {{"img_size", 32}, {"backbone_layers", {1}}, {"pre_norm", true}, {"global_pool", "avg"}, {"class_token", false}},
        };
        for (const auto& args : configs) {
            auto full = args;
            full.update({{"embed_dim", 48}, {"depth", 1}, {"num_heads", 3}, {"num_classes", 5}});
            const auto spec = hybridSpec(full);
            QCOMPARE(parameterCount(spec), countParameters(*createModel(spec)));
        }
        // pre_norm drops the projection's bias, as in timm.
        const auto preNorm = createModel(hybridSpec({{"img_size", 32}, {"backbone_layers", {1}}, {"pre_norm", true},
                                                     {"embed_dim", 48}, {"depth", 1}, {"num_heads", 3}}));
        QVERIFY(!preNorm->named_parameters().contains("patch_embed.proj.bias"));
        // The fixture's MACs by hand: stem 16*16*64*3*49 = 2408448; stage 0 at 8x8 (64 -> 64 -> 256
        // with projection) 4718592; stage 1 (256 -> 128 -> 512, stride 2 to 4x4) 7602176; proj
        // 16*512*48 = 393216; two blocks over 17 tokens 995520; head 240.
        QCOMPARE(macsPerImage(fixtureSpec()), std::int64_t{16118192});
    }

    void badConfigsAreRefused()
    {
        const auto build = [](nlohmann::json args) { return createModel(hybridSpec(std::move(args))); };
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"backbone_layers", {1, 1, 1, 1, 1}}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"backbone_layers", {1, 0}}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"img_size", 32}, {"backbone_layers", {1, 1}}, {"patch_size", 3}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"img_size", 32}, {"backbone_layer", {1}}}));
        // Without patch_size the hybrid default is 1, not ViT's 16.
        auto model = build({{"img_size", 32}, {"backbone_layers", {1}}, {"embed_dim", 48}, {"depth", 1}, {"num_heads", 3}});
        QCOMPARE(asHybrid(model).gridSize()[0], std::int64_t{8});
    }
};

QTEST_GUILESS_MAIN(TestHybrid)
#include "tst_hybrid.moc"
