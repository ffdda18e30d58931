// The trainer end to end on a tiny generated folder: a tiny model overfits it; a stopped run
// resumes into the same history; stop and pause act within one batch; a non-finite loss stops
// the run and keeps the last checkpoint; the saved run predicts what its evaluation said.
#include "core/errors.h"
#include "core/io/safetensors.h"
#include "core/models/weights.h"
#include "core/models/registry.h"
#include "core/train/predictor.h"
#include "core/train/run_folder.h"
#include "core/train/run_model.h"
#include "core/train/trainer.h"
#include "synthetic_images.h"

#include <QTemporaryDir>
#include <QElapsedTimer>
#include <QtTest>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

using namespace vitlab;

namespace {

const char* const kTinyVit =
    R"({"family": "vit", "img_size": 16, "patch_size": 4, "embed_dim": 32, "depth": 2, "num_heads": 2})";

std::string readBytes(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Recorder {
    std::vector<StepReport> steps;
    std::vector<EpochReport> epochs;
    std::vector<std::string> messages;
    RunStarted started;
    TrainCallbacks callbacks()
    {
        TrainCallbacks c;
        c.onStart = [this](const RunStarted& s) { started = s; };
        c.onStep = [this](const StepReport& s) {
            steps.push_back(s);
            if (onStep)
                onStep(s);
        };
        c.onEpoch = [this](const EpochReport& e) { epochs.push_back(e); };
        c.onMessage = [this](const std::string& m) { messages.push_back(m); };
        return c;
    }
    std::function<void(const StepReport&)> onStep;
};

} // namespace

class TestTrainer : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    std::filesystem::path m_data;
    std::filesystem::path m_runs;
    std::filesystem::path m_modelConfig;

    /// Three classes of 12 images, 16 px, in train/ and val/; fp32 on one data worker so runs are
    /// reproducible; no augmentation that would move the pattern.
    TrainConfig baseConfig(int epochs, const std::string& name) const
    {
        TrainConfig config;
        config.data = m_data.string();
        config.model = m_modelConfig.string();
        config.epochs = epochs;
        config.batchSize = 8;
        config.learningRate = 3e-3;
        config.minLearningRate = 1e-4;
        config.warmupEpochs = 0.5;
        config.dropPath = 0.0;
        config.labelSmoothing = 0.0;
        config.cropScaleMin = 1.0;
        config.horizontalFlip = false;
        config.precision = Precision::Float32;
        config.device = "cpu";
        config.workers = 1;
        config.logEvery = 1;
        config.runsDirectory = m_runs.string();
        config.runName = name;
        return config;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        m_data = std::filesystem::path(m_dir.path().toStdString()) / "patterns";
        m_runs = std::filesystem::path(m_dir.path().toStdString()) / "runs";
        m_modelConfig = std::filesystem::path(m_dir.path().toStdString()) / "tiny_vit.json";
        QVERIFY(test::writePatternFolder(m_data, 3, 12, 16, /*splits=*/true));
        std::ofstream(m_modelConfig) << kTinyVit;
    }

