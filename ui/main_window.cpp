#include "ui/main_window.h"

#include "ui/about.h"
#include "ui/pages/data_page.h"
#include "ui/pages/evaluate_page.h"
#include "ui/pages/inspect_page.h"
#include "ui/pages/model_page.h"
#include "ui/pages/predict_page.h"
#include "ui/pages/runs_page.h"
#include "ui/pages/train_page.h"
#include "ui/training_worker.h"
#include "ui/widgets/dropped_paths.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QStackedWidget>
#include <QStatusBar>
#include <QStyle>

// The resources are compiled into this static library; a static library's resources must be
// registered by hand, and Q_INIT_RESOURCE cannot be used inside a namespace.
static void registerResources()
{
    Q_INIT_RESOURCE(vitlab);
}

namespace vitlab::ui {

namespace {

struct PageName {
    MainWindow::Page page;
    const char* name;
};

constexpr PageName kPageNames[] = {
    {MainWindow::Page::Data, "data"},         {MainWindow::Page::Model, "model"},
    {MainWindow::Page::Train, "train"},       {MainWindow::Page::Evaluate, "evaluate"},
    {MainWindow::Page::Predict, "predict"},   {MainWindow::Page::Inspect, "inspect"},
    {MainWindow::Page::Runs, "runs"},
};

const char* const kGeometryKey = "window/geometry";
const char* const kStateKey = "window/state";
const char* const kPageKey = "window/page";

} // namespace

MainWindow::MainWindow(const RuntimeInfo& runtime, QWidget* parent)
    : QMainWindow(parent)
    , m_runtime(runtime)
    , m_worker(new TrainingWorker(this))
    , m_pageList(new QListWidget(this))
    , m_pages(new QStackedWidget(this))
    , m_dataPage(new DataPage(this))
    , m_modelPage(new ModelPage(runtime, this))
    , m_trainPage(new TrainPage(m_worker, this))
    , m_evaluatePage(new EvaluatePage(this))
    , m_predictPage(new PredictPage(this))
    , m_inspectPage(new InspectPage(this))
    , m_runsPage(new RunsPage(this))
    , m_datasetStatus(new QLabel(this))
    , m_trainingStatus(new QLabel(this))
    , m_busy(new QProgressBar(this))
    , m_deviceStatus(new QLabel(this))
{
    registerResources();
    setWindowTitle(tr("ViTLab"));
    setWindowIcon(QIcon(QStringLiteral(":/icons/vitlab.svg")));
    setAcceptDrops(true);

    m_pageList->setObjectName(QStringLiteral("pageList"));
    m_pageList->setIconSize(QSize(24, 24));
    m_pageList->setFixedWidth(150);
    m_pageList->setSpacing(2);
    m_pages->setObjectName(QStringLiteral("pages"));

    QStyle* s = style();
    addPage(Page::Data, tr("Data"), s->standardIcon(QStyle::SP_DirIcon), m_dataPage);
    addPage(Page::Model, tr("Model"), s->standardIcon(QStyle::SP_FileDialogDetailedView), m_modelPage);
    addPage(Page::Train, tr("Train"), s->standardIcon(QStyle::SP_MediaPlay), m_trainPage);
    addPage(Page::Evaluate, tr("Evaluate"), s->standardIcon(QStyle::SP_FileDialogContentsView), m_evaluatePage);
    addPage(Page::Predict, tr("Predict"), s->standardIcon(QStyle::SP_DialogApplyButton), m_predictPage);
    addPage(Page::Inspect, tr("Inspect"), s->standardIcon(QStyle::SP_FileDialogInfoView), m_inspectPage);
    addPage(Page::Runs, tr("Runs"), s->standardIcon(QStyle::SP_DriveHDIcon), m_runsPage);

    auto* central = new QWidget(this);
    auto* layout = new QHBoxLayout(central);
    layout->addWidget(m_pageList);
    layout->addWidget(m_pages, 1);
    setCentralWidget(central);
    connect(m_pageList, &QListWidget::currentRowChanged, m_pages, &QStackedWidget::setCurrentIndex);

    m_datasetStatus->setObjectName(QStringLiteral("datasetStatus"));
    m_trainingStatus->setObjectName(QStringLiteral("trainingStatus"));
    m_deviceStatus->setObjectName(QStringLiteral("deviceStatus"));
    m_busy->setObjectName(QStringLiteral("busyIndicator"));
    m_datasetStatus->setText(tr("No dataset"));
    m_busy->setRange(0, 0);
    m_busy->setMaximumWidth(120);
    m_busy->setVisible(false);
    m_deviceStatus->setText(tr("%1 · %2 threads")
                                .arg(QString::fromStdString(m_runtime.deviceDescription))
                                .arg(m_runtime.intraOpThreads));
    m_deviceStatus->setToolTip(m_runtime.cudaAvailable
                                   ? tr("Training runs on the GPU")
                                   : tr("CUDA unavailable: %1").arg(QString::fromStdString(m_runtime.cudaUnavailableReason)));
    statusBar()->addWidget(m_datasetStatus, 1);
    statusBar()->addWidget(m_trainingStatus);
    statusBar()->addWidget(m_busy);
    statusBar()->addPermanentWidget(m_deviceStatus);

    connectPages();
    buildMenus();
    restoreWindowState();
    updatePlan();
}

MainWindow::~MainWindow()
{
    // The worker stops and joins its thread in its own destructor; this makes it happen while
    // the pages that listen to it still exist.
    delete m_worker;
}

void MainWindow::connectPages()
{
    connect(m_dataPage, &DataPage::datasetChanged, this, [this](const QString& name, const QString& directory) {
        m_datasetStatus->setText(tr("Dataset: %1").arg(name));
        m_datasetStatus->setToolTip(directory);
        updatePlan();
    });
    connect(m_dataPage, &DataPage::datasetRejected, this, &MainWindow::showError);
    connect(m_dataPage, &DataPage::scanFailed, this, &MainWindow::showError);
    connect(m_dataPage, &DataPage::datasetScanned, this, [this](const ScanReport& report, bool builtin) {
        m_modelPage->setDataset(report, builtin);
        updatePlan();
    });
    connect(m_modelPage, &ModelPage::settingsChanged, this, &MainWindow::updatePlan);
    connect(m_trainPage, &TrainPage::startRequested, this, &MainWindow::startTraining);

    connect(m_worker, &TrainingWorker::runningChanged, this, [this](bool running) {
        m_runsPage->setTrainingActive(running);
        m_trainingStatus->setText(running ? tr("Training…") : QString());
        if (!running)
            m_busy->setVisible(false);
        updatePlan();
    });
    connect(m_worker, &TrainingWorker::stepsReported, this, [this](const QVector<StepReport>& steps) {
        const StepReport& last = steps.back();
        m_trainingStatus->setText(tr("Training: epoch %1, step %2 of %3").arg(last.epoch).arg(last.step).arg(last.totalSteps));
    });
    connect(m_worker, &TrainingWorker::runStarted, this, [this](const RunStarted&) { m_runsPage->refresh(); });
    connect(m_worker, &TrainingWorker::evaluationReady, this, [this](std::shared_ptr<const EvaluationResult> evaluation) {
        m_evaluatePage->showEvaluation(std::move(evaluation),
                                       tr("Run %1 (latest epoch)").arg(QFileInfo(m_worker->runDirectory()).fileName()),
                                       m_worker->runDirectory());
    });
    connect(m_worker, &TrainingWorker::finished, this, [this](const RunFinished& result) {
        statusBar()->showMessage(tr("Training ended: %1").arg(QString::fromStdString(outcomeName(result.outcome))), 10000);
        m_runsPage->refresh();
        m_predictPage->refreshRuns(QString::fromStdString(result.runDirectory));
        m_inspectPage->refreshRuns(QString::fromStdString(result.runDirectory));
        if (m_closeWhenStopped)
            close();
    });
    connect(m_worker, &TrainingWorker::failed, this, [this](const QString& reason) {
        m_runsPage->refresh();
        if (m_closeWhenStopped) {
            close();
            return;
        }
        showError(tr("Training stopped: %1").arg(reason));
    });

    connect(m_runsPage, &RunsPage::runOpened, this, [this](const StoredRun& run) {
        m_trainPage->showHistory(run.name, run.metrics);
        if (run.evaluation)
            m_evaluatePage->showEvaluation(run.evaluation, tr("Run %1 (%2)").arg(run.name, QString::fromStdString(run.status.state)),
                                           run.directory);
        m_predictPage->refreshRuns(run.directory);
        m_inspectPage->refreshRuns(run.directory);
        statusBar()->showMessage(tr("Opened the run %1: curves on Train, evaluation on Evaluate, model on Predict").arg(run.name), 10000);
        showPage(run.evaluation ? Page::Evaluate : Page::Train);
    });
    connect(m_runsPage, &RunsPage::resumeRequested, this, [this](const QString& directory) {
        if (m_worker->resume(directory, m_modelPage->processes()))
            showPage(Page::Train);
    });
    connect(m_runsPage, &RunsPage::failed, this, &MainWindow::showError);
    connect(m_predictPage, &PredictPage::failed, this, &MainWindow::showError);
    connect(m_inspectPage, &InspectPage::failed, this, &MainWindow::showError);
    connect(m_evaluatePage, &EvaluatePage::inspectRequested, this, [this](const QString& run, const QString& source) {
        m_inspectPage->inspect(run, source);
        showPage(Page::Inspect);
    });
}

void MainWindow::addPage(Page page, const QString& title, const QIcon& icon, QWidget* widget)
{
    Q_ASSERT(m_pages->count() == static_cast<int>(page));
    widget->setObjectName(QString::fromLatin1(kPageNames[static_cast<int>(page)].name) + QStringLiteral("Page"));
    m_pages->addWidget(widget);
    m_pageList->addItem(new QListWidgetItem(icon, title));
}

void MainWindow::buildMenus()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* openFolder = file->addAction(tr("&Open Image Folder…"));
    openFolder->setObjectName(QStringLiteral("openFolderAction"));
    openFolder->setShortcut(QKeySequence::Open);
    connect(openFolder, &QAction::triggered, this, [this] {
        showPage(Page::Data);
        m_dataPage->chooseFolder();
    });
    QAction* demo = file->addAction(tr("Use the Fashion-MNIST &Demo"));
    demo->setObjectName(QStringLiteral("useDemoAction"));
    connect(demo, &QAction::triggered, this, [this] {
        showPage(Page::Data);
        openDataset(QString::fromLatin1(kFashionMnistName));
    });
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"));
    quit->setShortcut(QKeySequence::Quit);
    connect(quit, &QAction::triggered, this, &QWidget::close);

