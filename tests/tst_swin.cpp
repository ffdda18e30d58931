// Swin specifics that the shared fixture tests do not reach: the computed index and mask, the
// window clamping and padding, the checkpoint filter (bias-table resizing, stale buffers, the
// original layout, grey input), freezing by stage and the window-attention capture.
#include "core/errors.h"
#include "core/io/safetensors.h"
#include "core/models/registry.h"
#include "core/models/swin.h"
#include "core/models/weights.h"
#include "test_support.h"

#include <QtTest>

#include <fstream>

using namespace vitlab;

namespace {

ModelSpec fixtureSpec()
{
    std::ifstream in(test::timmFixturesDir() / "index.json");
    return specFromConfig(nlohmann::json::parse(in)["swin"]["config"]);
}

std::filesystem::path fixtureWeights()
{
    return test::timmFixturesDir() / "swin.safetensors";
}

safetensors::TensorMap fixtureTensors()
{
    return safetensors::load(fixtureWeights()).tensors;
}

safetensors::TensorMap fixtureIo()
{
    return safetensors::load(test::timmFixturesDir() / "swin.io.safetensors").tensors;
}

SwinTransformerImpl& asSwin(const Classifier& model)
{
    auto* swin = dynamic_cast<SwinTransformerImpl*>(model.get());
    if (!swin)
        throw std::runtime_error("not a Swin model");
    return *swin;
}

ModelSpec withArg(ModelSpec spec, const std::string& key, const nlohmann::json& value)
{
    spec.args[key] = value;
    return spec;
}

bool containsNote(const WeightsReport& report, const QString& text)
{
    for (const auto& note : report.notes) {
        if (QString::fromStdString(note).contains(text))
            return true;
    }
    return false;
}

} // namespace