    void timeBudgetFitsTheEpochsAndTheSchedule()
    {
        // 5 s, data preparation included: the first 20 steps are timed, the epochs fitted so that
        // the cosine reaches its end with the budget, and refitted after each evaluation.
        auto config = baseConfig(1, "budget");
        config.budgetMinutes = 5.0 / 60.0;
        Recorder recorder;
        TrainControl control;
        QElapsedTimer wall;
        wall.start();
        const auto finished = trainRun(config, recorder.callbacks(), control);
        const double seconds = static_cast<double>(wall.elapsed()) / 1000.0;
        QCOMPARE(finished.outcome, RunOutcome::Finished);
        QVERIFY2(finished.epochsDone > 1, "the budget holds more than the one epoch asked for");
        QVERIFY2(seconds < 5.0 * 1.5, qPrintable(QString("a 5 s budget took %1 s").arg(seconds)));
        // The plan is told at its first fit and, where it changed, at epoch ends: not at every step.
        const auto fits = std::count_if(recorder.messages.begin(), recorder.messages.end(),
                                        [](const std::string& m) { return m.find("epochs fit") != std::string::npos; });
        QVERIFY2(fits >= 1 && fits <= finished.epochsDone + 1, qPrintable(QString::number(fits)));
        // The schedule ended with the run, however the machine's load changed: the plan is refitted
        // at every step, so the last step is the plan's last and its rate the minimum.
        const auto& last = recorder.steps.back();
        QCOMPARE(finished.stepsDone, last.step);
        QCOMPARE(last.step, last.totalSteps);
        QVERIFY2(last.learningRate < config.minLearningRate + 0.05 * (config.learningRate - config.minLearningRate),
                 qPrintable(QString::number(last.learningRate)));
        // The decay waited for the plan: the first epoch (fitted at its end, being under 20 steps)
        // held its peak after the warm-up, rather than decaying in full as the one epoch asked for.
        for (const auto& step : recorder.steps)
            if (step.epoch == 1 && step.step > 3)
                QVERIFY2(qFuzzyCompare(step.learningRate, config.learningRate),
                         qPrintable(QString("step %1: %2").arg(step.step).arg(step.learningRate)));
        // Until the fit, the ETA is what is left of the budget.
        QVERIFY(recorder.steps.front().etaSeconds > 0.0 && recorder.steps.front().etaSeconds <= 5.0);
        // The fitted plan is recorded, so that a resume continues the same schedule.
        std::ifstream in(m_runs / "budget" / "config.json");
        const auto train = nlohmann::json::parse(in)["train"];
        QCOMPARE(train["epochs"].get<int>(), finished.epochsDone);
        QCOMPARE(train["total_steps"].get<std::int64_t>(), finished.stepsDone);
    }

    void budgetRunThatStallsEndsItsDecay()
    {
        // A stall that leaves no time for the steps planned (another job takes the machine for
        // a while): the run still ends on a step at the decay's end rate, a step over the budget,
        // rather than on the rate of the longer plan.
        auto config = baseConfig(1, "budget-stall");
        config.budgetMinutes = 3.0 / 60.0;
        Recorder recorder;
        bool stalled = false;
        recorder.onStep = [&](const StepReport& report) {
            if (!stalled && report.totalSteps > report.step && report.elapsedSeconds > 1.0) {
                stalled = true;
                std::this_thread::sleep_for(std::chrono::milliseconds(2000));
            }
        };
        TrainControl control;
        const auto finished = trainRun(config, recorder.callbacks(), control);
        QCOMPARE(finished.outcome, RunOutcome::Finished);
        QVERIFY2(stalled, "the stall came after the plan's fit");
        const auto& last = recorder.steps.back();
        QCOMPARE(last.step, last.totalSteps);
        QVERIFY2(last.learningRate < config.minLearningRate + 0.05 * (config.learningRate - config.minLearningRate),
                 qPrintable(QString::number(last.learningRate)));
        std::ifstream in(m_runs / "budget-stall" / "config.json");
        QCOMPARE(nlohmann::json::parse(in)["train"]["total_steps"].get<std::int64_t>(), finished.stepsDone);
    }

    void tinyModelOverfitsTinyData()
    {
        Recorder recorder;
        TrainControl control;
        const auto finished = trainRun(baseConfig(20, "overfit"), recorder.callbacks(), control);
        QCOMPARE(finished.outcome, RunOutcome::Finished);
        QCOMPARE(finished.epochsDone, 20);
        QCOMPARE(recorder.started.trainImages, std::int64_t(36));
        QCOMPARE(recorder.started.stepsPerEpoch, std::int64_t(4));
        QCOMPARE(recorder.epochs.size(), std::size_t(20));
        QVERIFY(recorder.steps.back().loss < 0.25 * recorder.steps.front().loss);
        QCOMPARE(recorder.epochs.back().trainAccuracy, 1.0);
        QCOMPARE(recorder.epochs.back().validationTop1, 1.0);
        QCOMPARE(finished.bestTop1, 1.0);

        const auto folder = RunFolder::open(m_runs / "overfit");
        QCOMPARE(folder.readStatus().state, std::string("finished"));
        QCOMPARE(folder.readClasses(), (std::vector<std::string>{"class_0", "class_1", "class_2"}));
        const auto metrics = folder.readMetrics();
        QCOMPARE(std::count_if(metrics.begin(), metrics.end(), [](const MetricsRow& r) { return r.kind == "epoch"; }), 20L);
        QCOMPARE(metrics.back().validationTop1, 1.0);
        const auto evaluation = folder.readEvaluation();
        QVERIFY(evaluation.has_value());
        QCOMPARE(evaluation->count, std::int64_t(36));
        QCOMPARE(evaluation->cell(2, 2), std::int64_t(12));
        // The saved weights are timm's keys only, loadable into a fresh model.
        const auto header = safetensors::readHeader(folder.bestWeightsPath());
        QVERIFY(header.count("blocks.1.mlp.fc2.weight"));
        QVERIFY(header.count("head.weight"));
        for (const auto& [key, info] : header)
            QVERIFY2(key.rfind("adamw.", 0) != 0 && key.rfind("model.", 0) != 0, key.c_str());
    }

