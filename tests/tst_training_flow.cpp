// The desktop app end to end, offscreen, through the real pages and the real training thread:
// a generated folder is scanned, a tiny model trains for a few steps, the charts receive points,
// the confusion matrix fills and shows the images behind a cell, a dropped image is classified,
// runs are listed, opened and compared, pause/stop act, and closing during training asks, stops
// and keeps the checkpoint.
#include "core/facade/engine.h"
#include "synthetic_images.h"
#include "ui/main_window.h"
#include "ui/pages/data_page.h"
#include "ui/pages/evaluate_page.h"
#include "ui/pages/inspect_page.h"
#include "ui/pages/model_page.h"
#include "ui/pages/predict_page.h"
#include "ui/pages/runs_page.h"
#include "ui/pages/train_page.h"
#include "ui/plot.h"
#include "ui/training_worker.h"
#include "ui/widgets/attention_inspector.h"
#include "ui/widgets/confusion_matrix_view.h"
#include "ui/widgets/image_grid.h"
#include "ui/widgets/probability_bars.h"
#include "ui/widgets/training_charts.h"

#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QMimeData>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTreeWidget>
#include <QtTest>

#include <filesystem>
#include <fstream>

using vitlab::ui::MainWindow;
using namespace vitlab::ui;

namespace {

const char* const kTinyVit =
    R"({"family": "vit", "img_size": 16, "patch_size": 4, "embed_dim": 32, "depth": 2, "num_heads": 2})";

void dropUrls(QWidget* target, const QList<QUrl>& urls)
{
    QMimeData mime;
    mime.setUrls(urls);
    const QPointF at(target->width() / 2.0, target->height() / 2.0);
    QDragEnterEvent enter(at.toPoint(), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(target, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(at, Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(target, &drop);
    QVERIFY(drop.isAccepted());
}

} // namespace

class TestTrainingFlow : public QObject {
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_data;
    QString m_modelConfig;
    vitlab::RuntimeInfo m_runtime;
    std::unique_ptr<MainWindow> m_window;
    QString m_firstRun;

    void configureTinyRun(int epochs)
    {
        ModelPage* model = m_window->modelPage();
        model->setCustomModelFile(m_modelConfig);
        model->setImageSize(16);
        model->setEpochs(epochs);
        model->setBatchSize(8);
        QVERIFY2(model->modelError().isEmpty(), qPrintable(model->modelError()));
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        QSettings::setDefaultFormat(QSettings::IniFormat);
        QSettings::setPath(QSettings::IniFormat, QSettings::UserScope, m_dir.path() + QStringLiteral("/settings"));
        QCoreApplication::setOrganizationName(QStringLiteral("ViTLabFlowTest"));
        // Runs of this test only: the runs page must list exactly what it trained.
        qputenv("VITLAB_RUNS_DIR", QFile::encodeName(m_dir.path() + QStringLiteral("/runs")));
        m_runtime = vitlab::facade::startEngine();
        m_data = m_dir.path() + QStringLiteral("/patterns");
        m_modelConfig = m_dir.path() + QStringLiteral("/tiny_vit.json");
        QVERIFY(vitlab::test::writePatternFolder(m_data.toStdString(), 3, 12, 16, /*splits=*/true));
        std::ofstream(m_modelConfig.toStdString()) << kTinyVit;
        // Two problems for the scan report: an empty file and a training image copied into validation.
        std::ofstream((m_data + QStringLiteral("/train/class_0/empty.png")).toStdString());
        std::filesystem::copy_file((m_data + QStringLiteral("/train/class_1/0.png")).toStdString(),
                                   (m_data + QStringLiteral("/val/class_1/leaked.png")).toStdString());
        m_window = std::make_unique<MainWindow>(m_runtime);
        m_window->show();
        QVERIFY(QTest::qWaitForWindowExposed(m_window.get()));
    }

    void cleanupTestCase() { m_window.reset(); }

    void dataPageScansTheFolder()
    {
        DataPage* data = m_window->dataPage();
        QSignalSpy scanned(data, &DataPage::datasetScanned);
        QVERIFY(m_window->openDataset(m_data));
        QVERIFY(scanned.wait(30000));
        QVERIFY(data->isScanned());
        QTableWidget* table = data->classTable();
        QCOMPARE(table->rowCount(), 3);
        QCOMPARE(table->item(0, 0)->text(), QStringLiteral("class_0"));
        QCOMPARE(table->item(0, 1)->data(Qt::DisplayRole).toInt(), 12); // the empty file is skipped
        QCOMPARE(table->item(1, 2)->data(Qt::DisplayRole).toInt(), 13); // 12 + the leaked copy
        auto* bars = qobject_cast<QCPBars*>(data->countChart()->plottable(0));
        QVERIFY(bars);
        QCOMPARE(bars->data()->size(), 3);

        // The problems name the offending files, and clicking one shows it.
        QTreeWidget* problems = data->problemTree();
        QTreeWidgetItem* skipped = nullptr;
        QTreeWidgetItem* leakage = nullptr;
        for (int i = 0; i < problems->topLevelItemCount(); ++i) {
            if (problems->topLevelItem(i)->text(0).startsWith(QStringLiteral("Skipped files (1)")))
                skipped = problems->topLevelItem(i);
            if (problems->topLevelItem(i)->text(0).startsWith(QStringLiteral("In both training and validation (1)")))
                leakage = problems->topLevelItem(i);
        }
        QVERIFY(skipped);
        QVERIFY(leakage);
        QCOMPARE(skipped->child(0)->text(0), QStringLiteral("empty.png"));
        QVERIFY(!skipped->child(0)->text(1).isEmpty()); // the reason
        problems->setCurrentItem(leakage->child(0));
        const auto caption = data->findChildren<QLabel*>();
        bool shown = false;
        // The caption: the path, then the problem's whole description.
        for (QLabel* label : caption)
            shown = shown
                || (label->text().section(QLatin1Char('\n'), 0, 0).endsWith(QStringLiteral("train/class_1/0.png"))
                    && label->text().endsWith(leakage->child(0)->text(1)));
        QVERIFY(shown);

        // Thumbnails of the first class load in the background.
        QTRY_COMPARE_WITH_TIMEOUT(data->thumbnails()->loadedCount(), 24, 10000);
        data->classTable()->setCurrentCell(2, 0);
        QTRY_COMPARE_WITH_TIMEOUT(data->thumbnails()->loadedCount(), 24, 10000);
        QVERIFY(data->thumbnails()->gridModel()->item(0).source.contains(QStringLiteral("class_2")));
    }

    void modelPageCountsLive()
    {
        ModelPage* model = m_window->modelPage();
        // 16 px images: the small-image preset is proposed.
        QCOMPARE(model->modelName(), QStringLiteral("vit_micro_patch4_28"));
        const auto parameters = model->parameterCount();
        const auto macs28 = model->macsPerImage();
        QVERIFY(parameters > 0 && macs28 > 0);
        model->setImageSize(30);
        QVERIFY(model->modelError().contains(QStringLiteral("multiple")));
        QVERIFY(model->costLabel()->text().contains(QStringLiteral("multiple")));
        model->setImageSize(32);
        QVERIFY(model->modelError().isEmpty());
        QVERIFY(model->macsPerImage() > macs28);
        QVERIFY(model->costLabel()->text().contains(QStringLiteral("parameters")));
        // Without CUDA the choice is there but disabled, with the reason.
        if (!m_runtime.cudaAvailable) {
            auto* items = qobject_cast<QStandardItemModel*>(model->deviceBox()->model());
            QVERIFY(!items->item(2)->isEnabled());
            QVERIFY(items->item(2)->toolTip().contains(QStringLiteral("CUDA")));
        }
    }

    void trainsThroughTheWorkerAndFillsTheCharts()
    {
        configureTinyRun(2);
        TrainPage* train = m_window->trainPage();
        auto* start = train->findChild<QPushButton*>(QStringLiteral("startButton"));
        QTRY_VERIFY(start->isEnabled());
        QSignalSpy finished(m_window->worker(), &TrainingWorker::finished);
        QSignalSpy failed(m_window->worker(), &TrainingWorker::failed);
        QSignalSpy steps(m_window->worker(), &TrainingWorker::stepsReported);
        QTest::mouseClick(start, Qt::LeftButton);
        QCOMPARE(m_window->currentPage(), MainWindow::Page::Train);
        QVERIFY(m_window->worker()->isRunning());
        QVERIFY(!start->isEnabled());
        QVERIFY(finished.wait(120000));
        QCOMPARE(failed.count(), 0);
        const auto result = finished.at(0).at(0).value<vitlab::RunFinished>();
        QCOMPARE(result.outcome, vitlab::RunOutcome::Finished);
        m_firstRun = QString::fromStdString(result.runDirectory);

        TrainingCharts* charts = train->charts();
        QCOMPARE(charts->stepLoss()->dataCount(), 8); // 36 images, batch 8: 4 steps an epoch
        QCOMPARE(charts->smoothedLoss()->dataCount(), 8);
        QCOMPARE(charts->validationTop1()->dataCount(), 2);
        QVERIFY(charts->replotCount() > 0);
        QVERIFY(steps.count() >= 1);
        QVERIFY(train->logText().contains(QStringLiteral("epoch 2:")));
        QTRY_VERIFY(start->isEnabled());
    }

    void evaluatePageShowsTheConfusionMatrix()
    {
        EvaluatePage* evaluate = m_window->evaluatePage();
        QVERIFY(evaluate->hasEvaluation());
        ConfusionMatrixView* matrix = evaluate->matrix();
        QCOMPARE(matrix->classCount(), 3);
        QCOMPARE(matrix->total(), qint64(37)); // 36 validation images + the leaked copy
        QCOMPARE(evaluate->classTable()->rowCount(), 3);
        QVERIFY(evaluate->summary()->text().contains(QStringLiteral("Top-1")));

        m_window->showPage(MainWindow::Page::Evaluate);
        // Find a cell with images and click it: the grid shows exactly those.
        int row = -1, column = -1;
        for (int r = 0; r < 3 && row < 0; ++r)
            for (int c = 0; c < 3; ++c)
                if (matrix->count(r, c) > 0) {
                    row = r;
                    column = c;
                    break;
                }
        QVERIFY(row >= 0);
        QVERIFY(matrix->cellText(row, column).contains(QString::number(matrix->count(row, column))));
        QTest::mouseClick(matrix, Qt::LeftButton, {}, matrix->cellCenter(row, column));
        QCOMPARE(evaluate->cellImages()->count(), static_cast<int>(matrix->count(row, column)));
        QVERIFY(evaluate->cellImages()->gridModel()->item(0).source.contains(QStringLiteral("class_%1").arg(row))
                || evaluate->cellImages()->gridModel()->item(0).source.endsWith(QStringLiteral("leaked.png")));
        QTRY_VERIFY_WITH_TIMEOUT(evaluate->cellImages()->loadedCount() == evaluate->cellImages()->count(), 10000);
        // Hardest examples: every validation image, highest loss first.
        QCOMPARE(evaluate->hardestImages()->count(), 37);

        // A double-click on an image shows it on the Inspect page, explained by the evaluated run.
        const QString hardest = evaluate->hardestImages()->gridModel()->item(0).source;
        const QModelIndex first = evaluate->hardestImages()->model()->index(0, 0);
        Q_EMIT evaluate->hardestImages()->activated(first);
        QCOMPARE(m_window->currentPage(), MainWindow::Page::Inspect);
        AttentionInspector* inspector = m_window->inspectPage()->inspector();
        QCOMPARE(inspector->source(), hardest);
        QCOMPARE(inspector->run(), m_firstRun);
        QCOMPARE(m_window->inspectPage()->runDirectory(), m_firstRun);
        QTRY_VERIFY_WITH_TIMEOUT(inspector->view() != nullptr, 30000);
        QCOMPARE(inspector->view()->image.width, 16);
        QCOMPARE(inspector->headGrid()->count(), 2);

        // The button does the same for the selected image of the visible grid.
        m_window->showPage(MainWindow::Page::Evaluate);
        evaluate->findChild<QTabWidget*>()->setCurrentWidget(evaluate->hardestImages());
        evaluate->hardestImages()->setCurrentIndex(evaluate->hardestImages()->model()->index(1, 0));
        QVERIFY(evaluate->inspectButton()->isEnabled());
        evaluate->inspectButton()->click();
        QCOMPARE(m_window->currentPage(), MainWindow::Page::Inspect);
        QCOMPARE(inspector->source(), evaluate->hardestImages()->gridModel()->item(1).source);
    }

    void predictPageClassifiesADroppedImage()
    {
        m_window->showPage(MainWindow::Page::Predict);
        PredictPage* predict = m_window->predictPage();
        QCOMPARE(predict->runDirectory(), m_firstRun);
        const QString image = m_data + QStringLiteral("/val/class_2/3.png");
        QSignalSpy ready(predict, &PredictPage::predictionsReady);
        dropUrls(predict, {QUrl::fromLocalFile(image)});
        QVERIFY(ready.wait(30000));
        QCOMPARE(predict->predictionCount(), 1);
        const vitlab::Prediction* p = predict->prediction(image);
        QVERIFY(p);
        QVERIFY(p->error.empty());
        QCOMPARE(p->top.size(), std::size_t(3)); // top-5 of three classes
        QVERIFY(p->top[0].probability >= p->top[1].probability);
        QTRY_COMPARE(predict->bars()->bars().size(), 3);
        QCOMPARE(predict->bars()->bars()[0].name, QString::fromStdString(p->top[0].name));
        // Where the model looks in the dropped image, from the same run.
        QCOMPARE(predict->inspector()->source(), image);
        QCOMPARE(predict->inspector()->run(), m_firstRun);
        QTRY_VERIFY_WITH_TIMEOUT(predict->inspector()->view() != nullptr, 30000);
        QCOMPARE(predict->inspector()->headGrid()->count(), 2);

        // A folder dropped on the window while the Predict page shows is classified too.
        QSignalSpy more(predict, &PredictPage::predictionsReady);
        dropUrls(m_window.get(), {QUrl::fromLocalFile(m_data + QStringLiteral("/val/class_0"))});
        QVERIFY(more.wait(30000));
        QCOMPARE(predict->predictionCount(), 13);

        const QString csv = m_dir.path() + QStringLiteral("/predictions.csv");
        QString error;
        QVERIFY2(predict->exportCsv(csv, &error), qPrintable(error));
        QFile file(csv);
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QStringList lines = QString::fromUtf8(file.readAll()).split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        QCOMPARE(lines.size(), 14);
        QVERIFY(lines[0].startsWith(QStringLiteral("image,class_1,probability_1")));
        QVERIFY(lines[1].startsWith(image + QLatin1Char(',')));
    }

    void pauseResumeAndStopActOnTheRun()
    {
        configureTinyRun(200);
        TrainingWorker* worker = m_window->worker();
        QSignalSpy steps(worker, &TrainingWorker::stepsReported);
        QSignalSpy finished(worker, &TrainingWorker::finished);
        QSignalSpy messages(worker, &TrainingWorker::message);
        QVERIFY(m_window->startTraining());
        QVERIFY(steps.wait(60000));
        auto* pause = m_window->trainPage()->findChild<QPushButton*>(QStringLiteral("pauseButton"));
        QTest::mouseClick(pause, Qt::LeftButton);
        QVERIFY(worker->isPaused());
        QCOMPARE(pause->text(), QStringLiteral("Resume"));
        // The run says "paused" once the batch in flight is done, after that batch's reports (both
        // are queued to this thread in order); from then on nothing more arrives.
        const auto saidPaused = [&] {
            for (const auto& arguments : messages) {
                if (arguments.at(0).toString() == QLatin1String("paused"))
                    return true;
            }
            return false;
        };
        QTRY_VERIFY_WITH_TIMEOUT(saidPaused(), 60000);
        const int before = m_window->trainPage()->charts()->stepLoss()->dataCount();
        QTest::qWait(400);
        QCOMPARE(m_window->trainPage()->charts()->stepLoss()->dataCount(), before);
        QTest::mouseClick(pause, Qt::LeftButton);
        QVERIFY(!worker->isPaused());
        QTRY_VERIFY_WITH_TIMEOUT(m_window->trainPage()->charts()->stepLoss()->dataCount() > before, 30000);

        QTest::mouseClick(m_window->trainPage()->findChild<QPushButton*>(QStringLiteral("stopButton")), Qt::LeftButton);
        QVERIFY(finished.wait(60000));
        QCOMPARE(finished.at(0).at(0).value<vitlab::RunFinished>().outcome, vitlab::RunOutcome::Stopped);
    }

    /// The Model page's Processes reach the run: the plan says it, the worker starts a group, Pause
    /// is off for it. The worker program here fails at once (its full runs are tst_training_worker's),
    /// and the failure names it.
    void processesChoiceReachesTheRun()
    {
        auto* processes = m_window->modelPage()->findChild<QSpinBox*>(QStringLiteral("processesBox"));
        QVERIFY(processes);
        QCOMPARE(processes->maximum(), vitlab::facade::maxLocalProcesses(m_runtime));
        if (processes->maximum() < 2)
            QSKIP("one usable core: a run cannot be split across processes here");
        configureTinyRun(1);
        processes->setValue(2);
        QTRY_VERIFY(m_window->trainPage()->findChild<QLabel*>(QStringLiteral("trainPlan"))->text().contains(
            QStringLiteral("in 2 processes")));
        const QByteArray previous = qgetenv("VITLAB_CLI");
        qputenv("VITLAB_CLI", "/bin/false");
        TrainingWorker* worker = m_window->worker();
        QSignalSpy failed(worker, &TrainingWorker::failed);
        QVERIFY(m_window->startTraining());
        QCOMPARE(worker->processes(), 2);
        auto* pause = m_window->trainPage()->findChild<QPushButton*>(QStringLiteral("pauseButton"));
        QVERIFY(!pause->isEnabled());
        QVERIFY2(pause->toolTip().contains(QStringLiteral("cannot pause")), qPrintable(pause->toolTip()));
        QVERIFY(failed.wait(30000));
        qputenv("VITLAB_CLI", previous);
        QVERIFY2(failed.at(0).at(0).toString().contains(QStringLiteral("rank 1")), qPrintable(failed.at(0).at(0).toString()));
        QTRY_VERIFY(m_window->findChild<QMessageBox*>(QStringLiteral("errorBox")));
        m_window->findChild<QMessageBox*>(QStringLiteral("errorBox"))->close();
        processes->setValue(1);
    }

    void runsPageListsOpensComparesAndResumes()
    {
        RunsPage* runs = m_window->runsPage();
        runs->refresh();
        QCOMPARE(runs->runCount(), 2);
        QSignalSpy opened(runs, &RunsPage::runOpened);
        runs->openRun(m_firstRun);
        QVERIFY(opened.wait(10000));
        const auto stored = opened.at(0).at(0).value<StoredRun>();
        QVERIFY(stored.evaluation);
        QCOMPARE(m_window->currentPage(), MainWindow::Page::Evaluate);
        QCOMPARE(m_window->trainPage()->charts()->stepLoss()->dataCount(), 8);
        QCOMPARE(m_window->trainPage()->charts()->validationTop1()->dataCount(), 2);

        QStringList both;
        for (int i = 0; i < runs->runList()->topLevelItemCount(); ++i)
            both << runs->runList()->topLevelItem(i)->data(0, Qt::UserRole + 1).toString();
        runs->compare(both);
        QTRY_COMPARE_WITH_TIMEOUT(runs->comparePlot()->graphCount(), 2, 10000);
        QVERIFY(runs->comparePlot()->graph(0)->dataCount() > 0);

        // The stopped run resumes from its checkpoint; stop it again at once.
        QTreeWidgetItem* stopped = nullptr;
        for (int i = 0; i < runs->runList()->topLevelItemCount(); ++i)
            if (runs->runList()->topLevelItem(i)->text(3) == QStringLiteral("stopped"))
                stopped = runs->runList()->topLevelItem(i);
        QVERIFY(stopped);
        runs->runList()->clearSelection();
        stopped->setSelected(true);
        auto* resume = runs->findChild<QPushButton*>(QStringLiteral("resumeRunButton"));
        QVERIFY(resume->isEnabled());
        QSignalSpy started(m_window->worker(), &TrainingWorker::runStarted);
        QSignalSpy finished(m_window->worker(), &TrainingWorker::finished);
        QTest::mouseClick(resume, Qt::LeftButton);
        QVERIFY(started.wait(60000));
        QVERIFY(started.at(0).at(0).value<vitlab::RunStarted>().firstStep > 0);
        m_window->worker()->requestStop();
        QVERIFY(finished.wait(60000));
    }

    void closingDuringTrainingAsksThenStopsAndKeepsTheCheckpoint()
    {
        configureTinyRun(200);
        TrainingWorker* worker = m_window->worker();
        QSignalSpy steps(worker, &TrainingWorker::stepsReported);
        QVERIFY(m_window->startTraining());
        QVERIFY(steps.wait(60000));
        const QString run = worker->runDirectory();
        m_window->close();
        QVERIFY(m_window->isVisible());
        QVERIFY(worker->isRunning());
        QMessageBox* box = nullptr;
        QTRY_VERIFY((box = m_window->findChild<QMessageBox*>(QStringLiteral("closeWhileTrainingBox"))) != nullptr);
        QPushButton* stop = nullptr;
        for (QAbstractButton* b : box->buttons())
            if (b->text() == QStringLiteral("Stop and quit"))
                stop = qobject_cast<QPushButton*>(b);
        QVERIFY(stop);
        stop->click();
        QTRY_VERIFY_WITH_TIMEOUT(!m_window->isVisible(), 60000);
        QVERIFY(!worker->isRunning());
        const vitlab::RunFolder folder(run.toStdString());
        QCOMPARE(folder.readStatus().state, std::string("stopped"));
        QVERIFY(std::filesystem::exists(folder.resumeStatePath()));
        QVERIFY(std::filesystem::exists(folder.lastWeightsPath()));
    }
};

QTEST_MAIN(TestTrainingFlow)
#include "tst_training_flow.moc"
