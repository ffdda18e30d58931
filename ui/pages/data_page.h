#pragma once

#include "core/facade/engine.h"

#include <QWidget>

class QLabel;
class QPushButton;

namespace vitlab::ui {

/// Where the user picks the images to learn from: a folder or the Fashion-MNIST demo.
class DataPage : public QWidget {
    Q_OBJECT
public:
    explicit DataPage(QWidget* parent = nullptr);

    /// Selects a built-in name or a folder. On failure the page keeps its current dataset and
    /// returns false with the reason in `error`.
    bool selectDataset(const QString& request, QString* error = nullptr);
    bool hasDataset() const { return m_hasDataset; }
    const DatasetLocation& dataset() const { return m_dataset; }
    /// Asks for a folder with the system's dialog, starting at the last one opened.
    void chooseFolder();

Q_SIGNALS:
    void datasetChanged(const QString& displayName, const QString& directory);
    void datasetRejected(const QString& reason);

private:
    void showDataset();

    QLabel* m_summary = nullptr;
    QLabel* m_directory = nullptr;
    QPushButton* m_openFolder = nullptr;
    QPushButton* m_useDemo = nullptr;
    DatasetLocation m_dataset;
    bool m_hasDataset = false;
};

} // namespace vitlab::ui
