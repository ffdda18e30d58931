// The run folder: unique creation, the metrics CSV, status (an interrupted run is recognised),
// classes, the evaluation, and listing runs.
#include "core/errors.h"
#include "core/train/run_folder.h"

#include <QTemporaryDir>
#include <QtTest>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

using namespace vitlab;

namespace {

int pidOfAFinishedProcess()
{
    const pid_t child = fork();
    if (child == 0)
        _exit(0);
    int status = 0;
    waitpid(child, &status, 0);
    return static_cast<int>(child);
}

} // namespace

class TestRunFolder : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void createMakesUniqueFolders()
    {
        QTemporaryDir dir;
        const std::filesystem::path runs = dir.filePath(QStringLiteral("runs")).toStdString();
        const auto a = RunFolder::create(runs, "mine", "vit");
        const auto b = RunFolder::create(runs, "mine", "vit");
        QCOMPARE(a.name(), std::string("mine"));
        QCOMPARE(b.name(), std::string("mine-2"));
        const auto automatic = RunFolder::create(runs, "", "models/my_vit.json");
        QVERIFY(automatic.name().find("-my_vit") != std::string::npos);
        QVERIFY_THROWS_EXCEPTION(ConfigError, RunFolder::create(runs, "../escape", "vit"));
        QVERIFY_THROWS_EXCEPTION(IoError, RunFolder::open(a.directory())); // no config.json yet
        a.writeConfig({{"train", {{"model", "vit"}}}});
        QCOMPARE(RunFolder::open(a.directory()).readConfig()["train"]["model"], nlohmann::json("vit"));
    }

    void metricsRoundTripWithEmptyCells()
    {
        QTemporaryDir dir;
        const RunFolder folder(dir.path().toStdString());
        const double nan = std::nan("");
        std::vector<MetricsRow> rows = {{"step", 1, 10, 1.5, 1e-3, 2.25, 512.0, nan, nan, nan, nan},
                                        {"epoch", 1, 20, 3.0, 9e-4, 2.0, nan, 0.5, 1.75, 0.625, 0.9375}};
        folder.writeMetrics(rows);
        const auto read = folder.readMetrics();
        QCOMPARE(read.size(), std::size_t(2));
        QCOMPARE(read[0].kind, std::string("step"));
        QCOMPARE(read[0].step, std::int64_t(10));
        QCOMPARE(read[0].loss, 2.25);
        QVERIFY(std::isnan(read[0].validationTop1));
        QCOMPARE(read[1].validationTop1, 0.625);
        QCOMPARE(read[1].validationTop5, 0.9375);
        QVERIFY(std::isnan(read[1].imagesPerSecond));

        std::ofstream(folder.metricsPath(), std::ios::app) << "step,1,oops,,,,,,,,\n";
        QVERIFY_THROWS_EXCEPTION(FormatError, folder.readMetrics());
    }

    void statusOfAVanishedProcessReadsInterrupted()
    {
        QTemporaryDir dir;
        const RunFolder folder(dir.path().toStdString());
        QCOMPARE(folder.readStatus().state, std::string("new"));
        RunStatus status;
        status.state = "running";
        status.epoch = 2;
        status.pid = static_cast<int>(getpid());
        folder.writeStatus(status);
        QCOMPARE(folder.readStatus().state, std::string("running"));
        status.pid = pidOfAFinishedProcess();
        folder.writeStatus(status);
        QCOMPARE(folder.readStatus().state, std::string("interrupted"));
        QCOMPARE(folder.readStatus().epoch, 2);
        status.state = "finished";
        folder.writeStatus(status);
        QCOMPARE(folder.readStatus().state, std::string("finished"));
    }

    void classesAndEvaluationRoundTrip()
    {
        QTemporaryDir dir;
        const RunFolder folder(dir.path().toStdString());
        folder.writeClasses({"T-shirt/top", "Trouser", "Ankle boot"});
        QCOMPARE(folder.readClasses(), (std::vector<std::string>{"T-shirt/top", "Trouser", "Ankle boot"}));
        QVERIFY(!folder.readEvaluation().has_value());
        EvaluationResult result;
        result.classNames = {"a", "b"};
        result.confusion = {3, 1, 0, 4};
        result.count = 8;
        result.top1 = 7.0 / 8.0;
        result.top5 = 1.0;
        computeClassMetrics(result);
        folder.writeEvaluation(result);
        const auto read = folder.readEvaluation();
        QVERIFY(read.has_value());
        QCOMPARE(read->confusion, result.confusion);
        QCOMPARE(read->perClass[0].recall, 0.75);
    }

    void listRunsSkipsForeignFoldersAndSortsNewestFirst()
    {
        QTemporaryDir dir;
        const std::filesystem::path runs = dir.path().toStdString();
        std::filesystem::create_directories(runs / "not-a-run");
        const auto older = RunFolder::create(runs, "older", "vit");
        older.writeConfig({{"train", {{"model", "vit_micro_patch4_28"}, {"data", "fashion-mnist"}}}});
        RunStatus status;
        status.state = "finished";
        older.writeStatus(status);
        std::filesystem::last_write_time(older.statusPath(),
                                         std::filesystem::file_time_type::clock::now() - std::chrono::hours(2));
        const auto newer = RunFolder::create(runs, "newer", "vit");
        newer.writeConfig({{"train", {{"model", "swin"}, {"data", "/birds"}}}});
        const auto broken = RunFolder::create(runs, "broken", "vit");
        std::ofstream(broken.configPath()) << "{ not json";
        const auto listed = listRuns(runs);
        QCOMPARE(listed.size(), std::size_t(2));
        QCOMPARE(listed[0].name, std::string("newer"));
        QCOMPARE(listed[1].name, std::string("older"));
        QCOMPARE(listed[1].model, std::string("vit_micro_patch4_28"));
        QCOMPARE(listed[1].status.state, std::string("finished"));
        QVERIFY(listed[0].modified > listed[1].modified);
        QVERIFY(listRuns(runs / "missing").empty());
    }
};

QTEST_GUILESS_MAIN(TestRunFolder)
#include "tst_run_folder.moc"