    QMenu* view = menuBar()->addMenu(tr("&View"));
    for (int row = 0; row < m_pageList->count(); ++row) {
        QAction* go = view->addAction(m_pageList->item(row)->icon(), m_pageList->item(row)->text());
        go->setObjectName(QString::fromLatin1(kPageNames[row].name) + QStringLiteral("PageAction"));
        go->setShortcut(QKeySequence(Qt::CTRL | static_cast<Qt::Key>(Qt::Key_1 + row)));
        connect(go, &QAction::triggered, this, [this, row] { showPage(static_cast<Page>(row)); });
        m_pageList->item(row)->setToolTip(tr("%1 (%2)").arg(go->text(), go->shortcut().toString(QKeySequence::NativeText)));
    }

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    QAction* about = help->addAction(tr("&About ViTLab"));
    about->setObjectName(QStringLiteral("aboutAction"));
    connect(about, &QAction::triggered, this, &MainWindow::showAbout);
    help->addAction(tr("About &Qt"), qApp, &QApplication::aboutQt);
}

void MainWindow::showPage(Page page)
{
    m_pageList->setCurrentRow(static_cast<int>(page));
}

MainWindow::Page MainWindow::currentPage() const
{
    return static_cast<Page>(m_pages->currentIndex());
}

bool MainWindow::openDataset(const QString& request)
{
    return m_dataPage->selectDataset(request);
}

