// Takes the README's screenshots: drives the real window through a short Fashion-MNIST training
// and grabs every page during and after it. Run under a display (xvfb-run) so fonts and styles
// are those of a desktop:
//   xvfb-run -a -s "-screen 0 1280x800x24" build/tools/vitlab-screenshots --out docs
// With --run DIR, an existing run stands in for the training: only Predict and the inspector.
#include "core/facade/engine.h"
#include "ui/main_window.h"
#include "ui/pages/data_page.h"
#include "ui/pages/evaluate_page.h"
#include "ui/pages/inspect_page.h"
#include "ui/pages/model_page.h"
#include "ui/pages/predict_page.h"
#include "ui/pages/runs_page.h"
#include "ui/pages/train_page.h"
#include "ui/training_worker.h"
#include "ui/widgets/attention_inspector.h"
#include "ui/widgets/attention_overlay.h"
#include "ui/widgets/confusion_matrix_view.h"
#include "ui/widgets/image_grid.h"
#include "ui/plot.h"
#include "ui/widgets/training_charts.h"

#include <QApplication>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QCommandLineParser>
#include <QDir>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QImage>
#include <QTimer>
#include <QTreeWidget>

#include <cstdio>
#include <functional>

using vitlab::ui::MainWindow;

namespace {

bool waitFor(const std::function<bool()>& done, int timeoutMs)
{
    QElapsedTimer timer;
    timer.start();
    while (!done()) {
        if (timer.elapsed() > timeoutMs)
            return false;
        // Sleep in the event loop: a processEvents() spin would take a core from the training.
        QEventLoop loop;
        QTimer::singleShot(20, &loop, &QEventLoop::quit);
        loop.exec();
    }
    return true;
}

void settle(int ms)
{
    waitFor([] { return false; }, ms);
}

void grab(MainWindow& window, const QString& path)
{
    window.trainPage()->charts()->replotNow();
    settle(300);
    if (!window.grab().save(path))
        std::fprintf(stderr, "cannot write %s\n", qPrintable(path));
    else
        std::printf("wrote %s\n", qPrintable(path));
}

/// Writes a few Fashion-MNIST test images as PNG files, as a user would drop them.
QStringList writeTestImages(const QString& folder, int count)
{
    QDir().mkpath(folder);
    QStringList files;
    const QString idx = QString::fromStdString(vitlab::fashionMnistDirectory().string());
    for (int i = 0; i < count; ++i) {
        const auto decoded = vitlab::loadSourceImage(idx.toStdString() + "#t10k:" + std::to_string(i * 37), 1);
        QImage image(decoded.pixels.data(), decoded.width, decoded.height, decoded.width, QImage::Format_Grayscale8);
        const QString file = QStringLiteral("%1/item_%2.png").arg(folder).arg(i, 2, 10, QLatin1Char('0'));
        image.copy().save(file);
        files << file;
    }
    return files;
}

/// Predict with its overlay, then the Inspect page on a validation image of the Evaluate page.
bool grabPredictAndInspector(MainWindow& window, const QString& out)
{
    window.showPage(MainWindow::Page::Predict);
    vitlab::ui::PredictPage* predict = window.predictPage();
    const QStringList files = writeTestImages(QDir::tempPath() + QStringLiteral("/vitlab-screenshot-images"), 24);
    predict->addPaths(files);
    waitFor([&] { return predict->predictionCount() == files.size() && !predict->isBusy(); }, 120000);
    predict->images()->setCurrentIndex(predict->images()->model()->index(3, 0));
    waitFor([&] { return predict->images()->loadedCount() == files.size(); }, 30000);
    if (!waitFor([&] { return predict->inspector()->view() && !predict->inspector()->isBusy(); }, 60000))
        return false;
    grab(window, out + QStringLiteral("/screenshot-predict.png"));

    // Inspect: a validation image from the Evaluate page, and what one patch attends to.
    vitlab::ui::EvaluatePage* evaluate = window.evaluatePage();
    window.showPage(MainWindow::Page::Evaluate);
    const QString source = evaluate->cellImages()->count() > 0 ? evaluate->cellImages()->gridModel()->item(0).source
                                                                : evaluate->hardestImages()->gridModel()->item(0).source;
    evaluate->inspect(source);
    vitlab::ui::AttentionInspector* inspector = window.inspectPage()->inspector();
    const auto settled = [&] { return inspector->view() && !inspector->isBusy(); };
    if (!waitFor(settled, 60000))
        return false;
    // The patch at about a third of the width and half the height, in the last block.
    inspector->setQuery(QPointF(0.35, 0.5));
    settle(200);
    if (!waitFor(settled, 60000))
        return false;
    grab(window, out + QStringLiteral("/screenshot-inspect.png"));
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    vitlab::reexecWithTunedThreading(argv);
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("ViTLabScreenshots"));
    QApplication::setApplicationName(QStringLiteral("ViTLab"));
    QCommandLineParser parser;
    parser.addHelpOption();
    const QCommandLineOption outOption(QStringLiteral("out"), QStringLiteral("Folder for the PNGs."), QStringLiteral("dir"), QStringLiteral("docs"));
    const QCommandLineOption modelOption(QStringLiteral("model"), QStringLiteral("Model to train."), QStringLiteral("name"),
                                         QStringLiteral("vit_micro_patch4_28"));
    const QCommandLineOption epochsOption(QStringLiteral("epochs"), QStringLiteral("Epochs to train."), QStringLiteral("n"), QStringLiteral("2"));
    const QCommandLineOption runOption(QStringLiteral("run"), QStringLiteral("An existing run: only Predict and the inspector."),
                                       QStringLiteral("dir"));
    parser.addOptions({outOption, modelOption, epochsOption, runOption});
    parser.process(app);
    const QString out = parser.value(outOption);
    QDir().mkpath(out);