class TestSwin : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { torch::manual_seed(0); }

    void relativePositionIndexIsTimms()
    {
        // timm's get_relative_position_index for a 2x2 window.
        const auto index = relativePositionIndex({2, 2});
        const auto expected = torch::tensor({4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4}, torch::kLong).view({4, 4});
        QVERIFY(torch::equal(index, expected));
        // A 2x3 window: 3x5 offsets, zero offset in the middle of the table on the diagonal.
        const auto wide = relativePositionIndex({2, 3});
        QCOMPARE(test::shapeString(wide), QStringLiteral("(6, 6)"));
        QVERIFY(torch::equal(wide.diagonal(), torch::full({6}, 7, torch::kLong)));
        QCOMPARE(wide.min().item<std::int64_t>(), std::int64_t{0});
        QCOMPARE(wide.max().item<std::int64_t>(), std::int64_t{14});
    }

    void shiftedWindowMaskIsTimms()
    {
        // A 4x4 grid, 2x2 windows shifted by 1: the classic example of the Swin paper.
        const auto geometry = windowGeometry({4, 4}, {2, 2}, /*shiftedBlock=*/true, false);
        QCOMPARE(geometry.shift[0], std::int64_t{1});
        const auto mask = shiftedWindowMask(geometry);
        QCOMPARE(test::shapeString(mask), QStringLiteral("(4, 4, 4)"));
        QVERIFY(torch::equal(mask[0], torch::zeros({4, 4})));
        // Top-right window: columns 2 and 3 come from different regions.
        const auto topRight = torch::tensor({0.f, -100.f, 0.f, -100.f, -100.f, 0.f, -100.f, 0.f}).view({2, 4});
        QVERIFY(torch::equal(mask[1].narrow(0, 0, 2), topRight));
        // Bottom-right window: four regions, only each token with itself.
        QVERIFY(torch::equal(mask[3], (1 - torch::eye(4)) * -100));
        QVERIFY(!shiftedWindowMask(windowGeometry({4, 4}, {2, 2}, false, false)).defined());
    }

    void windowsShrinkToSmallGrids()
    {
        auto g = windowGeometry({4, 4}, {4, 4}, true, false);
        QVERIFY(!g.shifted());
        QCOMPARE(g.window[0], std::int64_t{4});
        g = windowGeometry({3, 8}, {4, 4}, true, false);
        QCOMPARE(g.window[0], std::int64_t{3});
        QCOMPARE(g.shift[0], std::int64_t{0});
        QCOMPARE(g.shift[1], std::int64_t{2});
        QCOMPARE(shiftedWindowMask(g).size(0), std::int64_t{2});
        g = windowGeometry({4, 4}, {7, 7}, true, /*alwaysPartition=*/true);
        QCOMPARE(g.window[0], std::int64_t{7});
        QCOMPARE(g.shift[0], std::int64_t{3});
        QCOMPARE(g.padded[0], std::int64_t{7});
        g = windowGeometry({12, 12}, {5, 5}, false, false);
        QCOMPARE(g.padded[1], std::int64_t{15});
        QCOMPARE(g.numWindows(), std::int64_t{9});

        // The fixture shifts in both stages (grids 16 and 8, window 4); at 16 px the second
        // stage's grid equals the window, so its second block does not shift.
        auto model = createModel(fixtureSpec());
        QVERIFY(asSwin(model).block(0, 1).geometry().shifted());
        QVERIFY(asSwin(model).block(1, 1).geometry().shifted());
        QVERIFY(!asSwin(model).block(1, 0).geometry().shifted());
        auto small = createModel(withImageSize(fixtureSpec(), 16, 16));
        QVERIFY(!asSwin(small).block(1, 1).geometry().shifted());
        QVERIFY(asSwin(small).block(0, 1).geometry().shifted());
    }

    void computedBuffersAreNotStateDictKeys()
    {
        auto model = createModel(fixtureSpec());
        for (const auto& [key, tensor] : stateDictOf(*model)) {
            QVERIFY2(key.find("relative_position_index") == std::string::npos, key.c_str());
            QVERIFY2(key.find("attn_mask") == std::string::npos, key.c_str());
        }
        QVERIFY(model->named_buffers().is_empty());
    }

    void biasTablesResizeToALargerWindow()
    {
        auto spec = withArg(fixtureSpec(), "window_size", 8);
        WeightsReport report;
        auto model = createModelWithWeights(spec, fixtureWeights(), {}, &report);
        QVERIFY2(report.clean(), report.summary().c_str());
        QVERIFY2(containsNote(report, QStringLiteral("4 relative position bias tables resized")), report.summary().c_str());
        const auto timm = fixtureTensors();
        const auto ours = stateDictOf(*model);
        const std::string key0 = "layers.0.blocks.1.attn.relative_position_bias_table";
        const std::string key1 = "layers.1.blocks.0.attn.relative_position_bias_table";
        // Stage 1's 8x8 grid clamps the window to 8 as well.
        QCOMPARE(test::shapeString(ours.at(key0)), QStringLiteral("(225, 2)"));
        QCOMPARE(test::shapeString(ours.at(key1)), QStringLiteral("(225, 4)"));
        // The zero offset keeps its value exactly; offsets beyond the source's reach take the edge.
        const auto source = timm.at(key0).view({7, 7, 2});
        const auto resized = ours.at(key0).view({15, 15, 2});
        QVERIFY(torch::equal(resized[7][7], source[3][3]));
        QVERIFY(torch::equal(resized[0][0], source[0][0]));
        QVERIFY(torch::equal(resized[14][14], source[6][6]));
        QVERIFY(torch::equal(ours.at("layers.1.blocks.0.attn.qkv.weight"), timm.at("layers.1.blocks.0.attn.qkv.weight")));
        QVERIFY(torch::equal(ours.at("layers.1.downsample.reduction.weight"), timm.at("layers.1.downsample.reduction.weight")));
        model->eval();
        torch::NoGradGuard noGrad;
        QVERIFY(torch::isfinite(model->forward(fixtureIo().at("input"))).all().item<bool>());
    }

    void biasTablesResizeToASmallerWindow()
    {
        // Shrinking squeezes the geometric progression to steps of ~1: the centre of the table
        // is kept exactly, which is what timm's resize does.
        auto model = createModelWithWeights(withArg(fixtureSpec(), "window_size", 2), fixtureWeights());
        const auto timm = fixtureTensors();
        const auto ours = stateDictOf(*model);
        for (const std::string key : {"layers.0.blocks.0.attn.relative_position_bias_table",
                                      "layers.1.blocks.1.attn.relative_position_bias_table"}) {
            const auto heads = timm.at(key).size(1);
            QCOMPARE(ours.at(key).size(0), std::int64_t{9});
            const auto centre = timm.at(key).view({7, 7, heads}).narrow(0, 2, 3).narrow(1, 2, 3).reshape({9, heads});
            QVERIFY2(test::maxAbsDifference(ours.at(key), centre) < 1e-6, key.c_str());
        }
        model->eval();
        torch::NoGradGuard noGrad;
        QVERIFY(torch::isfinite(model->forward(fixtureIo().at("input"))).all().item<bool>());
    }

    void staleBuffersAndTheOriginalLayoutAreAdapted()
    {
        // As an older timm or the original repository saved it: index and mask buffers, merging
        // at the end of a stage and a plain "head".
        StateDict old;
        for (const auto& [key, tensor] : fixtureTensors()) {
            std::string renamed = key;
            if (key.rfind("layers.1.downsample.", 0) == 0)
                renamed = "layers.0" + key.substr(std::string("layers.1").size());
            else if (key.rfind("head.fc.", 0) == 0)
                renamed = "head." + key.substr(std::string("head.fc.").size());
            old[renamed] = tensor;
        }
        old["layers.0.blocks.0.attn.relative_position_index"] = relativePositionIndex({4, 4});
        old["layers.0.blocks.1.attn_mask"] = shiftedWindowMask(windowGeometry({16, 16}, {4, 4}, true, false));
        auto model = createModel(fixtureSpec());
        const auto report = loadStateDict(*model, old);
        QVERIFY2(report.clean(), report.summary().c_str());
        QVERIFY(containsNote(report, QStringLiteral("2 stored index/mask buffers dropped")));
        QVERIFY(containsNote(report, QStringLiteral("patch merging moved")));
        QVERIFY(containsNote(report, QStringLiteral("head.fc")));
        auto current = createModelWithWeights(fixtureSpec(), fixtureWeights());
        model->eval();
        current->eval();
        torch::NoGradGuard noGrad;
        const auto input = fixtureIo().at("input");
        QVERIFY(test::maxAbsDifference(model->forward(input), current->forward(input)) < 1e-6);
    }

    void greyInputSumsTheRgbKernel()
    {
        auto grey = createModelWithWeights(withInputChannels(fixtureSpec(), 1), fixtureWeights());
        const auto expected = fixtureTensors().at("patch_embed.proj.weight").sum(1, true);
        QVERIFY(test::maxAbsDifference(stateDictOf(*grey).at("patch_embed.proj.weight"), expected) < 1e-6);
        auto rgb = createModelWithWeights(fixtureSpec(), fixtureWeights());
        grey->eval();
        rgb->eval();
        torch::NoGradGuard noGrad;
        const auto image = torch::rand({2, 1, 32, 32});
        const auto logits = rgb->forward(image.expand({2, 3, 32, 32}));
        QVERIFY(test::maxAbsDifference(grey->forward(image), logits) <= 1e-4 * std::max(1.0, logits.abs().max().item<double>()));
    }

    void freezingCountsStages()
    {
        auto model = createModel(fixtureSpec());
        QCOMPARE(model->numUnits(), 2);
        applyFreeze(*model, parseFreezeSpec("1"));
        for (const auto& item : model->named_parameters()) {
            const auto& key = item.key();
            const bool frozen = key.rfind("patch_embed.", 0) == 0 || key.rfind("layers.0.", 0) == 0;
            QVERIFY2(item.value().requires_grad() != frozen, key.c_str());
        }
        // Stage 1 starts with its patch merging, which stays trainable with the stage.
        QVERIFY(model->named_parameters()["layers.1.downsample.reduction.weight"].requires_grad());
        applyFreeze(*model, parseFreezeSpec("2"));
        for (const auto& item : model->named_parameters()) {
            const bool head = item.key().rfind("norm.", 0) == 0 || item.key().rfind("head.fc.", 0) == 0;
            QVERIFY2(item.value().requires_grad() == head, item.key().c_str());
        }
        QVERIFY(model->parameterGroup("head.fc.weight").role == ParameterGroup::Role::Head);
        QVERIFY(model->parameterGroup("patch_embed.norm.bias").role == ParameterGroup::Role::Stem);
        QCOMPARE(model->parameterGroup("layers.1.downsample.norm.weight").unit, 1);
        QVERIFY_THROWS_EXCEPTION(ConfigError, applyFreeze(*model, parseFreezeSpec("3")));
    }

    void windowAttentionIsCaptured()
    {
        auto model = createModelWithWeights(fixtureSpec(), fixtureWeights());
        model->eval();
        torch::NoGradGuard noGrad;
        const auto input = fixtureIo().at("input");
        const auto plain = model->forward(input);
        model->setAttentionCapture(true);
        const auto captured = model->forward(input);
        QVERIFY(test::maxAbsDifference(plain, captured) < 1e-4);
        const auto sites = model->attentionSites();
        QCOMPARE(sites.size(), std::size_t{4});
        // (batch * windows, heads, area, area): 16 windows of 4x4 on the 16x16 grid, 4 on 8x8.
        QCOMPARE(test::shapeString(sites[0]->captured()), QStringLiteral("(32, 2, 16, 16)"));
        QCOMPARE(test::shapeString(sites[1]->captured()), QStringLiteral("(32, 2, 16, 16)"));
        QCOMPARE(test::shapeString(sites[2]->captured()), QStringLiteral("(8, 4, 16, 16)"));
        QCOMPARE(test::shapeString(sites[3]->captured()), QStringLiteral("(8, 4, 16, 16)"));
        for (auto* site : sites)
            QVERIFY(test::maxAbsDifference(site->captured().sum(-1), torch::ones({1})) < 1e-5);
        // The shifted block's last window holds four regions: nothing attends across them.
        const auto mask = shiftedWindowMask(windowGeometry({16, 16}, {4, 4}, true, false));
        const auto lastWindow = sites[1]->captured()[15];
        QVERIFY(lastWindow.masked_select(mask[15].lt(0).unsqueeze(0).expand_as(lastWindow)).max().item<double>() < 1e-20);
        model->setAttentionCapture(false);
        QVERIFY(!sites[0]->captured().defined());
    }

    void gridsThatAreNotWholeWindowsArePadded()
    {
        // A 12x12 grid with 5x5 windows is padded to 15x15 (9 windows), then 6x6 to 10x10 (4).
        auto spec = withArg(withImageSize(fixtureSpec(), 24, 24), "window_size", 5);
        auto model = createModel(spec);
        QCOMPARE(asSwin(model).block(0, 1).geometry().padded[0], std::int64_t{15});
        QCOMPARE(parameterCount(spec), countParameters(*model));
        model->setAttentionCapture(true);
        model->train();
        const auto logits = model->forward(torch::randn({2, 3, 24, 24}));
        QVERIFY(torch::isfinite(logits).all().item<bool>());
        logits.sum().backward();
        QVERIFY(torch::isfinite(asSwin(model).patch_embed->proj->weight.grad()).all().item<bool>());
        const auto sites = model->attentionSites();
        QCOMPARE(test::shapeString(sites[0]->captured()), QStringLiteral("(18, 2, 25, 25)"));
        QCOMPARE(test::shapeString(sites[3]->captured()), QStringLiteral("(8, 4, 25, 25)"));
    }

    void headCanBeRemovedAndReplaced()
    {
        auto model = createModel(fixtureSpec());
        model->eval();
        torch::NoGradGuard noGrad;
        const auto images = torch::randn({2, 3, 32, 32});
        model->resetClassifier(0);
        QCOMPARE(test::shapeString(model->forward(images)), QStringLiteral("(2, 48)"));
        QCOMPARE(stateDictOf(*model).count("head.fc.weight"), std::size_t{0});
        model->resetClassifier(3);
        QCOMPARE(test::shapeString(model->forward(images)), QStringLiteral("(2, 3)"));
        // A checkpoint for 5 classes gives a 3-class model a fresh head and everything else.
        const auto report = loadWeights(*model, fixtureWeights());
        QVERIFY(report.freshHead);
        QVERIFY(report.clean());
        QCOMPARE(numClassesInWeights(fixtureWeights()), std::int64_t{5});
    }

    void badConfigsAreRefused()
    {
        const auto build = [](nlohmann::json extra) {
            auto config = fixtureSpec().args;
            config.update(extra);
            config["family"] = "swin";
            return createModel(specFromConfig(config));
        };
        // 36 px / 2 = 18, 9 after one merge: a third stage cannot merge an odd grid.
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"img_size", 36}, {"depths", {2, 2, 2}}, {"num_heads", {2, 4, 8}}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"num_heads", {2, 4, 8}}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"global_pool", ""}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"strict_img_size", false}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"window", 4}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"img_size", 33}}));
        QVERIFY_THROWS_EXCEPTION(ShapeError, createModel(fixtureSpec())->forward(torch::randn({1, 3, 64, 64})));
    }

    void namedModelsMatchTimmsPublishedSizes()
    {
        // timm / torchvision: Swin-T 28,288,354 parameters and 4.5 GMACs; Swin-S 49,606,258 and 8.7.
        const auto& tiny = ModelRegistry::instance().model("swin_tiny_patch4_window7_224");
        QCOMPARE(parameterCount(tiny), std::int64_t{28288354});
        QCOMPARE(countParameters(*createModel(tiny)), std::int64_t{28288354});
        QVERIFY(std::abs(static_cast<double>(macsPerImage(tiny)) - 4.5e9) < 0.1e9);
        const auto& small = ModelRegistry::instance().model("swin_small_patch4_window7_224");
        QCOMPARE(parameterCount(small), std::int64_t{49606258});
        QVERIFY(std::abs(static_cast<double>(macsPerImage(small)) - 8.7e9) < 0.15e9);
        QCOMPARE(ModelRegistry::instance().models("swin_*").size(), std::size_t{4});
    }
};

QTEST_GUILESS_MAIN(TestSwin)
#include "tst_swin.moc"
