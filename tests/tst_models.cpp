// Every registered model builds, runs and trains; weights adapt as fine-tuning needs; freezing.
#include "core/errors.h"
#include "core/io/safetensors.h"
#include "core/models/deit.h"
#include "core/models/registry.h"
#include "core/torch_compat.h"
#include "core/models/vit.h"
#include "core/models/weights.h"
#include "test_support.h"

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace vitlab;

namespace {

ModelSpec fixtureSpec(const std::string& name)
{
    std::ifstream in(test::timmFixturesDir() / "index.json");
    return specFromConfig(nlohmann::json::parse(in)[name]["config"]);
}

std::filesystem::path fixtureWeights(const std::string& name)
{
    return test::timmFixturesDir() / (name + ".safetensors");
}

} // namespace

class TestModels : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase() { torch::manual_seed(0); }

    void everyModelRunsAndTrains_data()
    {
        QTest::addColumn<QString>("name");
        const auto models = ModelRegistry::instance().models();
        QVERIFY(models.size() >= 10);
        for (const auto& spec : models)
            QTest::newRow(spec.name.c_str()) << QString::fromStdString(spec.name);
    }
    void everyModelRunsAndTrains()
    {
        QFETCH(QString, name);
        auto spec = withNumClasses(ModelRegistry::instance().model(name.toStdString()), 7);
        auto model = createModel(spec);
        model->train();
        const auto images = torch::randn({2, spec.input.channels, spec.input.size[0], spec.input.size[1]});
        const auto logits = model->forward(images);
        QCOMPARE(test::shapeString(logits), QStringLiteral("(2, 7)"));
        QVERIFY(torch::isfinite(logits).all().item<bool>());
        logits.logsumexp(1).sum().backward();
        for (const auto& item : model->named_parameters()) {
            const auto& grad = item.value().grad();
            QVERIFY2(grad.defined(), item.key().c_str());
            QVERIFY2(torch::isfinite(grad).all().item<bool>(), item.key().c_str());
        }
        QCOMPARE(parameterCount(spec), countParameters(*model));
        QVERIFY(macsPerImage(spec) > 0);
    }

    // The trainer's default precision on this CPU: every family's small presets must train under
    // bfloat16 autocast (norms fed by convolutions or linear layers used to refuse it).
    void everySmallPresetTrainsInBfloat16_data()
    {
        QTest::addColumn<QString>("name");
        for (const auto& spec : ModelRegistry::instance().models()) {
            if (spec.input.size[0] <= 64)
                QTest::newRow(spec.name.c_str()) << QString::fromStdString(spec.name);
        }
    }
    void everySmallPresetTrainsInBfloat16()
    {
        QFETCH(QString, name);
        auto spec = withNumClasses(ModelRegistry::instance().model(name.toStdString()), 5);
        auto model = createModel(spec);
        model->train();
        const auto images = torch::randn({2, spec.input.channels, spec.input.size[0], spec.input.size[1]});
        torch::Tensor loss;
        {
            compat::AutocastGuard autocast(c10::DeviceType::CPU, at::kBFloat16);
            loss = model->forward(images).to(torch::kFloat32).logsumexp(1).sum();
        }
        QVERIFY(std::isfinite(loss.item<double>()));
        loss.backward();
        for (const auto& item : model->named_parameters()) {
            QVERIFY2(item.value().grad().defined(), item.key().c_str());
            QCOMPARE(item.value().grad().scalar_type(), torch::kFloat32);
        }
    }

    // Training goes through the fused attention kernel where LibTorch has one (2.x); its
    // gradients must be the explicit softmax path's, family by family (Swin's masked windows too).
    void attentionPathsAgreeInTraining_data()
    {
        QTest::addColumn<QString>("name");
        for (const auto& spec : ModelRegistry::instance().models()) {
            if (spec.input.size[0] <= 64)
                QTest::newRow(spec.name.c_str()) << QString::fromStdString(spec.name);
        }
    }
    void attentionPathsAgreeInTraining()
    {
        QFETCH(QString, name);
        auto spec = withNumClasses(ModelRegistry::instance().model(name.toStdString()), 5);
        torch::manual_seed(3);
        auto model = createModel(spec);
        model->train();
        torch::manual_seed(4);
        const auto images = torch::randn({3, spec.input.channels, spec.input.size[0], spec.input.size[1]});
        const auto gradientsOf = [&](bool capturing) {
            model->setAttentionCapture(capturing);
            model->zero_grad();
            torch::manual_seed(5); // the same drop-path draws on both paths (Swin's presets drop)
            const auto logits = model->forward(images);
            logits.logsumexp(1).sum().backward();
            std::vector<torch::Tensor> gradients{logits.detach().clone()};
            for (const auto& parameter : model->parameters())
                gradients.push_back(parameter.grad().clone());
            model->setAttentionCapture(false);
            return gradients;
        };
        const auto fused = gradientsOf(false);
        const auto explicitPath = gradientsOf(true);
        QCOMPARE(fused.size(), explicitPath.size());
        for (std::size_t i = 0; i < fused.size(); ++i) {
            const double scale = std::max(1e-3, explicitPath[i].abs().max().item<double>());
            const double difference = test::maxAbsDifference(fused[i], explicitPath[i]);
            QVERIFY2(difference <= 1e-4 * scale, qPrintable(QStringLiteral("tensor %1: max |diff| %2 (scale %3)")
                                                                .arg(i)
                                                                .arg(difference)
                                                                .arg(scale)));
        }
    }

    void unknownNamesSuggestAlternatives()
    {
        try {
            ModelRegistry::instance().model("vit_tiny_patch16_22");
            QFAIL("an unknown name must be refused");
        } catch (const ConfigError& error) {
            QVERIFY(QString::fromUtf8(error.what()).contains(QStringLiteral("vit_tiny_patch16_224")));
        }
        QVERIFY_THROWS_EXCEPTION(ConfigError, specFromConfig({{"family", "resnet"}}));
        QVERIFY_THROWS_EXCEPTION(ConfigError, createModel(specFromConfig({{"family", "vit"}, {"embed_dimm", 48}})));
        QVERIFY_THROWS_EXCEPTION(ConfigError, createModel(specFromConfig({{"family", "vit"}, {"img_size", 30}, {"patch_size", 8}})));
        QVERIFY_THROWS_EXCEPTION(ConfigError, createModel(specFromConfig({{"family", "vit"}, {"embed_dim", 50}, {"num_heads", 3}})));
    }

    void wildcardListing()
    {
        const auto distilled = ModelRegistry::instance().models("*distilled*");
        QVERIFY(distilled.size() >= 2);
        for (const auto& spec : distilled)
            QCOMPARE(QString::fromStdString(spec.family), QStringLiteral("deit"));
        QVERIFY(ModelRegistry::instance().models("nothing_like_this*").empty());
    }

    void vitTinyMatchesTimmsPublishedSize()
    {
        // timm's model table: vit_tiny_patch16_224 has 5.72 M parameters and 1.26 GMACs.
        const auto& spec = ModelRegistry::instance().model("vit_tiny_patch16_224");
        const auto model = createModel(spec);
        QCOMPARE(countParameters(*model), std::int64_t{5717416});
        QVERIFY(std::abs(static_cast<double>(macsPerImage(spec)) - 1.26e9) < 0.02e9);
    }

    void configVariantsCountTheirParameters_data()
    {
        QTest::addColumn<QString>("config");
        QTest::newRow("pre_norm") << QStringLiteral(R"({"family":"vit","img_size":32,"patch_size":8,"embed_dim":48,"depth":2,"num_heads":3,"pre_norm":true})");
        QTest::newRow("layer_scale_qk_norm") << QStringLiteral(R"({"family":"vit","img_size":32,"patch_size":8,"embed_dim":48,"depth":2,"num_heads":3,"init_values":1e-5,"qk_norm":true,"qkv_bias":false})");
        QTest::newRow("avg_fc_norm") << QStringLiteral(R"({"family":"vit","img_size":[32,48],"patch_size":8,"embed_dim":48,"depth":1,"num_heads":3,"class_token":false,"global_pool":"avg"})");
        QTest::newRow("deit_no_head") << QStringLiteral(R"({"family":"deit","img_size":32,"patch_size":8,"embed_dim":48,"depth":1,"num_heads":3,"num_classes":0})");
    }
    void configVariantsCountTheirParameters()
    {
        QFETCH(QString, config);
        const auto spec = specFromConfig(nlohmann::json::parse(config.toStdString()));
        const auto model = createModel(spec);
        QCOMPARE(parameterCount(spec), countParameters(*model));
        const auto keys = stateDictOf(*model);
        QCOMPARE(keys.count("patch_embed.proj.bias") == 0, spec.args.value("pre_norm", false));
        model->eval();
        torch::NoGradGuard noGrad;
        const auto out = model->forward(torch::randn({1, 3, spec.input.size[0], spec.input.size[1]}));
        QVERIFY(torch::isfinite(out).all().item<bool>());
    }

    void imageShapeIsChecked()
    {
        auto model = createModel(fixtureSpec("vit"));
        QVERIFY_THROWS_EXCEPTION(ShapeError, model->forward(torch::randn({1, 3, 64, 64})));
        QVERIFY_THROWS_EXCEPTION(ShapeError, model->forward(torch::randn({3, 32, 32})));
    }

    void numClassesComesFromTheFile()
    {
        auto spec = fixtureSpec("vit");
        spec.args.erase("num_classes");
        WeightsReport report;
        auto model = createModelWithWeights(spec, fixtureWeights("vit"), {}, &report);
        QCOMPARE(model->numClasses(), std::int64_t{5});
        QVERIFY(report.clean());
        QCOMPARE(numClassesInWeights(fixtureWeights("vit")), std::int64_t{5});
    }

    void otherClassCountGetsAFreshHead()
    {
        auto model = createModel(withNumClasses(fixtureSpec("deit_distilled"), 3));
        const auto report = loadWeights(*model, fixtureWeights("deit_distilled"));
        QVERIFY(report.freshHead);
        QVERIFY(report.clean());
        const auto timm = safetensors::load(fixtureWeights("deit_distilled")).tensors;
        const auto ours = stateDictOf(*model);
        QVERIFY(torch::equal(ours.at("blocks.1.mlp.fc2.weight"), timm.at("blocks.1.mlp.fc2.weight")));
        QCOMPARE(ours.at("head_dist.weight").size(0), 3);
        QVERIFY_THROWS_EXCEPTION(FormatError, loadWeights(*model, fixtureWeights("deit_distilled"), {true, false}));
    }

    void fileWithoutAHeadGetsAFreshHead()
    {
        // Self-supervised weights (timm's DINO and MAE tags) have no head at all.
        auto tensors = safetensors::load(fixtureWeights("vit")).tensors;
        tensors.erase("head.weight");
        tensors.erase("head.bias");
        auto model = createModel(withNumClasses(fixtureSpec("vit"), 3));
        const auto report = loadStateDict(*model, tensors);
        QVERIFY(report.freshHead);
        QVERIFY(report.clean());
        QVERIFY2(QString::fromStdString(report.summary()).contains("the file has no head"), report.summary().c_str());
        // Only the head may be missing: a file without the final norm is still refused.
        tensors.erase("norm.weight");
        QVERIFY_THROWS_EXCEPTION(FormatError, loadStateDict(*model, tensors));
    }

    void strictLoadingNamesTheDifferences()
    {
        // A distilled checkpoint in a plain ViT: dist_token and head_dist are unexpected.
        auto model = createModel(fixtureSpec("vit"));
        try {
            loadWeights(*model, fixtureWeights("deit_distilled"));
            QFAIL("strict loading must refuse a distilled checkpoint in a plain ViT");
        } catch (const FormatError& error) {
            const QString message = QString::fromUtf8(error.what());
            QVERIFY2(message.contains(QStringLiteral("dist_token")), qPrintable(message));
            QVERIFY2(message.contains(QStringLiteral("pos_embed")), qPrintable(message));
        }
        WeightsLoadOptions lenient;
        lenient.strict = false;
        const auto report = loadWeights(*model, fixtureWeights("deit_distilled"), lenient);
        QVERIFY(!report.clean());
        QVERIFY(std::find(report.unexpected.begin(), report.unexpected.end(), "dist_token") != report.unexpected.end());
    }

    void positionEmbeddingResizesForAnotherImageSize()
    {
        auto spec = withImageSize(fixtureSpec("vit"), 64, 64);
        WeightsReport report;
        auto model = createModelWithWeights(spec, fixtureWeights("vit"), {}, &report);
        QVERIFY(report.clean());
        auto* vit = dynamic_cast<VisionTransformerImpl*>(model.get());
        QCOMPARE(test::shapeString(vit->pos_embed), QStringLiteral("(1, 65, 48)"));
        const auto timm = safetensors::load(fixtureWeights("vit")).tensors;
        // The class token's position is kept; the grid is interpolated.
        QVERIFY(torch::equal(vit->pos_embed.narrow(1, 0, 1), timm.at("pos_embed").narrow(1, 0, 1)));
        model->eval();
        torch::NoGradGuard noGrad;
        QVERIFY(torch::isfinite(model->forward(torch::randn({1, 3, 64, 64}))).all().item<bool>());
    }

    void greyInputSumsTheRgbKernel()
    {
        auto spec = withInputChannels(fixtureSpec("vit"), 1);
        auto model = createModelWithWeights(spec, fixtureWeights("vit"));
        const auto timm = safetensors::load(fixtureWeights("vit")).tensors;
        const auto expected = timm.at("patch_embed.proj.weight").sum(1, true);
        QVERIFY(test::maxAbsDifference(stateDictOf(*model).at("patch_embed.proj.weight"), expected) < 1e-6);
        // A grey image equals the RGB model on the same image repeated over three channels.
        auto rgb = createModelWithWeights(fixtureSpec("vit"), fixtureWeights("vit"));
        model->eval();
        rgb->eval();
        torch::NoGradGuard noGrad;
        const auto grey = torch::rand({2, 1, 32, 32});
        QVERIFY(test::maxAbsDifference(model->forward(grey), rgb->forward(grey.expand({2, 3, 32, 32}))) < 1e-3);
    }

    void halfPrecisionFilesAreConverted()
    {
        auto timm = safetensors::load(fixtureWeights("vit")).tensors;
        for (auto& [key, tensor] : timm)
            tensor = tensor.to(torch::kBFloat16);
        QTemporaryDir dir;
        const std::filesystem::path path = dir.filePath(QStringLiteral("bf16.safetensors")).toStdString();
        safetensors::save(path, timm);
        WeightsReport report;
        auto model = createModelWithWeights(fixtureSpec("vit"), path, {}, &report);
        QVERIFY(report.clean());
        QVERIFY(QString::fromStdString(report.summary()).contains(QStringLiteral("BFloat16")));
        QCOMPARE(stateDictOf(*model).at("head.weight").scalar_type(), torch::kFloat32);
    }

    void freezingKeepsTheRightParametersTrainable()
    {
        auto model = createModel(fixtureSpec("vit"));
        applyFreeze(*model, parseFreezeSpec("head"));
        for (const auto& item : model->named_parameters()) {
            const bool head = item.key().rfind("head", 0) == 0 || item.key().rfind("norm.", 0) == 0;
            QVERIFY2(item.value().requires_grad() == head, item.key().c_str());
        }
        applyFreeze(*model, parseFreezeSpec("1"));
        const auto params = model->named_parameters();
        QVERIFY(!params["patch_embed.proj.weight"].requires_grad());
        QVERIFY(!params["pos_embed"].requires_grad());
        QVERIFY(!params["blocks.0.attn.qkv.weight"].requires_grad());
        QVERIFY(params["blocks.1.attn.qkv.weight"].requires_grad());
        QVERIFY(params["head.weight"].requires_grad());
        applyFreeze(*model, parseFreezeSpec("none"));
        QCOMPARE(countParameters(*model, true), countParameters(*model));
        QVERIFY_THROWS_EXCEPTION(ConfigError, applyFreeze(*model, parseFreezeSpec("3")));
        QVERIFY_THROWS_EXCEPTION(ConfigError, parseFreezeSpec("some"));
    }

    void hardDistillationFollowsTheTeacher()
    {
        // The distillation head is pulled toward the teacher's class, the class head toward the label.
        const auto labels = torch::tensor({0, 1}, torch::kLong);
        const auto teacher = torch::tensor({{0.0, 0.0, 5.0}, {0.0, 5.0, 0.0}});
        const auto agreeing = torch::tensor({{0.0, 0.0, 9.0}, {0.0, 9.0, 0.0}});
        const auto disagreeing = torch::tensor({{9.0, 0.0, 0.0}, {9.0, 0.0, 0.0}});
        const auto classLogits = torch::tensor({{9.0, 0.0, 0.0}, {0.0, 9.0, 0.0}});
        const auto good = hardDistillationLoss(classLogits, agreeing, labels, teacher).item<double>();
        const auto bad = hardDistillationLoss(classLogits, disagreeing, labels, teacher).item<double>();
        QVERIFY(good < 0.01);
        QVERIFY(bad > 2.0);
        QVERIFY_THROWS_EXCEPTION(ShapeError, hardDistillationLoss(classLogits, agreeing, labels, teacher.narrow(1, 0, 2)));
    }

    void distilledHeadsAverageInEval()
    {
        auto model = createModelWithWeights(fixtureSpec("deit_distilled"), fixtureWeights("deit_distilled"));
        auto* deit = dynamic_cast<VisionTransformerDistilledImpl*>(model.get());
        QVERIFY(deit);
        model->eval();
        torch::NoGradGuard noGrad;
        const auto features = model->forward_features(torch::randn({2, 3, 32, 32}));
        const auto [cls, dist] = deit->forwardBothHeads(features);
        QVERIFY(!torch::allclose(cls, dist));
        QVERIFY(torch::allclose(model->forward_head(features), (cls + dist) / 2));
    }
};

QTEST_GUILESS_MAIN(TestModels)
#include "tst_models.moc"
