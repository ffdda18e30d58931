// vitlab-cli train, eval and predict end to end, and what a kill -9 at any moment of a run
// leaves behind: a run folder that loads and resumes.
#include "core/io/safetensors.h"
#include "core/train/run_folder.h"
#include "core/train/run_model.h"
#include "core/train/train_config.h"
#include "cli_runner.h"
#include "synthetic_images.h"

#include <QProcess>
#include <opencv2/imgcodecs.hpp>
#include <QTemporaryDir>
#include <QtTest>

#include <signal.h>

#include <fstream>

using namespace vitlab;
using test::runCli;

class TestCliTrain : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    test::TinyTraining m_tiny;
    QString m_data;
    QString m_model;
    QString m_runs;

    QStringList trainArguments(const QString& name, int epochs) const { return m_tiny.arguments(m_runs, name, epochs); }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY2(!qEnvironmentVariable("VITLAB_CLI").isEmpty(), "VITLAB_CLI is not set");
        m_runs = m_dir.filePath(QStringLiteral("runs"));
        // No train/val folders: the CLI makes a stratified split.
        QVERIFY(m_tiny.write(m_dir.path()));
        m_data = m_tiny.data;
        m_model = m_tiny.model;
    }

    void trainEvalPredict()
    {
        auto arguments = trainArguments(QStringLiteral("first"), 15);
        arguments << QStringLiteral("--val-split") << QStringLiteral("0.25") << QStringLiteral("--no-such-option");
        auto result = runCli(arguments);
        QCOMPARE(result.exitCode, 2); // an unknown option is a usage error
        arguments.removeLast();
        result = runCli(arguments);
        QVERIFY2(result.exitCode == 0, qPrintable(result.err + result.out));
        QVERIFY2(result.out.contains(QStringLiteral("epoch 15: train loss")), qPrintable(result.out));
        QVERIFY(result.out.contains(QStringLiteral("36 training and 12 validation images")));
        const QString run = m_runs + QStringLiteral("/first");

        result = runCli({QStringLiteral("eval"), QStringLiteral("--run"), run, QStringLiteral("--json"),
                         QStringLiteral("--samples")});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        const auto evaluation = nlohmann::json::parse(result.out.toStdString());
        QCOMPARE(evaluation["count"].get<int>(), 12);
        QCOMPARE(evaluation["confusion"].size(), std::size_t(3));
        QVERIFY(evaluation["top1"].get<double>() >= 0.9);
        QCOMPARE(evaluation["samples"]["source"].size(), std::size_t(12));

        // Predict the class-1 folder: CSV with a header and a row per image, mostly class_1.
        result = runCli({QStringLiteral("predict"), QStringLiteral("--run"), run, m_data + QStringLiteral("/class_1"),
                         QStringLiteral("--topk"), QStringLiteral("2"), QStringLiteral("--csv")});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        const auto lines = result.out.trimmed().split(QLatin1Char('\n'));
        QCOMPARE(lines.size(), 17);
        QCOMPARE(lines[0], QStringLiteral("path,class_1,probability_1,class_2,probability_2,error"));
        const auto correct = std::count_if(lines.begin() + 1, lines.end(), [](const QString& line) {
            return line.section(QLatin1Char(','), 1, 1) == QStringLiteral("class_1");
        });
        QVERIFY2(correct >= 14, qPrintable(result.out));

        // An unreadable file gets its error; the others are still classified.
        const QString bogus = m_dir.filePath(QStringLiteral("bogus.png"));
        std::ofstream(bogus.toStdString()) << "not a png";
        result = runCli({QStringLiteral("predict"), QStringLiteral("--run"), run, bogus,
                         m_data + QStringLiteral("/class_0/0.png"), QStringLiteral("--json")});
        QCOMPARE(result.exitCode, 0);
        const auto predictions = nlohmann::json::parse(result.out.toStdString());
        QVERIFY(predictions[0].contains("error"));
        QCOMPARE(predictions[1]["top"].size(), std::size_t(3));
        QVERIFY(result.err.contains(QStringLiteral("1 of 2 images could not be read")));

        // Explain: an overlay PNG and the map as JSON; a method the family lacks is a usage error.
        const QString overlay = m_dir.filePath(QStringLiteral("overlay.png"));
        result = runCli({QStringLiteral("explain"), QStringLiteral("--run"), run, m_data + QStringLiteral("/class_2/3.png"),
                         QStringLiteral("--out"), overlay, QStringLiteral("--method"), QStringLiteral("relevance"),
                         QStringLiteral("--json")});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err));
        const auto explained = nlohmann::json::parse(result.out.toStdString());
        QCOMPARE(explained["grid"], nlohmann::json::array({4, 4}));
        QCOMPARE(explained["map"].size(), std::size_t(16));
        const cv::Mat written = cv::imread(overlay.toStdString());
        QCOMPARE(written.cols, 224);
        result = runCli({QStringLiteral("explain"), QStringLiteral("--run"), run, m_data + QStringLiteral("/class_2/3.png"),
                         QStringLiteral("--out"), overlay, QStringLiteral("--method"), QStringLiteral("gradcam")});
        QCOMPARE(result.exitCode, 2);
        QVERIFY2(result.err.contains(QStringLiteral("relevance")), qPrintable(result.err));
    }

    void badRequestsGetClearErrors()
    {
        auto result = runCli({QStringLiteral("eval"), QStringLiteral("--run"), m_dir.filePath(QStringLiteral("nowhere"))});
        QCOMPARE(result.exitCode, 1);
        QVERIFY2(result.err.startsWith(QStringLiteral("error: the run folder")), qPrintable(result.err));
        auto arguments = trainArguments(QStringLiteral("bad-model"), 1);
        arguments[arguments.indexOf(m_model)] = QStringLiteral("vit_tiny_patch16_22");
        result = runCli(arguments);
        QCOMPARE(result.exitCode, 2);
        QVERIFY2(result.err.contains(QStringLiteral("did you mean")), qPrintable(result.err));
        result = runCli({QStringLiteral("train"), QStringLiteral("--resume"), m_dir.filePath(QStringLiteral("nowhere"))});
        QCOMPARE(result.exitCode, 1);
    }

    /// --config takes a run's settings from its config.json: the run trained again has its losses.
    /// Beside it a training option is refused, and a file that is not JSON says so.
    void configFileTrainsTheRunAgain()
    {
        auto result = runCli(trainArguments(QStringLiteral("original"), 2));
        QVERIFY2(result.exitCode == 0, qPrintable(result.err + result.out));
        const QString config = m_runs + QStringLiteral("/original/config.json");
        result = runCli({QStringLiteral("train"), QStringLiteral("--config"), config, QStringLiteral("--name"),
                         QStringLiteral("again"), QStringLiteral("--quiet")});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err + result.out));
        const auto original = RunFolder((m_runs + QStringLiteral("/original")).toStdString()).readMetrics();
        const auto again = RunFolder((m_runs + QStringLiteral("/again")).toStdString()).readMetrics();
        QCOMPARE(again.size(), original.size());
        QVERIFY(original.size() >= 2); // an epoch row each at least
        for (std::size_t i = 0; i < original.size(); ++i)
            QVERIFY2(std::abs(again[i].loss - original[i].loss) < 1e-5 * std::max(1.0, std::abs(original[i].loss)),
                     qPrintable(QStringLiteral("row %1: %2 against %3").arg(i).arg(again[i].loss).arg(original[i].loss)));

        result = runCli({QStringLiteral("train"), QStringLiteral("--config"), config, QStringLiteral("--epochs"),
                         QStringLiteral("3")});
        QCOMPARE(result.exitCode, 2);
        QVERIFY2(result.err.contains(QStringLiteral("leave out --epochs")), qPrintable(result.err));
        const QString broken = m_dir.filePath(QStringLiteral("broken.json"));
        std::ofstream(broken.toStdString()) << "{\"epochs\": ";
        result = runCli({QStringLiteral("train"), QStringLiteral("--config"), broken});
        QVERIFY(result.exitCode != 0);
        QVERIFY2(result.err.contains(QStringLiteral("is not valid JSON")), qPrintable(result.err));
    }

    // A run that names no model gets the Fashion-MNIST recipe for where it computes: float32 on
    // a CPU trains the 2-block preset (the 4-block one is for GPUs and native bfloat16, which the
    // Model page's suggestion covers); the batch size and rate given on the command line stay.
    void runWithoutAModelTrainsThePresetForItsMachine()
    {
        auto arguments = trainArguments(QStringLiteral("default-model"), 1);
        const auto at = arguments.indexOf(QStringLiteral("--model"));
        arguments.remove(at, 2);
        const auto result = runCli(arguments);
        QVERIFY2(result.exitCode == 0, qPrintable(result.err + result.out));
        QVERIFY2(result.out.contains(QStringLiteral("vit_micro_d2_r5_s4_28 on cpu (fp32)")), qPrintable(result.out));
        const auto folder = RunFolder::open((m_runs + QStringLiteral("/default-model")).toStdString());
        const auto stored = TrainConfig::fromJson(folder.readConfig()["train"]);
        QCOMPARE(stored.model, std::string("vit_micro_d2_r5_s4_28"));
        QCOMPARE(stored.batchSize, std::int64_t(8));
        QCOMPARE(stored.learningRate, 3e-3);
    }

    /// Kills a run at several moments; each time the folder must load, and it must resume to the
    /// end from wherever it was.
    // Running out of memory ends the run with a message naming a batch size to try, keeps a
    // resumable checkpoint, and the run resumes at that batch. The memory runs out for real: the
    // address space is capped (ulimit -v) at 8 GB, and a 224 px model with a token per pixel
    // needs more than that for its first layers' activations (36 x 50176 tokens x 192 floats is
    // 1.4 GB each) before any costly product.
    void outOfMemoryLeavesTheRunResumable()
    {
        const QString model = m_dir.filePath(QStringLiteral("huge_tokens.json"));
        std::ofstream(model.toStdString())
            << R"({"family": "vit", "img_size": 224, "patch_size": 1, "embed_dim": 192, "depth": 1, "num_heads": 3})";
        auto arguments = trainArguments(QStringLiteral("oom"), 1);
        arguments[arguments.indexOf(QStringLiteral("--model")) + 1] = model;
        arguments[arguments.indexOf(QStringLiteral("--batch")) + 1] = QStringLiteral("48");
        QProcess process;
        process.setProgram(QStringLiteral("bash"));
        process.setArguments(QStringList{QStringLiteral("-c"), QStringLiteral("ulimit -v 8000000 && exec \"$0\" \"$@\""),
                                         qEnvironmentVariable("VITLAB_CLI")}
                             + arguments);
        process.start();
        QVERIFY(process.waitForFinished(240000));
        const auto err = QString::fromUtf8(process.readAllStandardError());
        QCOMPARE(process.exitCode(), 1);
        QVERIFY2(err.contains(QStringLiteral("out of memory on cpu at batch size 48 (step 0)")), qPrintable(err));
        QVERIFY2(err.contains(QStringLiteral("--batch 24 --accumulate 2 (the same effective batch of 48)")), qPrintable(err));
        const QString run = m_runs + QStringLiteral("/oom");
        const auto folder = RunFolder::open(run.toStdString());
        QCOMPARE(folder.readStatus().state, std::string("out_of_memory"));
        QVERIFY(std::filesystem::exists(folder.resumeStatePath()));

        // It resumes at another batch of the same effective size (a product that is not the
        // effective batch is refused). This model cannot train here at any batch (1.13's
        // attention scores alone would take 30 GB an image): the resumed session stops at its
        // time limit before its first step, with the run set up at the new batch.
        auto refused = runCli({QStringLiteral("train"), QStringLiteral("--resume"), run, QStringLiteral("--batch"),
                               QStringLiteral("24"), QStringLiteral("--accumulate"), QStringLiteral("3")});
        QCOMPARE(refused.exitCode, 2);
        QVERIFY2(refused.err.contains(QStringLiteral("product is 48")), qPrintable(refused.err));
        std::ofstream(model.toStdString()) << ""; // the run keeps its own copy of the config
        const auto resumed = runCli({QStringLiteral("train"), QStringLiteral("--resume"), run, QStringLiteral("--batch"),
                                     QStringLiteral("12"), QStringLiteral("--accumulate"), QStringLiteral("4"),
                                     QStringLiteral("--max-minutes"), QStringLiteral("0.0000001")});
        QVERIFY2(resumed.exitCode == 0, qPrintable(resumed.err + resumed.out));
        QVERIFY2(resumed.out.contains(QStringLiteral("resuming at batches of 12 x 4 (was 48)")), qPrintable(resumed.out));
        QCOMPARE(TrainConfig::fromJson(folder.readConfig()["train"]).batchSize, std::int64_t(12));
        QCOMPARE(folder.readStatus().state, std::string("time_limit"));
    }

    void killedRunStaysLoadableAndResumes()
    {
        constexpr int kKilledEpochs = 240;
        const QString run = m_runs + QStringLiteral("/killed");
        const auto resumeState = RunFolder(run.toStdString()).resumeStatePath();
        bool first = true;
        for (const int afterMs : {150, 300, 700, 1100, 1600}) {
            QProcess process;
            // Enough epochs that the run outlives every kill: on LibTorch 2.x, 60 of them finished
            // before the last one.
            const auto arguments = first ? trainArguments(QStringLiteral("killed"), kKilledEpochs)
                                         : QStringList{QStringLiteral("train"), QStringLiteral("--resume"), run};
            process.start(qEnvironmentVariable("VITLAB_CLI"), arguments);
            QVERIFY(process.waitForStarted());
            if (first) // the later kills resume, so the first must leave a checkpoint
                QTRY_VERIFY_WITH_TIMEOUT(std::filesystem::exists(resumeState), 60000);
            first = false;
            QTest::qWait(afterMs);
            ::kill(static_cast<pid_t>(process.processId()), SIGKILL);
            QVERIFY(process.waitForFinished(10000));

            const auto folder = RunFolder::open(run.toStdString());
            QVERIFY(folder.readConfig().contains("model"));
            folder.readMetrics(); // parses, whatever moment it was written at
            const auto status = folder.readStatus();
            QVERIFY2(status.state == "interrupted" || status.state == "new", status.state.c_str());
            if (std::filesystem::exists(folder.lastWeightsPath())) {
                const auto loaded = loadRun(folder.directory(), torch::kCPU, "last");
                QCOMPARE(loaded.model->numClasses(), std::int64_t(3));
            }
        }
        const auto result = runCli({QStringLiteral("train"), QStringLiteral("--resume"), run});
        QVERIFY2(result.exitCode == 0, qPrintable(result.err + result.out));
        const auto folder = RunFolder::open(run.toStdString());
        QCOMPARE(folder.readStatus().state, std::string("finished"));
        QCOMPARE(folder.readStatus().epoch, kKilledEpochs);
        // Stale temporary files of killed writes are cleared on resume.
        for (const auto& entry : std::filesystem::directory_iterator(folder.directory()))
            QVERIFY2(entry.path().filename().string().find(".tmp-") == std::string::npos, entry.path().c_str());
        const auto metrics = folder.readMetrics();
        QCOMPARE(std::count_if(metrics.begin(), metrics.end(), [](const MetricsRow& r) { return r.kind == "epoch"; }),
                 static_cast<long>(kKilledEpochs));
    }
};

QTEST_GUILESS_MAIN(TestCliTrain)
#include "tst_cli_train.moc"
