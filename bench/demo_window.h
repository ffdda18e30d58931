#pragma once

// The benches that drive the real window start the same way: the window shown at a fixed size on
// the Fashion-MNIST demo, its scan finished, as a person opens it.
#include "ui/main_window.h"
#include "ui/pages/data_page.h"

#include <QElapsedTimer>
#include <QEventLoop>
#include <QTimer>

namespace vitlab::bench {

/// Shows `window` and opens the demo in it; returns once the scan is done (or after 2 minutes).
inline void openDemo(ui::MainWindow& window)
{
    window.resize(1200, 760);
    window.show();
    window.openDataset(QStringLiteral("fashion-mnist"));
    QElapsedTimer wait;
    wait.start();
    while (!window.dataPage()->isScanned() && wait.elapsed() < 120000) {
        QEventLoop loop;
        QTimer::singleShot(20, &loop, &QEventLoop::quit);
        loop.exec();
    }
}

} // namespace vitlab::bench
