// The training adapter on its own: a request the engine refuses becomes a `failed` signal with the
// engine's sentence (never an exception on the UI thread); a stop reaches a paused run at once;
// the object can be destroyed while a run is in progress.
#include "synthetic_images.h"
#include "ui/training_worker.h"

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