    void savedRunPredictsWhatItsEvaluationSaid()
    {
        const auto folder = RunFolder::open(m_runs / "overfit");
        const auto evaluation = folder.readEvaluation();
        QVERIFY(evaluation.has_value());
        std::vector<std::string> sources;
        for (const auto& sample : evaluation->samples)
            sources.push_back(sample.source);
        Predictor predictor(folder.directory(), "cpu");
        QCOMPARE(predictor.classNames(), folder.readClasses());
        const auto predictions = predictor.predict(sources, 2);
        QCOMPARE(predictions.size(), sources.size());
        for (std::size_t i = 0; i < predictions.size(); ++i) {
            QVERIFY2(predictions[i].error.empty(), predictions[i].error.c_str());
            QCOMPARE(predictions[i].top.size(), std::size_t(2));
            QCOMPARE(predictions[i].top[0].index, evaluation->samples[i].predicted);
            QVERIFY(std::abs(predictions[i].top[0].probability - evaluation->samples[i].confidence) < 1e-4);
        }
        const auto missing = predictor.predict({(m_data / "nope.png").string()});
        QVERIFY(!missing[0].error.empty());
        QVERIFY(missing[0].top.empty());
    }

    void stoppedRunResumesIntoTheSameHistory()
    {
        TrainControl straightControl;
        Recorder straight;
        trainRun(baseConfig(3, "straight"), straight.callbacks(), straightControl);

        Recorder first;
        TrainControl control;
        first.onStep = [&control](const StepReport& step) {
            if (step.step == 5) // in the middle of epoch 2
                control.requestStop();
        };
        const auto stopped = trainRun(baseConfig(3, "interrupted"), first.callbacks(), control);
        QCOMPARE(stopped.outcome, RunOutcome::Stopped);
        QCOMPARE(stopped.stepsDone, std::int64_t(5));
        QCOMPARE(RunFolder::open(m_runs / "interrupted").readStatus().state, std::string("stopped"));

        Recorder second;
        TrainControl again;
        const auto resumed = resumeRun(m_runs / "interrupted", second.callbacks(), again);
        QCOMPARE(resumed.outcome, RunOutcome::Finished);
        QCOMPARE(second.started.firstStep, std::int64_t(5));
        QCOMPARE(second.steps.front().step, std::int64_t(6));

        const auto expected = RunFolder::open(m_runs / "straight").readMetrics();
        const auto actual = RunFolder::open(m_runs / "interrupted").readMetrics();
        QCOMPARE(actual.size(), expected.size());
        for (std::size_t i = 0; i < expected.size(); ++i) {
            QCOMPARE(actual[i].kind, expected[i].kind);
            QCOMPARE(actual[i].step, expected[i].step);
            QVERIFY2(std::abs(actual[i].loss - expected[i].loss) <= 1e-5 * std::max(1.0, std::abs(expected[i].loss)),
                     qPrintable(QStringLiteral("row %1: %2 vs %3").arg(i).arg(actual[i].loss).arg(expected[i].loss)));
            if (expected[i].kind == "epoch") {
                QCOMPARE(actual[i].validationTop1, expected[i].validationTop1);
                QVERIFY(std::abs(actual[i].trainAccuracy - expected[i].trainAccuracy) < 1e-9);
            }
        }
        const auto a = safetensors::load(m_runs / "straight" / "last.safetensors").tensors;
        const auto b = safetensors::load(m_runs / "interrupted" / "last.safetensors").tensors;
        for (const auto& [key, tensor] : a)
            QVERIFY2((tensor - b.at(key)).abs().max().item<double>() < 1e-5, key.c_str());
    }

