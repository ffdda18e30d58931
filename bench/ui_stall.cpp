// How long the UI thread stalls while a real training runs: a 5 ms timer on the UI thread records
// the gap between its ticks while Fashion-MNIST trains with the Train page visible and its charts
// updating. The charts are first filled with extra points (100 000 by default) so that repaints
// cost what they cost late in a long run. Prints the longest gap and the 99th percentile.
//   bench/ui_stall.sh [--seconds 25] [--model vit_micro_patch4_28] [--preload-points 100000]
//   bench/ui_stall.sh --seconds 0 --epochs 1     (a whole epoch, its evaluation included)
#include "bench/demo_window.h"
#include "core/facade/engine.h"
#include "ui/main_window.h"
#include "ui/pages/model_page.h"
#include "ui/pages/train_page.h"
#include "ui/plot.h"
#include "ui/training_worker.h"
#include "ui/widgets/training_charts.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QTimer>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

using vitlab::ui::MainWindow;

int main(int argc, char** argv)
{
    vitlab::reexecWithTunedThreading(argv);
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("ViTLabBench"));
    QCommandLineParser parser;
    parser.addHelpOption();
    const QCommandLineOption secondsOption(QStringLiteral("seconds"), QStringLiteral("Seconds of training to measure."),
                                           QStringLiteral("s"), QStringLiteral("25"));
    const QCommandLineOption modelOption(QStringLiteral("model"), QStringLiteral("Model to train."), QStringLiteral("name"),
                                         QStringLiteral("vit_micro_patch4_28"));
    const QCommandLineOption preloadOption(QStringLiteral("preload-points"),
                                           QStringLiteral("Extra points put in the step-loss curves first."),
                                           QStringLiteral("n"), QStringLiteral("100000"));
    const QCommandLineOption epochsOption(QStringLiteral("epochs"), QStringLiteral("Epochs of the run."), QStringLiteral("n"),
                                          QStringLiteral("3"));
    parser.addOptions({secondsOption, modelOption, preloadOption, epochsOption});
    parser.process(app);
    const double seconds = parser.value(secondsOption).toDouble();
    const int preload = parser.value(preloadOption).toInt();

    const vitlab::RuntimeInfo runtime = vitlab::facade::startEngine();
    MainWindow window(runtime);
    vitlab::bench::openDemo(window);
    window.modelPage()->setModel(parser.value(modelOption));
    window.modelPage()->setEpochs(parser.value(epochsOption).toInt());
    window.showPage(MainWindow::Page::Train);

    vitlab::ui::TrainingWorker* worker = window.worker();
    vitlab::ui::TrainingCharts* charts = window.trainPage()->charts();
    std::vector<double> gaps;
    bool measuring = false;
    QElapsedTimer sinceTick;
    QElapsedTimer measured;
    QTimer probe;
    probe.setTimerType(Qt::PreciseTimer);
    probe.setInterval(5);
    double worstAt = 0.0;
    QObject::connect(&probe, &QTimer::timeout, [&] {
        if (measuring) {
            gaps.push_back(static_cast<double>(sinceTick.nsecsElapsed()) / 1e6);
            if (gaps.back() >= *std::max_element(gaps.begin(), gaps.end()))
                worstAt = static_cast<double>(measured.elapsed()) / 1000.0;
        }
        sinceTick.restart();
        // --seconds 0 measures the whole run, epoch ends (evaluation shown) included.
        if (measuring && seconds > 0 && measured.elapsed() > seconds * 1000.0) {
            measuring = false;
            worker->requestStop();
        }
    });
    int steps = 0;
    QObject::connect(worker, &vitlab::ui::TrainingWorker::stepsReported,
                     [&](const QVector<vitlab::StepReport>& batch) { steps += static_cast<int>(batch.size()); });
    int replotsAtStart = 0;
    QObject::connect(worker, &vitlab::ui::TrainingWorker::runStarted, [&](const vitlab::RunStarted&) {
        // After the page has cleared its charts for the new run: make them long, as late in a run.
        QTimer::singleShot(0, [&] {
            QVector<vitlab::StepReport> fake(preload);
            for (int i = 0; i < preload; ++i) {
                fake[i].step = -preload + i;
                fake[i].loss = 2.3 * std::exp(-i / 30000.0) + 0.1 * std::sin(i * 0.37);
                fake[i].learningRate = 1e-3;
            }
            charts->addSteps(fake);
            replotsAtStart = charts->replotCount();
            measured.start();
            sinceTick.restart();
            measuring = true;
        });
    });
    int epochs = 0;
    QObject::connect(worker, &vitlab::ui::TrainingWorker::epochReported, [&](const vitlab::EpochReport&) {
        ++epochs;
        std::printf("epoch end at %.1f s\n", static_cast<double>(measured.elapsed()) / 1000.0);
    });
    QObject::connect(worker, &vitlab::ui::TrainingWorker::runningChanged, [&](bool running) {
        if (!running) {
            measuring = false;
            app.quit();
        }
    });
    QObject::connect(worker, &vitlab::ui::TrainingWorker::failed,
                     [](const QString& reason) { std::fprintf(stderr, "error: %s\n", qPrintable(reason)); });
    probe.start();
    if (!window.startTraining())
        return 1;
    app.exec();

    if (gaps.empty()) {
        std::fprintf(stderr, "error: the run ended before anything was measured\n");
        return 1;
    }
    std::vector<double> sorted = gaps;
    std::sort(sorted.begin(), sorted.end());
    const double p99 = sorted[static_cast<std::size_t>(0.99 * static_cast<double>(sorted.size() - 1))];
    const double p50 = sorted[sorted.size() / 2];
    std::printf("UI thread probe (5 ms timer) over %.1f s of training, %d step reports, %d epoch ends, %d repaints, "
                "%d points in the loss curve\n",
                static_cast<double>(measured.elapsed()) / 1000.0, steps, epochs, charts->replotCount() - replotsAtStart,
                charts->stepLoss()->dataCount());
    std::printf("ticks %zu  median gap %.1f ms  p99 gap %.1f ms  max gap %.1f ms (ending at %.1f s)\n", gaps.size(), p50,
                p99, sorted.back(), worstAt);
    return 0;
}
