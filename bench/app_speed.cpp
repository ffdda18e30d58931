// The app's training speed, as a person gets it: the real window opens Fashion-MNIST, the Model
// page's settings (the suggested ones, as after opening the demo) train for a while with the Train
// page and its live charts shown, and this prints the time from Start to the first step and the
// run folder, whose metrics.csv bench/app_speed.sh compares with vitlab-cli train's on the same
// settings, in the same run.
//   bench/app_speed.sh [--seconds 40]
#include "bench/demo_window.h"
#include "core/facade/engine.h"
#include "ui/main_window.h"
#include "ui/pages/model_page.h"
#include "ui/training_worker.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QElapsedTimer>
#include <QTimer>

#include <cstdio>

using vitlab::ui::MainWindow;

int main(int argc, char** argv)
{
    vitlab::reexecWithTunedThreading(argv);
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("ViTLabBench"));
    QCommandLineParser parser;
    parser.addHelpOption();
    const QCommandLineOption secondsOption(QStringLiteral("seconds"), QStringLiteral("Seconds of training."),
                                           QStringLiteral("s"), QStringLiteral("40"));
    parser.addOption(secondsOption);
    parser.process(app);

    const vitlab::RuntimeInfo runtime = vitlab::facade::startEngine();
    MainWindow window(runtime);
    vitlab::bench::openDemo(window);
    window.showPage(MainWindow::Page::Train);

    auto* worker = window.worker();
    QElapsedTimer sinceStart;
    double firstStep = -1.0;
    QObject::connect(worker, &vitlab::ui::TrainingWorker::stepsReported, [&](const QVector<vitlab::StepReport>&) {
        if (firstStep < 0.0)
            firstStep = static_cast<double>(sinceStart.nsecsElapsed()) / 1e9;
    });
    QString runDirectory;
    QObject::connect(worker, &vitlab::ui::TrainingWorker::runStarted,
                     [&](const vitlab::RunStarted& run) { runDirectory = QString::fromStdString(run.runDirectory); });
    QObject::connect(worker, &vitlab::ui::TrainingWorker::runningChanged, [&](bool running) {
        if (!running)
            app.quit();
    });
    QObject::connect(worker, &vitlab::ui::TrainingWorker::failed,
                     [](const QString& reason) { std::fprintf(stderr, "error: %s\n", qPrintable(reason)); });
    // Stopped after --seconds, as a person pressing Stop (the run folder keeps its metrics).
    QTimer::singleShot(static_cast<int>(parser.value(secondsOption).toDouble() * 1000), worker,
                       &vitlab::ui::TrainingWorker::requestStop);
    sinceStart.start();
    if (!window.startTraining())
        return 1;
    app.exec();
    std::printf("start_to_first_step_s %.2f\nrun %s\n", firstStep, qPrintable(runDirectory));
    return firstStep < 0.0 ? 1 : 0;
}
