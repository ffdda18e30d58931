#include "ui/main_window.h"

#include "ui/about.h"
#include "ui/pages/data_page.h"
#include "ui/pages/empty_state_page.h"
#include "ui/pages/train_page.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QMenuBar>
#include <QMessageBox>
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
};

const char* const kGeometryKey = "window/geometry";
const char* const kStateKey = "window/state";
const char* const kPageKey = "window/page";

} // namespace

MainWindow::MainWindow(const RuntimeInfo& runtime, QWidget* parent)
    : QMainWindow(parent)
    , m_runtime(runtime)
    , m_pageList(new QListWidget(this))
    , m_pages(new QStackedWidget(this))
    , m_dataPage(new DataPage(this))
    , m_trainPage(new TrainPage(this))
    , m_datasetStatus(new QLabel(this))
    , m_deviceStatus(new QLabel(this))
{
    registerResources();
    setWindowTitle(tr("ViTLab"));
    setWindowIcon(QIcon(QStringLiteral(":/icons/vitlab.svg")));

    m_pageList->setObjectName(QStringLiteral("pageList"));
    m_pageList->setIconSize(QSize(24, 24));
    m_pageList->setFixedWidth(150);
    m_pageList->setSpacing(2);
    m_pages->setObjectName(QStringLiteral("pages"));

    QStyle* s = style();
    addPage(Page::Data, tr("Data"), s->standardIcon(QStyle::SP_DirIcon), m_dataPage);
    addPage(Page::Model, tr("Model"), s->standardIcon(QStyle::SP_FileDialogDetailedView),
            new EmptyStatePage(tr("Model"),
                               tr("Pick an architecture (ViT, DeiT, Swin, TNT or a ResNet+ViT hybrid) and its "
                                  "size, and optionally start from timm weights."),
                               this));
    addPage(Page::Train, tr("Train"), s->standardIcon(QStyle::SP_MediaPlay), m_trainPage);
    addPage(Page::Evaluate, tr("Evaluate"), s->standardIcon(QStyle::SP_FileDialogContentsView),
            new EmptyStatePage(tr("Evaluate"),
                               tr("After training, the confusion matrix, per-class precision, recall and F1, and "
                                  "the misclassified images appear here."),
                               this));
    addPage(Page::Predict, tr("Predict"), s->standardIcon(QStyle::SP_DialogApplyButton),
            new EmptyStatePage(tr("Predict"), tr("Drop images here to classify them with a trained model."), this));
    addPage(Page::Inspect, tr("Inspect"), s->standardIcon(QStyle::SP_FileDialogInfoView),
            new EmptyStatePage(tr("Inspect"),
                               tr("See where the model looks: attention per layer and head, and attention "
                                  "rollout over the image."),
                               this));

    auto* central = new QWidget(this);
    auto* layout = new QHBoxLayout(central);
    layout->addWidget(m_pageList);
    layout->addWidget(m_pages, 1);
    setCentralWidget(central);
    connect(m_pageList, &QListWidget::currentRowChanged, m_pages, &QStackedWidget::setCurrentIndex);

    m_datasetStatus->setObjectName(QStringLiteral("datasetStatus"));
    m_deviceStatus->setObjectName(QStringLiteral("deviceStatus"));
    m_datasetStatus->setText(tr("No dataset"));
    m_deviceStatus->setText(tr("%1 · %2 threads")
                                .arg(QString::fromStdString(m_runtime.deviceDescription))
                                .arg(m_runtime.intraOpThreads));
    m_deviceStatus->setToolTip(m_runtime.cudaAvailable
                                   ? tr("Training runs on the GPU")
                                   : tr("CUDA unavailable: %1").arg(QString::fromStdString(m_runtime.cudaUnavailableReason)));
    statusBar()->addWidget(m_datasetStatus, 1);
    statusBar()->addPermanentWidget(m_deviceStatus);

    connect(m_dataPage, &DataPage::datasetChanged, this, [this](const QString& name, const QString& directory) {
        m_datasetStatus->setText(tr("Dataset: %1").arg(name));
        m_datasetStatus->setToolTip(directory);
    });
    connect(m_dataPage, &DataPage::datasetRejected, this, &MainWindow::showError);

    buildMenus();
    restoreWindowState();
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
        resize(1100, 720);
    restoreState(settings.value(kStateKey).toByteArray());
    const int page = settings.value(kPageKey, 0).toInt();
    m_pageList->setCurrentRow(page >= 0 && page < m_pages->count() ? page : 0);
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    QSettings settings;
    settings.setValue(kGeometryKey, saveGeometry());
    settings.setValue(kStateKey, saveState());
    settings.setValue(kPageKey, m_pages->currentIndex());
    event->accept();
}

} // namespace vitlab::ui
