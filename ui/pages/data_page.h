#pragma once

#include "core/facade/engine.h"

#include <QFutureWatcher>
#include <QWidget>

#include <atomic>
#include <memory>

class QCustomPlot;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QTabWidget;
class QToolButton;
class QTreeWidget;

namespace vitlab::ui {

class ImageGrid;

/// Where the user picks the images to learn from: a folder or the Fashion-MNIST demo. The folder
/// is scanned off the UI thread; the page then shows the classes and their counts, thumbnails per
/// class, and every problem the scan found, with the offending files one click away.
class DataPage : public QWidget {
    Q_OBJECT
public:
    explicit DataPage(QWidget* parent = nullptr);
    ~DataPage() override;

    /// Selects a built-in name or a folder and starts scanning it. On failure the page keeps its
    /// current dataset and returns false with the reason in `error`.
    bool selectDataset(const QString& request, QString* error = nullptr);
    bool hasDataset() const { return m_hasDataset; }
    const DatasetLocation& dataset() const { return m_dataset; }
    /// True once the current dataset's scan has finished successfully.
    bool isScanned() const { return m_scanned; }
    bool isScanning() const { return m_watcher.isRunning(); }
    const ScanReport& report() const { return m_report; }
    double validationFraction() const;
    std::uint64_t splitSeed() const;
    /// Asks for a folder with the system's dialog, starting at the last one opened.
    void chooseFolder();
    void cancelScan();

    QTableWidget* classTable() const { return m_classTable; }
    QTreeWidget* problemTree() const { return m_problems; }
    ImageGrid* thumbnails() const { return m_thumbnails; }
    QCustomPlot* countChart() const { return m_chart; }
    /// Shows the class's thumbnails (as clicking its row does).
    void showClass(int label);

Q_SIGNALS:
    void datasetChanged(const QString& displayName, const QString& directory);
    void datasetRejected(const QString& reason);
    /// The scan finished: classes, counts and sizes are known.
    void datasetScanned(const vitlab::ScanReport& report, bool builtin);
    /// The scan failed (unreadable folder, fewer than two classes, ...).
    void scanFailed(const QString& reason);

private:
    struct ScanResult {
        ScanReport report;
        QString error;
    };
    void startScan();
    void onScanFinished();
    void showDataset();
    void showReport();
    void fillProblems();
    void showPreview(const QString& path, const QString& detail);
    void rememberRecent(const QString& folder);
    void rebuildRecentMenu();

    QLabel* m_summary = nullptr;
    QLabel* m_directory = nullptr;
    QPushButton* m_openFolder = nullptr;
    QToolButton* m_recent = nullptr;
    QPushButton* m_useDemo = nullptr;
    QSpinBox* m_validationPercent = nullptr;
    QSpinBox* m_seed = nullptr;
    QLabel* m_splitNote = nullptr;
    QProgressBar* m_scanProgress = nullptr;
    QPushButton* m_cancelScan = nullptr;
    QTableWidget* m_classTable = nullptr;
    QCustomPlot* m_chart = nullptr;
    QTabWidget* m_tabs = nullptr;
    ImageGrid* m_thumbnails = nullptr;
    QTreeWidget* m_problems = nullptr;
    QLabel* m_preview = nullptr;
    QLabel* m_previewCaption = nullptr;

    DatasetLocation m_dataset;
    bool m_hasDataset = false;
    bool m_scanned = false;
    ScanReport m_report;
    QFutureWatcher<ScanResult> m_watcher;
    std::shared_ptr<std::atomic<bool>> m_cancel;
};

} // namespace vitlab::ui

Q_DECLARE_METATYPE(vitlab::ScanReport)
