#include "ui/widgets/run_choice.h"

#include "core/facade/engine.h"

#include <QComboBox>
#include <QFileInfo>
#include <QSignalBlocker>

namespace vitlab::ui {

int fillRunChoices(QComboBox* box, const QString& keep)
{
    const QSignalBlocker block(box);
    box->clear();
    try {
        for (const RunSummary& run : listRuns(defaultRunsDirectory())) {
            const RunFolder folder(run.directory);
            if (folder.weightsForInference().empty())
                continue;
            box->addItem(QStringLiteral("%1  (%2, %3)").arg(QString::fromStdString(run.name), QString::fromStdString(run.model),
                                                           QString::fromStdString(run.status.state)),
                         QString::fromStdString(run.directory.string()));
        }
    } catch (const std::exception&) {
        // No runs folder yet: the box stays empty and the page says what to do.
    }
    if (!keep.isEmpty() && box->findData(keep) < 0 && !RunFolder(keep.toStdString()).weightsForInference().empty())
        box->insertItem(0, QFileInfo(keep).fileName(), keep);
    const int index = box->findData(keep);
    box->setCurrentIndex(index >= 0 ? index : 0);
    return box->count();
}

} // namespace vitlab::ui
