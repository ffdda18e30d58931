#include "ui/about.h"

#include "core/facade/engine.h"

#include <QCoreApplication>
#include "ui/plot.h"

namespace vitlab::ui {

QString aboutText(const RuntimeInfo& runtime)
{
    const QString device = runtime.cudaAvailable
        ? QString::fromStdString(runtime.deviceDescription)
        : QStringLiteral("CPU (CUDA unavailable: %1)").arg(QString::fromStdString(runtime.cudaUnavailableReason));
    return QStringLiteral(
               "<h3>ViTLab %1</h3>"
               "<p>Train and inspect Vision Transformer image classifiers on your own pictures.</p>"
               "<table>"
               "<tr><td>LibTorch</td><td>%2</td></tr>"
               "<tr><td>Qt</td><td>%3</td></tr>"
               "<tr><td>OpenCV</td><td>%4</td></tr>"
               "<tr><td>QCustomPlot</td><td>%5</td></tr>"
               "<tr><td>Device</td><td>%6</td></tr>"
               "<tr><td>Threads</td><td>%7</td></tr>"
               "</table>")
        .arg(QString::fromStdString(runtime.vitlabVersion), QString::fromStdString(runtime.torchVersion),
             QString::fromLatin1(qVersion()), QString::fromStdString(runtime.opencvVersion),
             QStringLiteral(QCUSTOMPLOT_VERSION_STR), device, QString::number(runtime.intraOpThreads));
}

} // namespace vitlab::ui
