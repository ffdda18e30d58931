// The training adapter on its own: a request the engine refuses becomes a `failed` signal with the
// engine's sentence (never an exception on the UI thread); a stop reaches a paused run at once;
// the object can be destroyed while a run is in progress. A run in two processes (this one and a
// vitlab-cli worker) trains the run one process trains; a worker that cannot start or dies early,
// and a Stop while the group forms, end the run at once with a sentence that says so.
#include "synthetic_images.h"
#include "ui/training_worker.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using vitlab::ui::TrainingWorker;

class TestTrainingWorker : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;

    vitlab::TrainConfig tinyConfig(int epochs) const
    {
        vitlab::TrainConfig config;
        config.data = (m_dir.path() + QStringLiteral("/patterns")).toStdString();
        config.model = (m_dir.path() + QStringLiteral("/tiny.json")).toStdString();
        config.epochs = epochs;
        config.batchSize = 4;
        config.logEvery = 1;
        config.device = "cpu";
        config.runsDirectory = (m_dir.path() + QStringLiteral("/runs")).toStdString();
        return config;
    }

    /// The metrics rows of a finished run.
    static std::vector<vitlab::MetricsRow> metricsOf(const QList<QVariant>& finished)
    {
        const auto result = finished.at(0).value<vitlab::RunFinished>();
        return vitlab::RunFolder(result.runDirectory).readMetrics();
    }

    /// Runs a group whose worker program is `program` (VITLAB_CLI); returns the failure's sentence
    /// and how long it took to come.
    QString groupFailureWith(const QString& program, qint64* milliseconds, bool stopAfterASecond = false)
    {
        const QByteArray previous = qgetenv("VITLAB_CLI");
        qputenv("VITLAB_CLI", QFile::encodeName(program));
        TrainingWorker worker;
        QSignalSpy failed(&worker, &TrainingWorker::failed);
        QElapsedTimer clock;
        clock.start();
        if (!worker.start(tinyConfig(1), 2))
            return QStringLiteral("not started");
        if (stopAfterASecond) {
            QTest::qWait(1000);
            worker.requestStop();
        }
        const bool came = failed.wait(60000);
        *milliseconds = clock.elapsed();
        qputenv("VITLAB_CLI", previous);
        return came ? failed.at(0).at(0).toString() : QStringLiteral("no failure");
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        QVERIFY(vitlab::test::writePatternFolder((m_dir.path() + QStringLiteral("/patterns")).toStdString(), 2, 8, 16));
        std::ofstream((m_dir.path() + QStringLiteral("/tiny.json")).toStdString())
            << R"({"family": "vit", "img_size": 16, "patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2})";
    }

    void aRefusedRequestBecomesAFailureMessage()
    {
        TrainingWorker worker;
        QSignalSpy failed(&worker, &TrainingWorker::failed);
        QSignalSpy running(&worker, &TrainingWorker::runningChanged);
        auto config = tinyConfig(1);
        config.model = "no_such_model_anywhere";
        QVERIFY(worker.start(config));
        QVERIFY(failed.wait(30000));
        QVERIFY2(failed.at(0).at(0).toString().contains(QStringLiteral("no_such_model_anywhere")),
                 qPrintable(failed.at(0).at(0).toString()));
        QCOMPARE(running.count(), 2);
        QCOMPARE(running.at(1).at(0).toBool(), false);
        QVERIFY(!worker.isRunning());
    }

    void onlyOneRunAtATime()
    {
        TrainingWorker worker;
        QSignalSpy finished(&worker, &TrainingWorker::finished);
        QVERIFY(worker.start(tinyConfig(1)));
        QVERIFY(!worker.start(tinyConfig(1)));
        QVERIFY(finished.wait(60000));
        QVERIFY(worker.start(tinyConfig(1))); // and another once it is done
        QVERIFY(finished.wait(60000));
    }

    void stopWakesAPausedRun()
    {
        TrainingWorker worker;
        QSignalSpy steps(&worker, &TrainingWorker::stepsReported);
        QSignalSpy finished(&worker, &TrainingWorker::finished);
        QVERIFY(worker.start(tinyConfig(500)));
        QVERIFY(steps.wait(60000));
        worker.pause();
        QVERIFY(worker.isPaused());
        worker.requestStop();
        QVERIFY(worker.isStopping());
        QVERIFY(finished.wait(30000));
        QCOMPARE(finished.at(0).at(0).value<vitlab::RunFinished>().outcome, vitlab::RunOutcome::Stopped);
    }

    void twoProcessesTrainTheOneProcessRun()
    {
        QVERIFY2(!qEnvironmentVariable("VITLAB_CLI").isEmpty(), "VITLAB_CLI is not set");
        TrainingWorker worker;
        QSignalSpy finished(&worker, &TrainingWorker::finished);
        QSignalSpy failed(&worker, &TrainingWorker::failed);
        QSignalSpy messages(&worker, &TrainingWorker::message);
        auto config = tinyConfig(2);
        config.runsDirectory = m_dir.filePath(QStringLiteral("group-runs")).toStdString();
        config.runName = "alone";
        QVERIFY(worker.start(config, 1));
        QVERIFY(finished.wait(60000));
        config.runName = "pair";
        QVERIFY(worker.start(config, 2));
        QCOMPARE(worker.processes(), 2);
        QVERIFY(!worker.canPause());
        worker.pause(); // refused: the worker would wait on this process
        QVERIFY(!worker.isPaused());
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 2 || failed.count() > 0, 120000);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.at(0).at(0).toString()));
        QCOMPARE(finished.at(1).at(0).value<vitlab::RunFinished>().outcome, vitlab::RunOutcome::Finished);
        bool saidGroup = false;
        for (const auto& message : messages)
            saidGroup = saidGroup || message.at(0).toString().contains(QStringLiteral("training in 2 processes"));
        QVERIFY(saidGroup);

        const auto alone = metricsOf(finished.at(0)), pair = metricsOf(finished.at(1));
        QCOMPARE(pair.size(), alone.size());
        int steps = 0;
        for (std::size_t i = 0; i < alone.size(); ++i) {
            QCOMPARE(pair[i].step, alone[i].step);
            QVERIFY2(std::abs(pair[i].loss - alone[i].loss) < 1e-4 * std::max(1.0, std::abs(alone[i].loss)),
                     qPrintable(QStringLiteral("row %1: loss %2 against %3").arg(i).arg(pair[i].loss).arg(alone[i].loss)));
            steps += alone[i].kind == "step" ? 1 : 0;
        }
        QVERIFY(steps >= 4); // 2 epochs of 3 steps (12 of the 16 images, batch 4) logged every step
        // Rank 0 alone wrote a run folder.
        QCOMPARE(QDir(QString::fromStdString(config.runsDirectory)).entryList(QDir::Dirs | QDir::NoDotAndDotDot).size(), 2);

        // Stop stops both processes with a checkpoint (the worker's 130 is no failure), and the
        // run resumes in two processes where it stopped.
        QSignalSpy reports(&worker, &TrainingWorker::stepsReported);
        config.runName = "stopped";
        config.epochs = 500;
        QTRY_VERIFY(!worker.isRunning());
        QVERIFY(worker.start(config, 2));
        QVERIFY(reports.wait(60000));
        worker.requestStop();
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 3 || failed.count() > 0, 60000);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.at(0).at(0).toString()));
        const auto stopped = finished.at(2).at(0).value<vitlab::RunFinished>();
        QCOMPARE(stopped.outcome, vitlab::RunOutcome::Stopped);
        for (const auto& message : messages)
            QVERIFY2(!message.at(0).toString().contains(QStringLiteral("worker process")), qPrintable(message.at(0).toString()));
        const auto stoppedAt = reports.last().at(0).value<QVector<vitlab::StepReport>>().last().step;
        reports.clear();
        QTRY_VERIFY(!worker.isRunning());
        QVERIFY(worker.resume(QString::fromStdString(stopped.runDirectory), 2));
        QVERIFY(reports.wait(60000));
        QVERIFY(reports.first().at(0).value<QVector<vitlab::StepReport>>().first().step > stoppedAt);
        worker.requestStop();
        QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 4 || failed.count() > 0, 60000);
        QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.at(0).at(0).toString()));
        QCOMPARE(finished.at(3).at(0).value<vitlab::RunFinished>().outcome, vitlab::RunOutcome::Stopped);
    }

    void aWorkerThatCannotStartOrDiesEndsTheRunAtOnce()
    {
        const QDir runs(m_dir.filePath(QStringLiteral("runs")));
        const auto runsBefore = runs.entryList(QDir::Dirs | QDir::NoDotAndDotDot).size();
        qint64 milliseconds = 0;
        auto reason = groupFailureWith(m_dir.filePath(QStringLiteral("no-such-program")), &milliseconds);
        QVERIFY2(reason.contains(QStringLiteral("cannot start worker 1")), qPrintable(reason));
        // /bin/false ends at once; the run does not wait out the group's timeout (300 s) for it.
        reason = groupFailureWith(QStringLiteral("/bin/false"), &milliseconds);
        QVERIFY2(reason.contains(QStringLiteral("rank 1 exited with status 1 before the group formed")), qPrintable(reason));
        QVERIFY2(milliseconds < 30000, qPrintable(QString::number(milliseconds)));
        QCOMPARE(runs.entryList(QDir::Dirs | QDir::NoDotAndDotDot).size(), runsBefore); // no run folder left
    }

    void stopWhileTheGroupFormsEndsTheWait()
    {
        // A worker that never joins: Stop ends the wait, and the worker, at once.
        const QString silent = m_dir.filePath(QStringLiteral("silent.sh"));
        std::ofstream(silent.toStdString()) << "#!/bin/sh\nexec sleep 120\n";
        QFile::setPermissions(silent, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner);
        qint64 milliseconds = 0;
        const auto reason = groupFailureWith(silent, &milliseconds, /*stopAfterASecond=*/true);
        QVERIFY2(reason.contains(QStringLiteral("stopped before the group of 2 processes formed")), qPrintable(reason));
        QVERIFY2(milliseconds < 20000, qPrintable(QString::number(milliseconds)));
    }

    void destroyedWhileRunning()
    {
        auto worker = std::make_unique<TrainingWorker>();
        QSignalSpy steps(worker.get(), &TrainingWorker::stepsReported);
        QVERIFY(worker->start(tinyConfig(500)));
        QVERIFY(steps.wait(60000));
        worker.reset(); // stops and joins; queued reports to the dead object are dropped
        QCoreApplication::processEvents();
    }
};

QTEST_MAIN(TestTrainingWorker)
#include "tst_training_worker.moc"