    const vitlab::RuntimeInfo runtime = vitlab::facade::startEngine();
    MainWindow window(runtime);
    window.resize(1200, 760);
    window.show();

    if (parser.isSet(runOption)) {
        window.runsPage()->openRun(parser.value(runOption));
        if (!waitFor([&] { return window.evaluatePage()->hasEvaluation(); }, 60000))
            return 1;
        return grabPredictAndInspector(window, out) ? 0 : 1;
    }

    // Data
    window.showPage(MainWindow::Page::Data);
    window.openDataset(QStringLiteral("fashion-mnist"));
    if (!waitFor([&] { return window.dataPage()->isScanned(); }, 120000))
        return 1;
    window.dataPage()->showClass(0);
    waitFor([&] { return window.dataPage()->thumbnails()->loadedCount() == window.dataPage()->thumbnails()->count(); }, 30000);
    grab(window, out + QStringLiteral("/screenshot-data.png"));

    // Model
    window.showPage(MainWindow::Page::Model);
    window.modelPage()->setModel(parser.value(modelOption));
    window.modelPage()->setEpochs(parser.value(epochsOption).toInt());
    window.modelPage()->setBatchSize(128);
    grab(window, out + QStringLiteral("/screenshot-model.png"));

    // Train: during and after
    if (!window.startTraining())
        return 1;
    vitlab::ui::TrainingWorker* worker = window.worker();
    auto* loss = window.trainPage()->charts()->stepLoss();
    waitFor([&] { return loss->dataCount() >= 150 || !worker->isRunning(); }, 30 * 60000);
    grab(window, out + QStringLiteral("/screenshot-train-running.png"));
    waitFor([&] { return !worker->isRunning(); }, 60 * 60000);
    window.showPage(MainWindow::Page::Train);
    grab(window, out + QStringLiteral("/screenshot-train.png"));

    // Evaluate: the largest mistake's cell
    window.showPage(MainWindow::Page::Evaluate);
    auto* matrix = window.evaluatePage()->matrix();
    int bestRow = 0, bestColumn = 1;
    for (int r = 0; r < matrix->classCount(); ++r)
        for (int c = 0; c < matrix->classCount(); ++c)
            if (r != c && matrix->count(r, c) > matrix->count(bestRow, bestColumn)) {
                bestRow = r;
                bestColumn = c;
            }
    window.evaluatePage()->showCell(bestRow, bestColumn);
    waitFor([&] { return window.evaluatePage()->cellImages()->loadedCount() == window.evaluatePage()->cellImages()->count(); }, 30000);
    grab(window, out + QStringLiteral("/screenshot-evaluate.png"));

    if (!grabPredictAndInspector(window, out))
        return 1;

    // Runs: a second run, stopped early (so it can be resumed), compared with the first.
    window.modelPage()->setEpochs(1);
    // A different learning rate, or the comparison shows one curve over another identical one.
    if (auto* rate = window.modelPage()->findChild<QDoubleSpinBox*>(QStringLiteral("learningRateBox")))
        rate->setValue(3e-3);
    bool secondStarted = false;
    QObject::connect(worker, &vitlab::ui::TrainingWorker::runStarted, [&] { secondStarted = true; });
    if (window.startTraining()) {
        // The charts hold the first run's points until the second one starts.
        waitFor([&] { return (secondStarted && loss->dataCount() >= 120) || !worker->isRunning(); }, 30 * 60000);
        worker->requestStop();
        waitFor([&] { return !worker->isRunning(); }, 10 * 60000);
    }
    window.showPage(MainWindow::Page::Runs);
    window.runsPage()->refresh();
    QStringList runs;
    QTreeWidget* list = window.runsPage()->runList();
    for (int i = 0; i < list->topLevelItemCount() && i < 4; ++i) {
        runs << list->topLevelItem(i)->data(0, Qt::UserRole + 1).toString();
        list->topLevelItem(i)->setSelected(i == 0);
    }
    if (auto* metric = window.runsPage()->findChild<QComboBox*>())
        metric->setCurrentIndex(2); // the step loss: both runs have one
    window.runsPage()->compare(runs);
    waitFor([&] { return !window.runsPage()->isLoading(); }, 30000);
    grab(window, out + QStringLiteral("/screenshot-runs.png"));
    return 0;
}