    // A plan of steps (a time budget's fit) ends within its last epoch, with that epoch's
    // evaluation and the rate at its minimum, and a resume continues the same plan.
    void stepPlanEndsInAPartialEpochAndResumes()
    {
        Recorder probe;
        TrainControl probeControl;
        trainRun(baseConfig(1, "steps-probe"), probe.callbacks(), probeControl);
        const auto perEpoch = probe.started.stepsPerEpoch;
        QVERIFY(perEpoch >= 2);
        auto config = baseConfig(3, "steps");
        config.totalSteps = 2 * perEpoch + perEpoch / 2;
        Recorder first;
        TrainControl control;
        first.onStep = [&](const StepReport& step) {
            if (step.step == perEpoch + 1)
                control.requestStop();
        };
        QCOMPARE(trainRun(config, first.callbacks(), control).outcome, RunOutcome::Stopped);
        QCOMPARE(first.started.totalSteps, config.totalSteps);

        Recorder second;
        TrainControl again;
        const auto resumed = resumeRun(m_runs / "steps", second.callbacks(), again);
        QCOMPARE(resumed.outcome, RunOutcome::Finished);
        QCOMPARE(resumed.stepsDone, config.totalSteps);
        QCOMPARE(resumed.epochsDone, 3);
        QCOMPARE(second.epochs.size(), std::size_t(2)); // epochs 2 and 3, the last partial
        QCOMPARE(second.epochs.back().step, config.totalSteps);
        QCOMPARE(second.steps.back().step, config.totalSteps);
        // The rate of the plan's last step (of 8 or more decaying): the cosine's end.
        QVERIFY(second.steps.back().learningRate < config.minLearningRate + 0.05 * config.learningRate);
        QVERIFY2(resumed.message.find("the last " + std::to_string(perEpoch / 2) + " of") != std::string::npos,
                 resumed.message.c_str());
        const auto rows = RunFolder::open(m_runs / "steps").readMetrics();
        QCOMPARE(std::count_if(rows.begin(), rows.end(), [](const MetricsRow& row) { return row.kind == "epoch"; }), 3L);
    }

    // After running out of memory a run resumes at half the batch with twice the accumulation:
    // the same effective batch, schedule and data order, so the same history as a run that never
    // stopped (to float rounding: two sums of four images instead of one of eight).
    void resumesAtAnotherBatchOfTheSameEffectiveSize()
    {
        Recorder first;
        TrainControl control;
        first.onStep = [&control](const StepReport& step) {
            if (step.step == 5)
                control.requestStop();
        };
        QCOMPARE(trainRun(baseConfig(3, "halved"), first.callbacks(), control).outcome, RunOutcome::Stopped);

        ResumeOptions options;
        options.batchSize = 3; // 3 does not divide the effective batch of 8
        TrainControl again;
        Recorder refused;
        QVERIFY_THROWS_EXCEPTION(ConfigError, resumeRun(m_runs / "halved", refused.callbacks(), again, options));
        options.batchSize = 4; // the accumulation follows: 2
        Recorder second;
        const auto resumed = resumeRun(m_runs / "halved", second.callbacks(), again, options);
        QCOMPARE(resumed.outcome, RunOutcome::Finished);
        QCOMPARE(second.started.firstStep, std::int64_t(5));
        QCOMPARE(second.started.totalSteps, std::int64_t(12));
        const auto folder = RunFolder::open(m_runs / "halved");
        const auto stored = TrainConfig::fromJson(folder.readConfig()["train"]);
        QCOMPARE(stored.batchSize, std::int64_t(4));
        QCOMPARE(stored.accumulation, 2);

        const auto expected = RunFolder::open(m_runs / "straight").readMetrics();
        const auto actual = folder.readMetrics();
        QCOMPARE(actual.size(), expected.size());
        for (std::size_t i = 0; i < expected.size(); ++i) {
            QCOMPARE(actual[i].step, expected[i].step);
            QVERIFY2(std::abs(actual[i].loss - expected[i].loss) <= 1e-4 * std::max(1.0, std::abs(expected[i].loss)),
                     qPrintable(QStringLiteral("row %1: %2 vs %3").arg(i).arg(actual[i].loss).arg(expected[i].loss)));
            QCOMPARE(actual[i].skippedSteps, std::int64_t(0));
            QVERIFY(std::isnan(actual[i].lossScale)); // float32: no loss scaling
        }
    }

