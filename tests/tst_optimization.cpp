// The pieces of a training step: the learning-rate schedule, which parameters decay, the
// soft-target loss, AdamW's state round trip, and the training configuration's JSON.
#include "core/errors.h"
#include "core/models/registry.h"
#include "core/train/optimization.h"
#include "core/train/train_config.h"

#include <QtTest>

#include <cmath>

using namespace vitlab;

namespace {

Classifier tinyVit()
{
    return createModel(specFromConfig(nlohmann::json::parse(
        R"({"family": "vit", "img_size": 8, "patch_size": 4, "embed_dim": 8, "depth": 1, "num_heads": 2, "num_classes": 3})")));
}

} // namespace

class TestOptimization : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void scheduleWarmsUpThenFollowsTheCosine()
    {
        LearningRateSchedule schedule{1.0, 0.1, 10, 110};
        QCOMPARE(schedule.at(0), 0.1);
        QCOMPARE(schedule.at(4), 0.5);
        QCOMPARE(schedule.at(9), 1.0);
        QCOMPARE(schedule.at(10), 1.0);
        QVERIFY(std::abs(schedule.at(60) - 0.55) < 1e-12); // half way down the cosine
        QVERIFY(std::abs(schedule.at(110) - 0.1) < 1e-12);
        QVERIFY(std::abs(schedule.at(500) - 0.1) < 1e-12);
        for (std::int64_t step = 11; step < 110; ++step)
            QVERIFY(schedule.at(step) < schedule.at(step - 1));
    }

    void weightDecaySkipsNormsBiasesAndEmbeddings()
    {
        const auto model = tinyVit();
        std::set<std::string> decayed;
        for (const auto& item : model->named_parameters()) {
            if (takesWeightDecay(item.key(), item.value()))
                decayed.insert(item.key());
        }
        QVERIFY(decayed.count("blocks.0.attn.qkv.weight"));
        QVERIFY(decayed.count("head.weight"));
        QVERIFY(decayed.count("patch_embed.proj.weight"));
        QVERIFY(!decayed.count("blocks.0.attn.qkv.bias"));
        QVERIFY(!decayed.count("blocks.0.norm1.weight"));
        QVERIFY(!decayed.count("pos_embed"));
        QVERIFY(!decayed.count("cls_token"));
        QVERIFY(!takesWeightDecay("layers.0.blocks.0.attn.relative_position_bias_table", torch::zeros({9, 2})));
    }

    void softTargetLossEqualsCrossEntropy()
    {
        torch::manual_seed(3);
        const auto logits = torch::randn({6, 4});
        const auto labels = torch::tensor({0, 1, 2, 3, 1, 1}, torch::kInt64);
        const auto oneHot = torch::one_hot(labels, 4).to(torch::kFloat32);
        const auto plain = torch::nn::functional::cross_entropy(logits, labels);
        QVERIFY(std::abs(softTargetCrossEntropy(logits, oneHot).item<double>() - plain.item<double>()) < 1e-6);
        const auto weights = torch::tensor({1.0f, 0.5f, 2.0f, 3.0f});
        const auto weighted = torch::nn::functional::cross_entropy(
            logits, labels, torch::nn::functional::CrossEntropyFuncOptions().weight(weights));
        QVERIFY(std::abs(softTargetCrossEntropy(logits, oneHot, weights).item<double>() - weighted.item<double>()) < 1e-6);
    }

    void stateRoundTripRestoresWeightsAndMoments()
    {
        torch::manual_seed(0);
        OptimizationOptions options;
        options.emaDecay = 0.9;
        auto first = std::make_unique<Optimization>(tinyVit(), options, tinyVit);
        const auto images = torch::randn({4, 3, 8, 8});
        const auto labels = torch::tensor({0, 1, 2, 0}, torch::kInt64);
        const auto targets = torch::one_hot(labels, 3).to(torch::kFloat32);
        for (int i = 0; i < 3; ++i) {
            first->accumulate(images, targets, labels);
            first->step(1e-2);
        }
        const auto saved = first->state();
        QVERIFY(saved.count("adamw.head.weight.exp_avg"));
        QVERIFY(saved.count("ema.head.weight"));
        QCOMPARE(saved.at("adamw.head.weight.step").item<std::int64_t>(), std::int64_t(3));

        auto second = std::make_unique<Optimization>(tinyVit(), options, tinyVit);
        second->loadState(saved, 3);
        // The same next step from both: identical weights afterwards.
        first->accumulate(images, targets, labels);
        first->step(1e-2);
        second->accumulate(images, targets, labels);
        second->step(1e-2);
        const auto a = first->state(), b = second->state();
        for (const auto& [key, tensor] : a)
            QVERIFY2(torch::equal(tensor, b.at(key)), key.c_str());

        auto wrong = saved;
        wrong["model.head.weight"] = torch::zeros({2, 2});
        QVERIFY_THROWS_EXCEPTION(FormatError, second->loadState(wrong, 3));
        wrong.erase("model.head.weight");
        QVERIFY_THROWS_EXCEPTION(FormatError, second->loadState(wrong, 3));
    }

    void gradientsAccumulateOverBatches()
    {
        torch::manual_seed(0);
        const auto images = torch::randn({4, 3, 8, 8});
        const auto labels = torch::tensor({0, 1, 2, 0}, torch::kInt64);
        const auto targets = torch::one_hot(labels, 3).to(torch::kFloat32);
        auto model = tinyVit();
        auto twin = tinyVit();
        {
            torch::NoGradGuard noGrad;
            auto source = model->named_parameters();
            for (auto& item : twin->named_parameters())
                item.value().copy_(source[item.key()]);
        }
        OptimizationOptions whole, halves;
        halves.accumulation = 2;
        Optimization one(model, whole), two(twin, halves);
        one.accumulate(images, targets, labels);
        two.accumulate(images.narrow(0, 0, 2), targets.narrow(0, 0, 2), labels.narrow(0, 0, 2));
        two.accumulate(images.narrow(0, 2, 2), targets.narrow(0, 2, 2), labels.narrow(0, 2, 2));
        const auto gradient = model->named_parameters()["head.weight"].grad();
        const auto summed = twin->named_parameters()["head.weight"].grad();
        QVERIFY((gradient - summed).abs().max().item<double>() < 1e-6);
    }

    void everyParameterFrozenIsRefused()
    {
        auto model = tinyVit();
        for (auto& parameter : model->parameters())
            parameter.set_requires_grad(false);
        QVERIFY_THROWS_EXCEPTION(ConfigError, Optimization(model, {}));
    }

    void trainConfigRoundTripsThroughJson()
    {
        TrainConfig config;
        config.data = "/data/birds";
        config.model = "deit_tiny_distilled_patch16_224";
        config.epochs = 7;
        config.learningRate = 3e-4;
        config.precision = Precision::BFloat16;
        config.classWeights = true;
        config.seed = 42;
        const auto restored = TrainConfig::fromJson(nlohmann::json::parse(config.toJson().dump()));
        QCOMPARE(restored.toJson(), config.toJson());
        QCOMPARE(restored.precision, Precision::BFloat16);
        QVERIFY_THROWS_EXCEPTION(ConfigError, TrainConfig::fromJson(nlohmann::json::parse(R"({"epochs": "ten"})")));
        QVERIFY_THROWS_EXCEPTION(ConfigError, parsePrecision("fp8"));
        TrainConfig bad;
        bad.learningRate = -1.0;
        QVERIFY_THROWS_EXCEPTION(ConfigError, bad.validate());
        bad = {};
        bad.validationFraction = 1.0;
        QVERIFY_THROWS_EXCEPTION(ConfigError, bad.validate());
    }
};

QTEST_GUILESS_MAIN(TestOptimization)
#include "tst_optimization.moc"
