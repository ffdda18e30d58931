#pragma once

#include "core/facade/engine.h"

#include <QMainWindow>

class QLabel;
class QListWidget;
class QProgressBar;
class QStackedWidget;

namespace vitlab::ui {

class DataPage;
class EvaluatePage;
class InspectPage;
class ModelPage;
class PredictPage;
class RunsPage;
class TrainPage;
class TrainingWorker;

/// The composition root of the app: builds the pages and connects them. No training, data or
/// attention logic lives here.
class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    enum class Page { Data, Model, Train, Evaluate, Predict, Inspect, Runs };

    explicit MainWindow(const RuntimeInfo& runtime, QWidget* parent = nullptr);
    ~MainWindow() override;

    void showPage(Page page);
    Page currentPage() const;
    DataPage* dataPage() const { return m_dataPage; }
    ModelPage* modelPage() const { return m_modelPage; }
    TrainPage* trainPage() const { return m_trainPage; }
    EvaluatePage* evaluatePage() const { return m_evaluatePage; }
    PredictPage* predictPage() const { return m_predictPage; }
    InspectPage* inspectPage() const { return m_inspectPage; }
    RunsPage* runsPage() const { return m_runsPage; }
    TrainingWorker* worker() const { return m_worker; }
    /// Selects a dataset as if the user picked it; failures are shown, not thrown.
    bool openDataset(const QString& request);
    /// Starts training what the Data and Model pages say; failures are shown, not thrown.
    bool startTraining();

    /// Parses a page name as given on the command line ("data", "train", ...).
    static bool pageFromName(const QString& name, Page* page);

public Q_SLOTS:
    void showAbout();

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void addPage(Page page, const QString& title, const QIcon& icon, QWidget* widget);
    void buildMenus();
    void connectPages();
    void restoreWindowState();
    void saveWindowState();
    void showError(const QString& message);
    void updatePlan();

    RuntimeInfo m_runtime;
    TrainingWorker* m_worker = nullptr;
    QListWidget* m_pageList = nullptr;
    QStackedWidget* m_pages = nullptr;
    DataPage* m_dataPage = nullptr;
    ModelPage* m_modelPage = nullptr;
    TrainPage* m_trainPage = nullptr;
    EvaluatePage* m_evaluatePage = nullptr;
    PredictPage* m_predictPage = nullptr;
    InspectPage* m_inspectPage = nullptr;
    RunsPage* m_runsPage = nullptr;
    QLabel* m_datasetStatus = nullptr;
    QLabel* m_trainingStatus = nullptr;
    QProgressBar* m_busy = nullptr;
    QLabel* m_deviceStatus = nullptr;
    /// Set when the user chose to close during training: close once the checkpoint is written.
    bool m_closeWhenStopped = false;
};

} // namespace vitlab::ui