    void pauseHoldsTheRunWithinOneBatch()
    {
        Recorder recorder;
        TrainControl control;
        std::atomic<std::size_t> stepsWhenResumed{0};
        std::atomic<bool> statusSaidPaused{false};
        std::thread resumer;
        recorder.onStep = [&](const StepReport& step) {
            if (step.step != 2)
                return;
            control.pause();
            resumer = std::thread([&] {
                // Once the run's status says paused, give a pause that did not hold time to run
                // on, then count. Checks are made on the test thread, after the run.
                for (int i = 0; i < 6000 && !statusSaidPaused; ++i) {
                    statusSaidPaused = RunFolder::open(m_runs / "paused").readStatus().state == "paused";
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(300));
                stepsWhenResumed = recorder.steps.size();
                control.resume();
            });
        };
        const auto finished = trainRun(baseConfig(1, "paused"), recorder.callbacks(), control);
        resumer.join();
        QCOMPARE(finished.outcome, RunOutcome::Finished);
        QVERIFY(statusSaidPaused);
        QCOMPARE(stepsWhenResumed.load(), std::size_t(2));
        QCOMPARE(recorder.steps.size(), std::size_t(4));
    }

    void stopWhilePausedEndsTheRun()
    {
        Recorder recorder;
        TrainControl control;
        std::thread stopper;
        recorder.onStep = [&](const StepReport& step) {
            if (step.step != 1)
                return;
            control.pause();
            stopper = std::thread([&] {
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                control.requestStop();
            });
        };
        const auto finished = trainRun(baseConfig(2, "paused-then-stopped"), recorder.callbacks(), control);
        stopper.join();
        QCOMPARE(finished.outcome, RunOutcome::Stopped);
        QCOMPARE(finished.stepsDone, std::int64_t(1));
        // The checkpoint of a stopped run loads.
        const auto run = loadRun(m_runs / "paused-then-stopped", torch::kCPU, "last");
        QCOMPARE(run.model->numClasses(), std::int64_t(3));
    }

    void nonFiniteLossStopsTheRunAndKeepsTheCheckpoint()
    {
        Recorder recorder;
        TrainControl control;
        recorder.onStep = [&control](const StepReport& step) {
            if (step.step == 2)
                control.requestStop();
        };
        trainRun(baseConfig(2, "diverging"), recorder.callbacks(), control);
        const auto folder = RunFolder::open(m_runs / "diverging");
        const auto lastBefore = readBytes(folder.lastWeightsPath());
        // Poison the resume state: the next forward pass gives NaN logits.
        auto state = safetensors::load(folder.resumeStatePath());
        state.tensors["model.head.bias"] = torch::full_like(state.tensors["model.head.bias"], std::nan(""));
        safetensors::save(folder.resumeStatePath(), state.tensors, state.metadata);

        Recorder resumed;
        TrainControl again;
        const auto finished = resumeRun(folder.directory(), resumed.callbacks(), again);
        QCOMPARE(finished.outcome, RunOutcome::Diverged);
        QVERIFY(finished.message.find("loss") != std::string::npos);
        QCOMPARE(folder.readStatus().state, std::string("diverged"));
        QCOMPARE(readBytes(folder.lastWeightsPath()), lastBefore);
        QVERIFY(resumed.steps.empty());
    }

    void startsFromWeightsWithAFreshHeadAndFrozenBody()
    {
        // Weights of the same architecture for 5 classes: the 3-class run gets a fresh head.
        auto spec = specFromConfig(nlohmann::json::parse(kTinyVit));
        spec = withNumClasses(spec, 5);
        const auto pretrained = createModel(spec);
        const auto weights = std::filesystem::path(m_dir.path().toStdString()) / "pretrained.safetensors";
        saveWeights(*pretrained, weights);

        auto config = baseConfig(1, "finetune");
        config.weights = weights.string();
        config.freeze = "head";
        Recorder recorder;
        TrainControl control;
        const auto finished = trainRun(config, recorder.callbacks(), control);
        QCOMPARE(finished.outcome, RunOutcome::Finished);
        // "head" keeps the classifier and the final norm trainable.
        QCOMPARE(recorder.started.trainableParameters, std::int64_t(32 * 3 + 3 + 2 * 32));
        QVERIFY(std::any_of(recorder.messages.begin(), recorder.messages.end(),
                            [](const std::string& m) { return m.find("loaded") != std::string::npos; }));
        // Only the head moved.
        const auto trained = safetensors::load(m_runs / "finetune" / "last.safetensors").tensors;
        const auto original = stateDictOf(*pretrained);
        QVERIFY(torch::equal(trained.at("blocks.0.attn.qkv.weight"), original.at("blocks.0.attn.qkv.weight")));
        QCOMPARE(trained.at("head.weight").size(0), std::int64_t(3));
    }