void MainWindow::updatePlan()
{
    if (m_worker->isRunning())
        return;
    if (!m_dataPage->hasDataset()) {
        m_trainPage->setPlan(tr("Choose data on the Data page and a model on the Model page, then start training."), false);
        return;
    }
    const QString data = QString::fromStdString(m_dataPage->dataset().displayName);
    if (!m_dataPage->isScanned()) {
        m_trainPage->setPlan(tr("Waiting for the scan of %1 to finish…").arg(data), false);
        return;
    }
    if (!m_modelPage->modelError().isEmpty()) {
        m_trainPage->setPlan(tr("The model cannot be built: %1. Fix it on the Model page.").arg(m_modelPage->modelError()), false);
        return;
    }
    const TrainConfig config = m_modelPage->trainConfig();
    const QString weights = QString::fromStdString(config.weights);
    const QString start = weights.isEmpty()                      ? tr("from random weights")
                        : !weights.startsWith(QLatin1String("hub")) ? tr("from %1").arg(QFileInfo(weights).fileName())
                        : m_modelPage->pretrainedReady()           ? tr("from timm's %1").arg(weights.mid(4))
                                                                   : tr("from timm's %1 (downloaded first)").arg(weights.mid(4));
    const int processes = m_modelPage->processes();
    m_trainPage->setPlan(tr("Start trains %1 at %2 px on %3 %4: %5, batch %6, learning rate %7%8.")
                             .arg(QFileInfo(m_modelPage->modelName()).fileName())
                             .arg(config.imageSize)
                             .arg(data, start)
                             .arg(config.budgetMinutes > 0 ? tr("about %1 minutes, its epochs fitted to this machine")
                                                                 .arg(config.budgetMinutes)
                                  : config.epochs == 1 ? tr("1 epoch")
                                                       : tr("%1 epochs").arg(config.epochs))
                             .arg(config.batchSize)
                             .arg(config.learningRate)
                             .arg(processes > 1 ? tr(", in %1 processes").arg(processes) : QString()),
                         true);
}

