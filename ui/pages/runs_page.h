#pragma once

#include "core/facade/engine.h"

#include <QFutureWatcher>
#include <QWidget>

#include <map>
#include <memory>

class QComboBox;
class QCustomPlot;
class QLabel;
class QPushButton;
class QTreeWidget;

namespace vitlab::ui {

/// A stored run read from its folder (off the UI thread): its curves and last evaluation.
struct StoredRun {
    QString directory;
    QString name;
    RunStatus status;
    std::vector<MetricsRow> metrics;
    std::shared_ptr<const EvaluationResult> evaluation;
    QString error;
};

/// Every run folder, newest first: open a finished or interrupted run to see its curves,
/// evaluation and predictions, resume it, or overlay several runs' curves to compare them.
class RunsPage : public QWidget {
    Q_OBJECT
public:
    explicit RunsPage(QWidget* parent = nullptr);
    ~RunsPage() override;

    void refresh();
    int runCount() const;
    /// Selects the run in `directory` (if listed) and opens it.
    void openRun(const QString& directory);
    /// Overlays the curves of these runs (folder paths).
    void compare(const QStringList& directories);
    QTreeWidget* runList() const { return m_list; }
    QCustomPlot* comparePlot() const { return m_plot; }
    bool isLoading() const { return m_openWatcher.isRunning() || m_compareWatcher.isRunning(); }
    /// Resume is refused while training runs; the window tells the page.
    void setTrainingActive(bool active);

Q_SIGNALS:
    void runOpened(const vitlab::ui::StoredRun& run);
    void resumeRequested(const QString& directory);
    void failed(const QString& reason);

private:
    QStringList selectedDirectories() const;
    void updateButtons();
    void drawComparison();

    QTreeWidget* m_list = nullptr;
    QPushButton* m_refresh = nullptr;
    QPushButton* m_open = nullptr;
    QPushButton* m_resume = nullptr;
    QPushButton* m_compare = nullptr;
    QComboBox* m_metric = nullptr;
    QCustomPlot* m_plot = nullptr;
    QLabel* m_folder = nullptr;
    QFutureWatcher<StoredRun> m_openWatcher;
    QFutureWatcher<std::vector<StoredRun>> m_compareWatcher;
    std::vector<StoredRun> m_compared;
    bool m_trainingActive = false;
};

/// Reads a run folder's status, metrics and evaluation; errors land in `error`.
StoredRun readStoredRun(const QString& directory, bool withEvaluation);

} // namespace vitlab::ui

Q_DECLARE_METATYPE(vitlab::ui::StoredRun)
