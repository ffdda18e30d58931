// vitlab: the desktop entry.
#include "core/facade/engine.h"
#include "ui/main_window.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QTimer>

#include <cstdio>

int main(int argc, char** argv)
{
    vitlab::reexecWithTunedThreading(argv);
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("ViTLab"));
    QApplication::setApplicationName(QStringLiteral("ViTLab"));

    const vitlab::RuntimeInfo runtime = vitlab::facade::startEngine();
    QApplication::setApplicationVersion(QString::fromStdString(runtime.vitlabVersion));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Train and inspect Vision Transformer image classifiers."));
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption dataOption(QStringList{QStringLiteral("d"), QStringLiteral("data")},
                                        QStringLiteral("Open a dataset: an image folder, or \"fashion-mnist\"."),
                                        QStringLiteral("folder"));
    const QCommandLineOption pageOption(QStringLiteral("page"),
                                        QStringLiteral("Start on a page: data, model, train, evaluate, predict, inspect."),
                                        QStringLiteral("name"));
    const QCommandLineOption quitAfterOption(QStringLiteral("quit-after"),
                                             QStringLiteral("Close after this many milliseconds (for smoke tests)."),
                                             QStringLiteral("ms"));
    parser.addOption(dataOption);
    parser.addOption(pageOption);
    parser.addOption(quitAfterOption);
    parser.process(app);

    vitlab::ui::MainWindow window(runtime);
    if (parser.isSet(dataOption))
        window.showPage(vitlab::ui::MainWindow::Page::Data);
    if (parser.isSet(pageOption)) {
        vitlab::ui::MainWindow::Page page;
        if (!vitlab::ui::MainWindow::pageFromName(parser.value(pageOption), &page)) {
            std::fprintf(stderr, "error: unknown page \"%s\"\n", qPrintable(parser.value(pageOption)));
            return 2;
        }
        window.showPage(page);
    }
    window.show();
    if (parser.isSet(dataOption))
        window.openDataset(parser.value(dataOption));
    if (parser.isSet(quitAfterOption))
        QTimer::singleShot(parser.value(quitAfterOption).toInt(), &window, &QWidget::close);
    return app.exec();
}