    void distillationFromATeacherRun()
    {
        const auto student = std::filesystem::path(m_dir.path().toStdString()) / "tiny_deit.json";
        std::ofstream(student)
            << R"({"family": "deit", "img_size": 16, "patch_size": 4, "embed_dim": 32, "depth": 1, "num_heads": 2})";
        auto config = baseConfig(2, "distilled");
        config.model = student.string();
        config.teacherRun = (m_runs / "overfit").string();
        Recorder recorder;
        TrainControl control;
        const auto finished = trainRun(config, recorder.callbacks(), control);
        QCOMPARE(finished.outcome, RunOutcome::Finished);
        QVERIFY(std::isfinite(recorder.steps.back().loss));

        // A student without a distillation head cannot learn from a teacher.
        auto plain = baseConfig(1, "not-distillable");
        plain.teacherRun = (m_runs / "overfit").string();
        TrainControl other;
        QVERIFY_THROWS_EXCEPTION(ConfigError, trainRun(plain, {}, other));
        QCOMPARE(RunFolder::open(m_runs / "not-distillable").readStatus().state, std::string("failed"));
    }

    void emaAndClassWeightsTrain()
    {
        auto config = baseConfig(2, "ema");
        config.emaDecay = 0.9;
        config.classWeights = true;
        config.mixup = 0.2;
        config.cutmix = 1.0;
        config.labelSmoothing = 0.1;
        Recorder recorder;
        TrainControl control;
        const auto finished = trainRun(config, recorder.callbacks(), control);
        QCOMPARE(finished.outcome, RunOutcome::Finished);
        // The saved weights are the average: they differ from the raw model in the resume state.
        const auto saved = safetensors::load(m_runs / "ema" / "last.safetensors").tensors;
        const auto state = safetensors::load(m_runs / "ema" / "resume.safetensors").tensors;
        QVERIFY(torch::equal(saved.at("head.weight"), state.at("ema.head.weight")));
        QVERIFY(!torch::equal(saved.at("head.weight"), state.at("model.head.weight")));
    }

    // The run's drop-path rate is the one the model gets, 0 included: Swin's own default (0.1)
    // used to survive --drop-path 0.
    void runDropPathRateReplacesTheModelsDefault()
    {
        const auto images = torch::randn({4, 1, 28, 28});
        const auto twoTrainingPasses = [&](double dropPath) {
            TrainConfig config;
            config.model = "swin_micro_patch2_window7_28";
            config.dropPath = dropPath;
            auto model = createModel(runModelSpec(config, 3));
            model->train();
            torch::NoGradGuard noGrad;
            torch::manual_seed(1);
            const auto first = model->forward(images);
            torch::manual_seed(2);
            return std::make_pair(first, model->forward(images));
        };
        const auto [plainFirst, plainSecond] = twoTrainingPasses(0.0);
        QVERIFY(torch::equal(plainFirst, plainSecond));
        const auto [droppingFirst, droppingSecond] = twoTrainingPasses(0.5);
        QVERIFY(!torch::equal(droppingFirst, droppingSecond));
    }

    void badRequestsLeaveNoRunFolder()
    {
        auto config = baseConfig(1, "never");
        config.model = "vit_no_such_model";
        TrainControl control;
        QVERIFY_THROWS_EXCEPTION(ConfigError, trainRun(config, {}, control));
        config = baseConfig(1, "never");
        config.data = (m_data / "missing").string();
        QVERIFY_THROWS_EXCEPTION(IoError, trainRun(config, {}, control));
        QVERIFY(!std::filesystem::exists(m_runs / "never"));
        QVERIFY_THROWS_EXCEPTION(IoError, resumeRun(m_runs / "nowhere", {}, control));
    }
};

QTEST_GUILESS_MAIN(TestTrainer)
#include "tst_trainer.moc"
