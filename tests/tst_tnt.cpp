// TNT beyond the shared fixture tests: the per-patch pixel embedding, resizing patch_pos and
// pixel_pos, the official checkpoint's key names, grey input, freezing, and both attention levels.
#include "core/errors.h"
#include "core/io/safetensors.h"
#include "core/models/registry.h"
#include "core/models/tnt.h"
#include "core/models/weights.h"
#include "test_support.h"

#include <QtTest>

#include <fstream>

using namespace vitlab;

namespace {

ModelSpec fixtureSpec()
{
    std::ifstream in(test::timmFixturesDir() / "index.json");
    return specFromConfig(nlohmann::json::parse(in)["tnt"]["config"]);
}

std::filesystem::path fixtureWeights()
{
    return test::timmFixturesDir() / "tnt.safetensors";
}

StateDict fixtureStateDict()
{
    return safetensors::load(fixtureWeights()).tensors;
}

TntImpl& asTnt(const Classifier& model)
{
    auto* tnt = dynamic_cast<TntImpl*>(model.get());
    if (!tnt)
        throw std::runtime_error("not a TNT model");
    return *tnt;
}

} // namespace

class TestTnt : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { torch::manual_seed(0); }

    void pixelEmbeddingStaysInsideItsPatch()
    {
        // Non-legacy TNT convolves each patch on its own: changing one patch's pixels changes
        // only that patch's pixel embeddings, even where the 7x7 kernel crosses the border.
        auto model = createModel(fixtureSpec());
        auto& tnt = asTnt(model);
        model->eval();
        torch::NoGradGuard noGrad;
        auto images = torch::randn({1, 3, 32, 32});
        const auto before = tnt.pixel_embed(images, tnt.pixel_pos);
        QCOMPARE(test::shapeString(before), QStringLiteral("(16, 4, 12)"));
        images.slice(2, 0, 8).slice(3, 8, 16).add_(1.0); // patch (0, 1)
        const auto after = tnt.pixel_embed(images, tnt.pixel_pos);
        const auto changed = (after - before).abs().amax({1, 2}).gt(0);
        QVERIFY(changed[1].item<bool>());
        QCOMPARE(changed.sum().item<std::int64_t>(), std::int64_t{1});
    }

    void patchPosResizesForAnotherImageSize()
    {
        WeightsReport report;
        auto model = createModelWithWeights(withImageSize(fixtureSpec(), 64, 64), fixtureWeights(), {}, &report);
        QVERIFY2(report.clean(), report.summary().c_str());
        auto& tnt = asTnt(model);
        QCOMPARE(test::shapeString(tnt.patch_pos), QStringLiteral("(1, 65, 48)"));
        const auto timm = fixtureStateDict();
        // The class token's position is kept; the inner pixel grid does not change.
        QVERIFY(torch::equal(tnt.patch_pos.narrow(1, 0, 1), timm.at("patch_pos").narrow(1, 0, 1)));
        QVERIFY(torch::equal(tnt.pixel_pos, timm.at("pixel_pos")));
        QVERIFY(torch::equal(stateDictOf(*model).at("blocks.1.proj.weight"), timm.at("blocks.1.proj.weight")));
        model->eval();
        torch::NoGradGuard noGrad;
        QVERIFY(torch::isfinite(model->forward(torch::randn({2, 3, 64, 64}))).all().item<bool>());
    }

    void pixelPosResizesForAnotherPixelGrid()
    {
        // first_stride 2 gives 4x4 pixels per 8-px patch instead of 2x2: the patch grid stays.
        auto spec = fixtureSpec();
        spec.args["first_stride"] = 2;
        auto model = createModel(spec);
        auto timm = fixtureStateDict();
        timm["pixel_pos"] = torch::full({1, 12, 2, 2}, 0.25);
        WeightsLoadOptions lenient;
        lenient.strict = false;
        const auto report = loadStateDict(*model, timm, lenient);
        auto& tnt = asTnt(model);
        QCOMPARE(test::shapeString(tnt.pixel_pos), QStringLiteral("(1, 12, 4, 4)"));
        QVERIFY(torch::allclose(tnt.pixel_pos, torch::full({1, 12, 4, 4}, 0.25)));
        QVERIFY(torch::equal(tnt.patch_pos, timm.at("patch_pos")));
        // The pixel-to-patch projections are sized by the pixel grid and cannot be carried over.
        const QString mismatched = QString::fromStdString(report.summary());
        QVERIFY2(mismatched.contains(QStringLiteral("norm1_proj.weight")), qPrintable(mismatched));
        QVERIFY2(!mismatched.contains(QStringLiteral("pixel_pos:")), qPrintable(mismatched));
    }

    void officialCheckpointKeysAreRenamed()
    {
        // The huawei-noah checkpoints name the modules differently and store pixel_pos as
        // (1, pixels, inner_dim); timm's filter maps them, so the logits must not change.
        const std::map<std::string, std::string> officialNames{
            {"patch_pos", "outer_pos"},     {"pixel_pos", "inner_pos"},     {"pixel_embed", "patch_embed"},
            {"norm1_proj", "proj_norm1"},   {"norm2_proj", "proj_norm2"},   {"norm_in", "inner_norm1"},
            {"attn_in", "inner_attn"},      {"norm_mlp_in", "inner_norm2"}, {"mlp_in", "inner_mlp"},
            {"norm_out", "outer_norm1"},    {"attn_out", "outer_attn"},     {"norm_mlp", "outer_norm2"},
            {"mlp", "outer_mlp"}};
        StateDict official;
        for (const auto& [key, tensor] : fixtureStateDict()) {
            std::string name;
            std::stringstream parts(key);
            for (std::string part; std::getline(parts, part, '.');) {
                const auto it = officialNames.find(part);
                name += (name.empty() ? "" : ".") + (it == officialNames.end() ? part : it->second);
            }
            official[name] = name == "inner_pos" ? tensor.flatten(2).transpose(1, 2).contiguous() : tensor;
        }
        QVERIFY(official.count("blocks.0.outer_attn.qk.weight"));
        official["outer_tokens"] = torch::zeros({1});
        auto model = createModel(fixtureSpec());
        const auto report = loadStateDict(*model, official);
        QVERIFY2(report.clean(), report.summary().c_str());
        auto reference = createModelWithWeights(fixtureSpec(), fixtureWeights());
        model->eval();
        reference->eval();
        torch::NoGradGuard noGrad;
        const auto images = torch::randn({2, 3, 32, 32});
        QVERIFY(torch::equal(model->forward(images), reference->forward(images)));
    }

    void greyInputFromTheRgbFixture()
    {
        auto model = createModelWithWeights(withInputChannels(fixtureSpec(), 1), fixtureWeights());
        const auto expected = fixtureStateDict().at("pixel_embed.proj.weight").sum(1, true);
        QVERIFY(test::maxAbsDifference(stateDictOf(*model).at("pixel_embed.proj.weight"), expected) < 1e-6);
        auto rgb = createModelWithWeights(fixtureSpec(), fixtureWeights());
        model->eval();
        rgb->eval();
        torch::NoGradGuard noGrad;
        const auto grey = torch::rand({2, 1, 32, 32});
        const auto logits = model->forward(grey);
        const double tolerance = 1e-4 * std::max(1.0, logits.abs().max().item<double>());
        QVERIFY(test::maxAbsDifference(logits, rgb->forward(grey.expand({2, 3, 32, 32}))) <= tolerance);
    }

    void freezingTheFirstBlocks()
    {
        auto model = createModel(fixtureSpec());
        QCOMPARE(model->numUnits(), 2);
        applyFreeze(*model, parseFreezeSpec("1"));
        auto params = model->named_parameters();
        for (const char* stem : {"pixel_embed.proj.weight", "pixel_pos", "patch_pos", "cls_token",
                                 "norm1_proj.weight", "proj.bias", "norm2_proj.weight", "blocks.0.attn_in.qk.weight",
                                 "blocks.0.mlp.fc2.bias"})
            QVERIFY2(!params[stem].requires_grad(), stem);
        for (const char* trained : {"blocks.1.norm1_proj.weight", "blocks.1.attn_out.v.weight", "norm.weight",
                                    "head.weight"})
            QVERIFY2(params[trained].requires_grad(), trained);
        model->train();
        model->forward(torch::randn({2, 3, 32, 32})).sum().backward();
        QVERIFY(!params["blocks.0.proj.weight"].grad().defined());
        QVERIFY(params["blocks.1.proj.weight"].grad().defined());

        applyFreeze(*model, parseFreezeSpec("head"));
        for (const auto& item : model->named_parameters()) {
            const bool head = item.key().rfind("head.", 0) == 0 || item.key().rfind("norm.", 0) == 0;
            QVERIFY2(item.value().requires_grad() == head, item.key().c_str());
        }
    }

    void bothAttentionLevelsAreCaptured()
    {
        auto model = createModelWithWeights(fixtureSpec(), fixtureWeights());
        auto& tnt = asTnt(model);
        model->eval();
        torch::NoGradGuard noGrad;
        const auto images = torch::randn({2, 3, 32, 32});
        const auto fused = model->forward(images);
        model->setAttentionCapture(true);
        const auto explicitPath = model->forward(images);
        QVERIFY(test::maxAbsDifference(fused, explicitPath) <= 1e-4 * std::max(1.0, fused.abs().max().item<double>()));

        // Every site in the order the input passes them: attn_in, then attn_out, per block.
        const auto all = model->attentionSites();
        const auto inner = tnt.innerAttentionSites();
        const auto outer = tnt.outerAttentionSites();
        QCOMPARE(all.size(), std::size_t{4});
        QCOMPARE(inner.size(), std::size_t{2});
        QCOMPARE(outer.size(), std::size_t{2});
        QVERIFY(all[0] == inner[0] && all[1] == outer[0] && all[2] == inner[1] && all[3] == outer[1]);
        for (std::size_t block = 0; block < 2; ++block) {
            const auto& pixels = inner[block]->captured();
            const auto& patches = outer[block]->captured();
            QCOMPARE(test::shapeString(pixels), QStringLiteral("(32, 2, 4, 4)"));
            QCOMPARE(test::shapeString(patches), QStringLiteral("(2, 3, 17, 17)"));
            QVERIFY(torch::allclose(pixels.sum(-1), torch::ones({32, 2, 4}), 1e-5, 1e-5));
            QVERIFY(torch::allclose(patches.sum(-1), torch::ones({2, 3, 17}), 1e-5, 1e-5));
        }
        model->setAttentionCapture(false);
        QVERIFY(!inner.front()->captured().defined());
        QVERIFY(!outer.back()->captured().defined());
    }

    void averagePoolingAndNoHead()
    {
        auto spec = fixtureSpec();
        spec.args["global_pool"] = "avg";
        auto model = createModelWithWeights(spec, fixtureWeights());
        model->eval();
        torch::NoGradGuard noGrad;
        const auto features = model->forward_features(torch::randn({2, 3, 32, 32}));
        QCOMPARE(test::shapeString(features), QStringLiteral("(2, 17, 48)"));
        QVERIFY(torch::allclose(model->forward_head(features, true), features.narrow(1, 1, 16).mean(1)));
        model->resetClassifier(0);
        QCOMPARE(test::shapeString(model->forward_head(features)), QStringLiteral("(2, 48)"));
        model->resetClassifier(3);
        QCOMPARE(test::shapeString(model->forward_head(features)), QStringLiteral("(2, 3)"));
    }

    void configErrors()
    {
        const auto build = [](nlohmann::json extra) {
            auto config = fixtureSpec().args;
            config.update(extra);
            config["family"] = "tnt";
            return createModel(specFromConfig(config));
        };
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"legacy", true}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"num_heads_inner", 5}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"num_heads_outer", 5}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"img_size", 30}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, build({{"num_heads", 3}}));
        QVERIFY(build({{"legacy", false}}) != nullptr);
    }

    void standardSizesMatchTimm()
    {
        // timm's table lists tnt_s_patch16_224 at 23.76 M parameters and 5.24 GMACs; the 23.76 M
        // is the legacy layout (23,755,336). Each current block normalises the whole patch before
        // proj (norm1_proj over 384 values, not 24), drops proj's bias and adds norm2_proj.
        const auto& small = ModelRegistry::instance().model("tnt_s_patch16_224");
        QCOMPARE(small.input.mean[0], 0.5);
        const auto count = parameterCount(small);
        QCOMPARE(count, std::int64_t{23755336 + 12 * (2 * 384 - 2 * 24 - 384 + 2 * 384)});
        QVERIFY(std::abs(static_cast<double>(macsPerImage(small)) - 5.24e9) < 0.1e9);
        QCOMPARE(countParameters(*createModel(small)), count);
    }
};

QTEST_GUILESS_MAIN(TestTnt)
#include "tst_tnt.moc"