bool MainWindow::startTraining()
{
    if (m_worker->isRunning())
        return false;
    if (!m_dataPage->isScanned()) {
        showError(tr("Open a dataset on the Data page first (and let its scan finish)."));
        return false;
    }
    if (!m_modelPage->modelError().isEmpty()) {
        showError(tr("The model cannot be built: %1").arg(m_modelPage->modelError()));
        return false;
    }
    TrainConfig config;
    config.data = m_dataPage->dataset().request;
    config.validationFraction = m_dataPage->validationFraction();
    config.splitSeed = m_dataPage->splitSeed();
    try {
        config = m_modelPage->trainConfig(config);
        config.validate();
    } catch (const Error& e) {
        showError(QString::fromStdString(e.what()));
        return false;
    }
    if (!m_modelPage->pretrainedReady()) {
        // The weights come first, with progress and Cancel on the Model page; training starts
        // when they are in the cache.
        if (!m_modelPage->isDownloading() && !m_modelPage->downloadPretrained())
            return false;
        showPage(Page::Model);
        statusBar()->showMessage(tr("Downloading the pretrained weights; training starts once they are here."));
        connect(
            m_modelPage, &ModelPage::pretrainedDownloadEnded, this,
            [this](bool ok) {
                statusBar()->clearMessage();
                if (ok)
                    startTraining();
            },
            Qt::SingleShotConnection);
        return false;
    }
    showPage(Page::Train);
    return m_worker->start(config, m_modelPage->processes());
}

bool MainWindow::pageFromName(const QString& name, Page* page)
{
    for (const PageName& entry : kPageNames) {
        if (name.compare(QLatin1String(entry.name), Qt::CaseInsensitive) == 0) {
            *page = entry.page;
            return true;
        }
    }
    return false;
}

void MainWindow::showAbout()
{
    // open(), not exec(): the event loop, and with it any running work, keeps going.
    auto* box = new QMessageBox(QMessageBox::NoIcon, tr("About ViTLab"), aboutText(m_runtime), QMessageBox::Ok, this);
    box->setObjectName(QStringLiteral("aboutBox"));
    box->setIconPixmap(windowIcon().pixmap(64, 64));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}

void MainWindow::showError(const QString& message)
{
    statusBar()->showMessage(message, 10000);
    auto* box = new QMessageBox(QMessageBox::Warning, tr("ViTLab"), message, QMessageBox::Ok, this);
    box->setObjectName(QStringLiteral("errorBox"));
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
}

void MainWindow::restoreWindowState()
{
    QSettings settings;
    if (!restoreGeometry(settings.value(kGeometryKey).toByteArray()))
        resize(1180, 760);
    restoreState(settings.value(kStateKey).toByteArray());
    const int page = settings.value(kPageKey, 0).toInt();
    m_pageList->setCurrentRow(page >= 0 && page < m_pages->count() ? page : 0);
}

void MainWindow::saveWindowState()
{
    QSettings settings;
    settings.setValue(kGeometryKey, saveGeometry());
    settings.setValue(kStateKey, saveState());
    settings.setValue(kPageKey, m_pages->currentIndex());
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    saveWindowState();
    if (!m_worker->isRunning()) {
        event->accept();
        return;
    }
    event->ignore();
    if (m_closeWhenStopped)
        return; // already stopping; the window closes when the checkpoint is written
    if (findChild<QMessageBox*>(QStringLiteral("closeWhileTrainingBox")))
        return;
    auto* box = new QMessageBox(QMessageBox::Question, tr("Training is running"),
                                tr("Stop training and quit? The run stops after the current batch and keeps its "
                                   "last checkpoint, so it can be resumed later from the Runs page."),
                                QMessageBox::NoButton, this);
    box->setObjectName(QStringLiteral("closeWhileTrainingBox"));
    QPushButton* stop = box->addButton(tr("Stop and quit"), QMessageBox::AcceptRole);
    box->addButton(tr("Keep training"), QMessageBox::RejectRole);
    box->setDefaultButton(stop);
    box->setAttribute(Qt::WA_DeleteOnClose);
    connect(stop, &QPushButton::clicked, this, [this] {
        m_closeWhenStopped = true;
        m_worker->requestStop();
        // The UI stays live while the trainer finishes its batch and writes the checkpoint.
        m_trainingStatus->setText(tr("Stopping and saving the checkpoint…"));
        m_busy->setVisible(true);
        m_pages->setEnabled(false);
    });
    box->open();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event)
{
    if (event->mimeData()->hasUrls())
        event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event)
{
    const QStringList paths = droppedLocalPaths(event->mimeData());
    if (paths.isEmpty())
        return;
    event->acceptProposedAction();
    // One folder dropped outside the Predict page is a dataset; anything else is to classify.
    if (paths.size() == 1 && QFileInfo(paths.front()).isDir() && currentPage() != Page::Predict) {
        showPage(Page::Data);
        openDataset(paths.front());
        return;
    }
    showPage(Page::Predict);
    m_predictPage->addPaths(paths);
}

} // namespace vitlab::ui
