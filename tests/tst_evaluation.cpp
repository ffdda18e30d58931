// Evaluation metrics on hand-built confusions and logits: precision, recall, F1, top-1/top-5,
// loss, and the eval.json round trip.
#include "core/errors.h"
#include "core/train/evaluation.h"
#include "core/train/evaluator.h"

#include <QtTest>

#include <cmath>

using namespace vitlab;

class TestEvaluation : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void classMetricsFromAHandBuiltConfusion()
    {
        EvaluationResult result;
        result.classNames = {"cat", "dog", "owl"};
        // rows: true class; columns: predicted
        result.confusion = {5, 1, 0,  //
                            2, 3, 0,  //
                            0, 0, 0}; // no owl at all, never predicted
        computeClassMetrics(result);
        QCOMPARE(result.perClass.size(), std::size_t(3));
        QCOMPARE(result.perClass[0].precision, 5.0 / 7.0);
        QCOMPARE(result.perClass[0].recall, 5.0 / 6.0);
        QCOMPARE(result.perClass[0].support, std::int64_t(6));
        QCOMPARE(result.perClass[1].precision, 3.0 / 4.0);
        QCOMPARE(result.perClass[1].recall, 3.0 / 5.0);
        const double catF1 = 2 * (5.0 / 7) * (5.0 / 6) / (5.0 / 7 + 5.0 / 6);
        const double dogF1 = 2 * 0.75 * 0.6 / 1.35;
        QVERIFY(std::abs(result.perClass[0].f1 - catF1) < 1e-12);
        QVERIFY(std::abs(result.perClass[1].f1 - dogF1) < 1e-12);
        QCOMPARE(result.perClass[2].f1, 0.0);
        QVERIFY(std::abs(result.macroF1 - (catF1 + dogF1) / 3.0) < 1e-12);
    }

    void nonSquareConfusionIsRefused()
    {
        EvaluationResult result;
        result.classNames = {"a", "b"};
        result.confusion = {1, 2, 3};
        QVERIFY_THROWS_EXCEPTION(ShapeError, computeClassMetrics(result));
    }

    void accumulatorCountsTopOneTopFiveAndLoss()
    {
        EvaluationAccumulator accumulator({"a", "b", "c", "d", "e", "f"});
        // Sample 0: true 2, predicted 2. Sample 1: true 0, predicted 1, 0 is second. Sample 2:
        // true 5, ranked last of six: outside the top five.
        const auto logits = torch::tensor({{0.0f, 1.0f, 5.0f, 0.0f, 0.0f, 0.0f},
                                           {2.0f, 3.0f, 0.0f, 0.0f, 0.0f, 0.0f},
                                           {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, -4.0f}});
        const auto labels = torch::tensor({2, 0, 5}, torch::kInt64);
        accumulator.add(logits, labels, {"x.png", "y.png", "z.png"});
        const auto result = accumulator.finish();
        QCOMPARE(result.count, std::int64_t(3));
        QCOMPARE(result.top1, 1.0 / 3.0);
        QCOMPARE(result.top5, 2.0 / 3.0);
        QCOMPARE(result.cell(0, 1), std::int64_t(1));
        QCOMPARE(result.cell(2, 2), std::int64_t(1));
        const double expectedLoss = torch::nn::functional::cross_entropy(logits, labels).item<double>();
        QVERIFY(std::abs(result.loss - expectedLoss) < 1e-5);
        QCOMPARE(result.samples[1].source, std::string("y.png"));
        QCOMPARE(result.samples[1].predicted, std::int64_t(1));
        const double confidence = torch::softmax(logits[1], 0)[1].item<double>();
        QVERIFY(std::abs(result.samples[1].confidence - confidence) < 1e-6);
    }

    void accumulatorRefusesMismatchedShapes()
    {
        EvaluationAccumulator accumulator({"a", "b"});
        QVERIFY_THROWS_EXCEPTION(ShapeError, accumulator.add(torch::zeros({2, 3}), torch::zeros({2}, torch::kInt64), {"1", "2"}));
        QVERIFY_THROWS_EXCEPTION(ShapeError, accumulator.add(torch::zeros({2, 2}), torch::zeros({2}, torch::kInt64), {"1"}));
        QVERIFY_THROWS_EXCEPTION(ShapeError,
                                 accumulator.add(torch::zeros({1, 2}), torch::tensor({7}, torch::kInt64), {"1"}));
    }

    void jsonRoundTripKeepsEverything()
    {
        EvaluationAccumulator accumulator({"a", "b"});
        accumulator.add(torch::tensor({{2.0f, 0.0f}, {0.0f, 1.0f}, {3.0f, 0.0f}}), torch::tensor({0, 1, 1}, torch::kInt64),
                        {"p,1", "p\"2", "p3"});
        const auto original = accumulator.finish();
        const auto restored = EvaluationResult::fromJson(nlohmann::json::parse(original.toJson().dump()));
        QCOMPARE(restored.classNames, original.classNames);
        QCOMPARE(restored.confusion, original.confusion);
        QCOMPARE(restored.top1, original.top1);
        QCOMPARE(restored.samples.size(), std::size_t(3));
        QCOMPARE(restored.samples[1].source, std::string("p\"2"));
        QCOMPARE(restored.samples[2].predicted, std::int64_t(0));
        QCOMPARE(restored.perClass[1].recall, 0.5);
    }

    void malformedJsonIsAFormatError()
    {
        QVERIFY_THROWS_EXCEPTION(FormatError, EvaluationResult::fromJson(nlohmann::json::object()));
        auto json = nlohmann::json::parse(R"({"classes":["a","b"],"confusion":[[1,2]],"count":3,"top1":0,"top5":1,"loss":0})");
        QVERIFY_THROWS_EXCEPTION(FormatError, EvaluationResult::fromJson(json));
        json["confusion"] = {{1, 2}, {3, 4}};
        json["samples"] = {{"source", {"x"}}, {"label", {9}}, {"predicted", {0}}, {"confidence", {1}}, {"loss", {0}}};
        QVERIFY_THROWS_EXCEPTION(FormatError, EvaluationResult::fromJson(json));
    }
};

QTEST_GUILESS_MAIN(TestEvaluation)
#include "tst_evaluation.moc"
