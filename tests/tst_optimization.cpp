// The pieces of a training step: the learning-rate schedule, which parameters decay, the
// soft-target loss, AdamW's state round trip, float16's loss scaling and skipped steps, and the
// training configuration's JSON.
#include "core/errors.h"
#include "core/models/registry.h"
#include "core/torch_compat.h"
#include "core/runtime.h"
#include "core/train/loss_scaler.h"
#include "core/train/optimization.h"
#include "core/train/train_config.h"

#include <QtTest>

#include <cmath>
#include <limits>

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
        LearningRateSchedule schedule{1.0, 0.1, 10, 111};
        QCOMPARE(schedule.at(0), 0.1);
        QCOMPARE(schedule.at(4), 0.5);
        QCOMPARE(schedule.at(9), 1.0);
        QCOMPARE(schedule.at(10), 1.0);
        QVERIFY(std::abs(schedule.at(60) - 0.55) < 1e-12); // half way down the cosine
        QVERIFY(std::abs(schedule.at(110) - 0.1) < 1e-12); // the last step at the minimum
        QVERIFY(std::abs(schedule.at(500) - 0.1) < 1e-12);
        for (std::int64_t step = 11; step <= 110; ++step)
            QVERIFY(schedule.at(step) < schedule.at(step - 1));
        // However short the plan, its last step ends the decay (a time budget refitted to 6 steps
        // ended two thirds of the way down before).
        const LearningRateSchedule shortPlan{1.0, 0.1, 3, 6};
        QVERIFY(std::abs(shortPlan.at(5) - 0.1) < 1e-12);
        QVERIFY(shortPlan.at(4) > shortPlan.at(5));
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

    // GradScaler's policy: an overflow halves the scale, growthInterval clean steps double it,
    // and the scale never reaches zero.
    void lossScaleBacksOffAndGrows()
    {
        LossScalerOptions options;
        options.initialScale = 1024.0;
        options.growthInterval = 3;
        DynamicLossScaler scaler(options);
        QCOMPARE(scaler.scale(torch::tensor(2.0)).item<double>(), 2048.0);
        scaler.update(false);
        QCOMPARE(scaler.currentScale(), 512.0);
        scaler.update(true);
        scaler.update(true);
        QCOMPARE(scaler.currentScale(), 512.0);
        QCOMPARE(scaler.growthTracker(), 2);
        scaler.update(true);
        QCOMPARE(scaler.currentScale(), 1024.0);
        QCOMPARE(scaler.growthTracker(), 0);
        scaler.update(true);
        scaler.update(false); // an overflow also restarts the count
        QCOMPARE(scaler.growthTracker(), 0);
        for (int i = 0; i < 2000; ++i)
            scaler.update(false);
        QVERIFY(scaler.currentScale() > 0.0);

        const auto parameter = torch::ones({3}).requires_grad_(true);
        (parameter * 8.0).sum().backward();
        scaler.restore(4.0, 1);
        scaler.unscale({parameter});
        QCOMPARE(parameter.grad()[0].item<double>(), 2.0);
        QVERIFY_THROWS_EXCEPTION(FormatError, scaler.restore(0.0, 0));
        options.backoffFactor = 1.5;
        QVERIFY_THROWS_EXCEPTION(ConfigError, DynamicLossScaler{options});
    }

    // Precision by device: CUDA's "auto" follows the compute capability (asked of the visible
    // devices; without any, bfloat16); float16 on the CPU needs LibTorch 2.x. TF32 is a switch
    // of LibTorch's global context for CUDA's float32 products, on or off as asked.
    void precisionFollowsTheDevice()
    {
        QCOMPARE(resolvePrecision(Precision::Float32, torch::Device(torch::kCUDA, 0)).name(), std::string("fp32"));
        QCOMPARE(resolvePrecision(Precision::Float16, torch::Device(torch::kCUDA, 0)).name(), std::string("fp16"));
        QVERIFY(resolvePrecision(Precision::Float16, torch::Device(torch::kCUDA, 0)).scalesLoss());
        QVERIFY(!resolvePrecision(Precision::BFloat16, torch::kCPU).scalesLoss());
        if (cudaDevices().empty())
            QCOMPARE(resolvePrecision(Precision::Auto, torch::Device(torch::kCUDA, 0)).name(), std::string("bf16"));
        if (compat::kCpuAutocastsToHalf) {
            QCOMPARE(resolvePrecision(Precision::Float16, torch::kCPU).name(), std::string("fp16"));
        } else {
            QVERIFY_THROWS_EXCEPTION(ConfigError, resolvePrecision(Precision::Float16, torch::kCPU));
            // A model trained in float16 on a GPU still predicts here, in the CPU's own precision.
            QCOMPARE(inferencePrecision(Precision::Float16, torch::kCPU).dtype,
                     resolvePrecision(Precision::Auto, torch::kCPU).dtype);
        }
        for (const bool allowed : {true, false}) {
            allowTf32(allowed);
            QCOMPARE(at::globalContext().allowTF32CuBLAS(), allowed);
            QCOMPARE(at::globalContext().allowTF32CuDNN(), allowed);
        }
    }

    // A step whose gradients are not finite leaves the weights and AdamW's moments as they were,
    // in any precision, and is counted.
    void nonFiniteGradientsSkipTheStep()
    {
        torch::manual_seed(0);
        auto model = tinyVit();
        Optimization optimization(model, OptimizationOptions{});
        const auto images = torch::randn({4, 3, 8, 8});
        const auto labels = torch::tensor({0, 1, 2, 0}, torch::kInt64);
        const auto targets = torch::one_hot(labels, 3).to(torch::kFloat32);
        optimization.accumulate(images, targets, labels);
        QVERIFY(!optimization.step(1e-2).skipped);
        const auto before = optimization.state();
        optimization.accumulate(images, targets, labels);
        model->named_parameters()["head.weight"].mutable_grad()[0][0] = std::numeric_limits<float>::infinity();
        const auto outcome = optimization.step(1e-2);
        QVERIFY(outcome.skipped);
        QVERIFY(!std::isfinite(outcome.gradientNorm));
        QCOMPARE(optimization.skippedSteps(), std::int64_t(1));
        QCOMPARE(optimization.stepsDone(), std::int64_t(2));
        for (const auto& [key, tensor] : optimization.state())
            QVERIFY2(torch::equal(tensor, before.at(key)), key.c_str());
        QVERIFY(!optimization.lossScale());
    }

    // float16 autocast scales the loss: a scale far too large overflows the first steps, which
    // are skipped while the scale halves; then the model trains, and the scale is saved and
    // restored with the rest of the state. CPU float16 autocast needs LibTorch 2.x.
    void float16TrainingScalesTheLoss()
    {
        if (!compat::kCpuAutocastsToHalf)
            QSKIP("LibTorch 1.13's CPU autocast knows bfloat16 only; float16 is checked on LibTorch 2.x");
        torch::manual_seed(0);
        OptimizationOptions options;
        options.precision = ComputePrecision{at::kHalf};
        options.lossScaling.initialScale = std::ldexp(1.0, 40); // float16 overflows past 65504
        auto model = tinyVit();
        Optimization optimization(model, options);
        const auto images = torch::randn({6, 3, 8, 8});
        const auto labels = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kInt64);
        const auto targets = torch::one_hot(labels, 3).to(torch::kFloat32);
        double firstLoss = 0.0, lastLoss = 0.0;
        for (int step = 0; step < 60; ++step) {
            const auto outcome = optimization.accumulate(images, targets, labels);
            (step == 0 ? firstLoss : lastLoss) = outcome.loss;
            optimization.step(1e-2);
        }
        QVERIFY2(optimization.skippedSteps() >= 10, qPrintable(QString::number(optimization.skippedSteps())));
        QVERIFY(optimization.skippedSteps() < 40);
        QVERIFY(*optimization.lossScale() < std::ldexp(1.0, 31));
        QVERIFY2(lastLoss < 0.5 * firstLoss, qPrintable(QStringLiteral("%1 -> %2").arg(firstLoss).arg(lastLoss)));
        for (const auto& item : model->named_parameters())
            QCOMPARE(item.value().scalar_type(), torch::kFloat32); // master weights stay float32

        Optimization resumed(tinyVit(), options);
        resumed.loadState(optimization.state(), optimization.stepsDone(), optimization.skippedSteps());
        QCOMPARE(*resumed.lossScale(), *optimization.lossScale());
        QCOMPARE(resumed.skippedSteps(), optimization.skippedSteps());
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
        config.precision = Precision::Float16;
        config.tf32 = true;
        config.classWeights = true;
        config.seed = 42;
        const auto restored = TrainConfig::fromJson(nlohmann::json::parse(config.toJson().dump()));
        QCOMPARE(restored.toJson(), config.toJson());
        QCOMPARE(restored.precision, Precision::Float16);
        QVERIFY(restored.tf32);
        QCOMPARE(parsePrecision("bfloat16"), Precision::BFloat16);
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
