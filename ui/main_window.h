#pragma once

#include "core/facade/engine.h"

#include <QMainWindow>

class QLabel;
class QListWidget;
class QStackedWidget;

namespace vitlab::ui {

class DataPage;
class TrainPage;

/// The composition root of the app: builds the pages and connects them. No training, data or
/// attention logic lives here.
class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    enum class Page { Data, Model, Train, Evaluate, Predict, Inspect };

    explicit MainWindow(const RuntimeInfo& runtime, QWidget* parent = nullptr);

    void showPage(Page page);
    Page currentPage() const;
    DataPage* dataPage() const { return m_dataPage; }
    TrainPage* trainPage() const { return m_trainPage; }
    /// Selects a dataset as if the user picked it; failures are shown, not thrown.
    bool openDataset(const QString& request);

    /// Parses a page name as given on the command line ("data", "train", ...).
    static bool pageFromName(const QString& name, Page* page);

public Q_SLOTS:
    void showAbout();

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    void addPage(Page page, const QString& title, const QIcon& icon, QWidget* widget);
    void buildMenus();
    void restoreWindowState();
    void showError(const QString& message);

    RuntimeInfo m_runtime;
    QListWidget* m_pageList = nullptr;
    QStackedWidget* m_pages = nullptr;
    DataPage* m_dataPage = nullptr;
    TrainPage* m_trainPage = nullptr;
    QLabel* m_datasetStatus = nullptr;
    QLabel* m_deviceStatus = nullptr;
};

} // namespace vitlab::ui
