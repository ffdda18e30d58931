#include "ui/pages/data_page.h"

#include "ui/plot.h"
#include "ui/widgets/image_grid.h"

#include <QDesktopServices>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMenu>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QTimer>
#include <QToolButton>
#include <QTreeWidget>
#include <QUrl>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>

namespace vitlab::ui {

namespace {
const char* const kLastFolderKey = "data/lastFolder";
const char* const kRecentKey = "data/recent";
constexpr int kRecentMax = 8;
constexpr std::size_t kThumbnailsPerClass = 200;
constexpr int kPathRole = Qt::UserRole + 1;

QTableWidgetItem* numberItem(qint64 value)
{
    auto* item = new QTableWidgetItem;
    item->setData(Qt::DisplayRole, value);
    item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return item;
}
} // namespace

DataPage::DataPage(QWidget* parent)
    : QWidget(parent)
    , m_summary(new QLabel(this))
    , m_directory(new QLabel(this))
    , m_openFolder(new QPushButton(tr("Open image folder…"), this))
    , m_recent(new QToolButton(this))
    , m_useDemo(new QPushButton(tr("Use the Fashion-MNIST demo"), this))
    , m_validationPercent(new QSpinBox(this))
    , m_seed(new QSpinBox(this))
    , m_splitNote(new QLabel(this))
    , m_scanProgress(new QProgressBar(this))
    , m_cancelScan(new QPushButton(tr("Cancel"), this))
    , m_classTable(new QTableWidget(0, 4, this))
    , m_chart(new QCustomPlot(this))
    , m_tabs(new QTabWidget(this))
    , m_thumbnails(new ImageGrid(this, 72))
    , m_problems(new QTreeWidget(this))
    , m_preview(new QLabel(this))
    , m_previewCaption(new QLabel(this))
{
    qRegisterMetaType<vitlab::ScanReport>();
    m_summary->setObjectName(QStringLiteral("datasetSummary"));
    m_directory->setObjectName(QStringLiteral("datasetDirectory"));
    m_openFolder->setObjectName(QStringLiteral("openFolderButton"));
    m_recent->setObjectName(QStringLiteral("recentButton"));
    m_useDemo->setObjectName(QStringLiteral("useDemoButton"));
    m_validationPercent->setObjectName(QStringLiteral("validationPercent"));
    m_seed->setObjectName(QStringLiteral("splitSeed"));
    m_scanProgress->setObjectName(QStringLiteral("scanProgress"));
    m_classTable->setObjectName(QStringLiteral("classTable"));
    m_chart->setObjectName(QStringLiteral("classChart"));
    m_thumbnails->setObjectName(QStringLiteral("classThumbnails"));
    m_problems->setObjectName(QStringLiteral("problemTree"));

    QFont summaryFont = m_summary->font();
    summaryFont.setPointSizeF(summaryFont.pointSizeF() * 1.4);
    summaryFont.setBold(true);
    m_summary->setFont(summaryFont);
    m_directory->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_directory->setWordWrap(true);
    m_openFolder->setToolTip(tr("A folder with one sub-folder of images per class (Ctrl+O). You can also drop a "
                                "folder on the window."));
    m_useDemo->setToolTip(tr("70 000 grey 28×28 pictures of clothing in 10 classes"));
    m_recent->setText(tr("Recent"));
    m_recent->setToolTip(tr("Folders opened before"));
    m_recent->setPopupMode(QToolButton::InstantPopup);
    m_recent->setMenu(new QMenu(m_recent));

    m_validationPercent->setRange(5, 50);
    m_validationPercent->setSuffix(QStringLiteral(" %"));
    m_validationPercent->setValue(20);
    m_validationPercent->setToolTip(tr("Share of each class held out to measure accuracy on images the model never "
                                       "trains on"));
    m_seed->setRange(0, 999999);
    m_seed->setToolTip(tr("The same seed always picks the same validation images"));
    m_splitNote->setWordWrap(true);
    m_scanProgress->setVisible(false);
    m_cancelScan->setVisible(false);

    m_classTable->setHorizontalHeaderLabels({tr("Class"), tr("Training"), tr("Validation"), tr("Total")});
    m_classTable->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_classTable->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    m_classTable->verticalHeader()->setVisible(false);
    m_classTable->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_classTable->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_classTable->setSelectionMode(QAbstractItemView::SingleSelection);
    m_classTable->setSortingEnabled(false);
    m_classTable->setToolTip(tr("Click a class to see its images"));

    m_chart->setMinimumHeight(140);
    m_chart->yAxis->setLabel(tr("images"));
    // The legend sits above the bars, not on them.
    m_chart->legend->setVisible(true);
    m_chart->legend->setFont(QFont(font().family(), 8));
    m_chart->legend->setFillOrder(QCPLegend::foColumnsFirst);
    m_chart->legend->setBorderPen(Qt::NoPen);
    m_chart->plotLayout()->insertRow(0);
    m_chart->plotLayout()->addElement(0, 0, m_chart->legend);
    m_chart->plotLayout()->setRowStretchFactor(0, 0.001);

    m_problems->setHeaderLabels({tr("Problem"), tr("Details")});
    m_problems->header()->setSectionResizeMode(0, QHeaderView::Interactive);
    m_problems->setColumnWidth(0, 220);
    m_problems->setToolTip(tr("Click a file to see it; double-click opens it with the system's viewer"));
    m_preview->setAlignment(Qt::AlignCenter);
    m_preview->setMinimumSize(160, 160);
    m_previewCaption->setWordWrap(true);
    m_previewCaption->setTextInteractionFlags(Qt::TextSelectableByMouse);

    // --- layout
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_openFolder);
    buttons->addWidget(m_recent);
    buttons->addWidget(m_useDemo);
    buttons->addStretch();
    auto* split = new QHBoxLayout;
    split->addWidget(new QLabel(tr("Validation share:"), this));
    split->addWidget(m_validationPercent);
    split->addWidget(new QLabel(tr("Split seed:"), this));
    split->addWidget(m_seed);
    split->addWidget(m_splitNote, 1);

    auto* progress = new QHBoxLayout;
    progress->addWidget(m_scanProgress, 1);
    progress->addWidget(m_cancelScan);

    auto* left = new QSplitter(Qt::Vertical, this);
    left->addWidget(m_classTable);
    left->addWidget(m_chart);

    auto* problemsPane = new QWidget(this);
    auto* problemsLayout = new QHBoxLayout(problemsPane);
    problemsLayout->setContentsMargins(0, 0, 0, 0);
    auto* previewColumn = new QVBoxLayout;
    previewColumn->addWidget(m_preview, 1);
    previewColumn->addWidget(m_previewCaption);
    problemsLayout->addWidget(m_problems, 3);
    problemsLayout->addLayout(previewColumn, 1);
    m_tabs->addTab(m_thumbnails, tr("Images"));
    m_tabs->addTab(problemsPane, tr("Problems"));

    auto* body = new QSplitter(Qt::Horizontal, this);
    body->addWidget(left);
    body->addWidget(m_tabs);
    body->setStretchFactor(0, 2);
    body->setStretchFactor(1, 3);
    body->setSizes({420, 600});
    left->setSizes({340, 220});

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(m_summary);
    layout->addWidget(m_directory);
    layout->addLayout(buttons);
    layout->addLayout(split);
    layout->addLayout(progress);
    layout->addWidget(body, 1);

    // --- behaviour
    connect(m_openFolder, &QPushButton::clicked, this, &DataPage::chooseFolder);
    connect(m_useDemo, &QPushButton::clicked, this, [this] { selectDataset(QString::fromLatin1(kFashionMnistName)); });
    connect(m_cancelScan, &QPushButton::clicked, this, &DataPage::cancelScan);
    connect(&m_watcher, &QFutureWatcher<ScanResult>::finished, this, &DataPage::onScanFinished);
    // A new split needs a new scan; wait until the user stops typing.
    auto* rescan = new QTimer(this);
    rescan->setSingleShot(true);
    rescan->setInterval(400);
    connect(rescan, &QTimer::timeout, this, [this] {
        if (m_hasDataset && !m_report.explicitSplits)
            startScan();
    });
    connect(m_validationPercent, &QSpinBox::valueChanged, rescan, qOverload<>(&QTimer::start));
    connect(m_seed, &QSpinBox::valueChanged, rescan, qOverload<>(&QTimer::start));
    connect(m_classTable, &QTableWidget::currentCellChanged, this, [this](int row) {
        if (row >= 0)
            showClass(m_classTable->item(row, 0)->data(Qt::UserRole).toInt());
    });
    connect(m_problems, &QTreeWidget::currentItemChanged, this, [this](QTreeWidgetItem* item) {
        if (item && !item->data(0, kPathRole).toString().isEmpty())
            showPreview(item->data(0, kPathRole).toString(), item->text(1));
    });
    connect(m_problems, &QTreeWidget::itemDoubleClicked, this, [](QTreeWidgetItem* item) {
        const QString path = item->data(0, kPathRole).toString();
        if (!path.isEmpty())
            QDesktopServices::openUrl(QUrl::fromLocalFile(path));
    });
    rebuildRecentMenu();
    showDataset();
}

DataPage::~DataPage()
{
    cancelScan();
    m_watcher.waitForFinished();
}

double DataPage::validationFraction() const
{
    return m_validationPercent->value() / 100.0;
}

std::uint64_t DataPage::splitSeed() const
{
    return static_cast<std::uint64_t>(m_seed->value());
}

bool DataPage::selectDataset(const QString& request, QString* error)
{
    DatasetLocation location;
    std::string reason;
    if (!facade::tryResolveDataset(request.toStdString(), location, reason)) {
        const QString message = QString::fromStdString(reason);
        if (error)
            *error = message;
        Q_EMIT datasetRejected(message);
        return false;
    }
    m_dataset = location;
    m_hasDataset = true;
    if (!location.builtin) {
        const QString folder = QString::fromStdString(location.directory.string());
        QSettings().setValue(kLastFolderKey, folder);
        rememberRecent(folder);
    }
    showDataset();
    Q_EMIT datasetChanged(QString::fromStdString(m_dataset.displayName),
                          QString::fromStdString(m_dataset.directory.string()));
    startScan();
    return true;
}

void DataPage::chooseFolder()
{
    const QString start = QSettings().value(kLastFolderKey).toString();
    const QString folder = QFileDialog::getExistingDirectory(this, tr("Open image folder"), start);
    if (!folder.isEmpty())
        selectDataset(folder);
}

void DataPage::cancelScan()
{
    if (m_cancel)
        *m_cancel = true;
}

void DataPage::startScan()
{
    cancelScan();
    m_watcher.waitForFinished(); // a cancelled scan returns within one file
    m_scanned = false;
    m_cancel = std::make_shared<std::atomic<bool>>(false);
    auto cancel = m_cancel;
    ScanOptions options;
    options.validationFraction = validationFraction();
    options.seed = splitSeed();
    const std::string request = m_dataset.request;
    QPointer<QProgressBar> bar = m_scanProgress;
    auto lastShown = std::make_shared<std::atomic<int>>(-1);
    options.progress = [cancel, bar, lastShown, this](std::size_t done, std::size_t total) {
        const int permille = total ? static_cast<int>(1000 * done / total) : 0;
        // Post only when the bar would move: a folder of 100 000 files must not flood the queue.
        if (lastShown->exchange(permille) != permille)
            QMetaObject::invokeMethod(this, [bar, permille] {
                if (bar)
                    bar->setValue(permille);
            }, Qt::QueuedConnection);
        return !*cancel;
    };
    m_scanProgress->setRange(0, 1000);
    m_scanProgress->setValue(0);
    m_scanProgress->setFormat(tr("Scanning %1… %p%").arg(QString::fromStdString(m_dataset.displayName)));
    m_scanProgress->setVisible(true);
    m_cancelScan->setVisible(true);
    m_watcher.setFuture(QtConcurrent::run([request, options]() {
        ScanResult result;
        try {
            result.report = inspectDataset(request, options);
        } catch (const std::exception& e) {
            result.error = QString::fromStdString(e.what());
        }
        return result;
    }));
}

void DataPage::onScanFinished()
{
    m_scanProgress->setVisible(false);
    m_cancelScan->setVisible(false);
    const ScanResult result = m_watcher.result();
    if (!result.error.isEmpty()) {
        m_report = ScanReport{};
        showReport();
        m_splitNote->setText(tr("<b>This folder cannot be used:</b> %1").arg(result.error.toHtmlEscaped()));
        Q_EMIT scanFailed(result.error);
        return;
    }
    if (result.report.cancelled) {
        m_splitNote->setText(tr("Scan cancelled. Open the folder again to scan it."));
        return;
    }
    m_report = result.report;
    m_scanned = true;
    showReport();
    Q_EMIT datasetScanned(m_report, m_dataset.builtin);
}

void DataPage::showDataset()
{
    if (!m_hasDataset) {
        m_summary->setText(tr("No dataset yet"));
        m_directory->setText(tr("Open a folder with one sub-folder of images per class, drop one on the window, "
                                "or try the Fashion-MNIST demo."));
        return;
    }
    m_summary->setText(m_dataset.builtin ? tr("%1 (built-in demo)").arg(QString::fromStdString(m_dataset.displayName))
                                         : QString::fromStdString(m_dataset.displayName));
    m_directory->setText(QString::fromStdString(m_dataset.directory.string()));
}

void DataPage::showReport()
{
    const auto& classes = m_report.classes;
    m_classTable->setRowCount(0);
    m_classTable->setRowCount(static_cast<int>(classes.size()));
    QVector<double> ticks, train, validation;
    QVector<QString> labels;
    qint64 totalTrain = 0, totalValidation = 0;
    for (int row = 0; row < static_cast<int>(classes.size()); ++row) {
        const ClassCount& c = classes[static_cast<std::size_t>(row)];
        auto* name = new QTableWidgetItem(QString::fromStdString(c.name));
        name->setData(Qt::UserRole, row);
        m_classTable->setItem(row, 0, name);
        m_classTable->setItem(row, 1, numberItem(c.train));
        m_classTable->setItem(row, 2, numberItem(c.validation));
        m_classTable->setItem(row, 3, numberItem(c.train + c.validation));
        ticks << row + 1;
        labels << QString::fromStdString(c.name);
        train << static_cast<double>(c.train);
        validation << static_cast<double>(c.validation);
        totalTrain += c.train;
        totalValidation += c.validation;
    }

    m_chart->clearPlottables();
    auto* trainBars = new QCPBars(m_chart->xAxis, m_chart->yAxis);
    auto* validationBars = new QCPBars(m_chart->xAxis, m_chart->yAxis);
    trainBars->setName(tr("training"));
    validationBars->setName(tr("validation"));
    trainBars->setBrush(QColor(31, 119, 180));
    trainBars->setPen(Qt::NoPen);
    validationBars->setBrush(QColor(255, 127, 14));
    validationBars->setPen(Qt::NoPen);
    trainBars->setWidth(0.7);
    validationBars->setWidth(0.7);
    validationBars->moveAbove(trainBars);
    trainBars->setData(ticks, train);
    validationBars->setData(ticks, validation);
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    ticker->addTicks(ticks, labels);
    m_chart->xAxis->setTicker(ticker);
    m_chart->xAxis->setTickLabelRotation(classes.size() > 6 ? 40 : 0);
    m_chart->xAxis->setRange(0.3, classes.size() + 0.7);
    double largest = 0;
    for (int i = 0; i < ticks.size(); ++i)
        largest = std::max(largest, train[i] + validation[i]);
    m_chart->yAxis->setRange(0, std::max(1.0, largest * 1.1));
    m_chart->replot();

    if (m_scanned) {
        QString sizes;
        if (m_report.maxWidth > 0)
            sizes = m_report.minWidth == m_report.maxWidth && m_report.minHeight == m_report.maxHeight
                        ? tr("all %1×%2 px").arg(m_report.maxWidth).arg(m_report.maxHeight)
                        : tr("%1×%2 to %3×%4 px, about %5×%6 on average")
                              .arg(m_report.minWidth).arg(m_report.minHeight).arg(m_report.maxWidth).arg(m_report.maxHeight)
                              .arg(m_report.meanWidth, 0, 'f', 0).arg(m_report.meanHeight, 0, 'f', 0);
        m_splitNote->setText(tr("%1 classes · %2 training and %3 validation images · %4. %5")
                                 .arg(classes.size()).arg(totalTrain).arg(totalValidation).arg(sizes,
                                      m_report.explicitSplits ? tr("The dataset has its own training and validation "
                                                                   "split, which is used as it is.")
                                                              : tr("The validation images are a share of each class, "
                                                                   "held out at random.")));
    }
    m_validationPercent->setEnabled(!m_report.explicitSplits);
    m_seed->setEnabled(!m_report.explicitSplits);
    fillProblems();
    if (!classes.empty())
        m_classTable->setCurrentCell(0, 0);
    else
        m_thumbnails->clear();
}

void DataPage::showClass(int label)
{
    const auto sources = facade::classSamples(m_report, label, kThumbnailsPerClass);
    std::vector<GridItem> items;
    items.reserve(sources.size());
    for (const auto& source : sources) {
        const QString path = QString::fromStdString(source);
        items.push_back({path, sourceCaption(path), path, false});
    }
    m_thumbnails->setItems(std::move(items));
    m_tabs->setTabText(0, label >= 0 && label < static_cast<int>(m_report.classes.size())
                              ? tr("Images: %1").arg(QString::fromStdString(m_report.classes[static_cast<std::size_t>(label)].name))
                              : tr("Images"));
}

void DataPage::fillProblems()
{
    m_problems->clear();
    int problems = 0;
    auto addGroup = [this](const QString& title, const QString& advice) {
        auto* group = new QTreeWidgetItem(m_problems, {title, advice});
        group->setToolTip(1, advice);
        QFont bold = group->font(0);
        bold.setBold(true);
        group->setFont(0, bold);
        return group;
    };
    auto addFile = [](QTreeWidgetItem* parent, const QString& path, const QString& detail) {
        auto* item = new QTreeWidgetItem(parent, {QFileInfo(path).fileName(), detail});
        item->setData(0, kPathRole, path);
        item->setToolTip(0, path);
        item->setToolTip(1, detail);
        return item;
    };
    const auto links = std::count_if(m_report.skipped.begin(), m_report.skipped.end(),
                                     [](const SkippedFile& s) { return s.link; });
    const auto badFiles = static_cast<std::ptrdiff_t>(m_report.skipped.size()) - links;
    if (badFiles > 0) {
        auto* group = addGroup(tr("Skipped files (%1)").arg(badFiles),
                               tr("These files are left out of training. Fix or remove them."));
        for (const auto& s : m_report.skipped) {
            if (!s.link)
                addFile(group, QString::fromStdString(s.path), QString::fromStdString(s.reason));
        }
    }
    if (links > 0) {
        auto* group = addGroup(tr("Links not followed (%1)").arg(links),
                               tr("Links that lead back into the dataset, around in a loop or nowhere: each image "
                                  "is counted once, in the class folder where it really is."));
        for (const auto& s : m_report.skipped) {
            if (s.link)
                addFile(group, QString::fromStdString(s.path), QString::fromStdString(s.reason));
        }
    }
    problems += static_cast<int>(m_report.skipped.size());
    if (!m_report.leakage.empty()) {
        auto* group = addGroup(tr("In both training and validation (%1)").arg(m_report.leakage.size()),
                               tr("Identical images on both sides make the validation accuracy look better than it is."));
        for (const auto& [trainPath, validationPath] : m_report.leakage) {
            addFile(group, QString::fromStdString(trainPath), tr("training copy"));
            addFile(group, QString::fromStdString(validationPath), tr("validation copy"));
        }
        problems += static_cast<int>(m_report.leakage.size());
    }
    if (!m_report.duplicateGroups.empty()) {
        auto* group = addGroup(tr("Identical files (%1 groups)").arg(m_report.duplicateGroups.size()),
                               tr("The same picture more than once; in different classes it is a labelling mistake."));
        for (const auto& files : m_report.duplicateGroups) {
            auto* set = new QTreeWidgetItem(group, {tr("%1 copies").arg(files.size()), QString()});
            for (const auto& path : files) {
                const QString p = QString::fromStdString(path);
                addFile(set, p, QFileInfo(p).dir().dirName());
            }
        }
        problems += static_cast<int>(m_report.duplicateGroups.size());
    }
    if (!m_report.emptyClasses.empty()) {
        auto* group = addGroup(tr("Empty classes (%1)").arg(m_report.emptyClasses.size()),
                               tr("These class folders hold no usable image."));
        for (const auto& name : m_report.emptyClasses)
            new QTreeWidgetItem(group, {QString::fromStdString(name), QString()});
        problems += static_cast<int>(m_report.emptyClasses.size());
    }
    if (m_report.imbalanceRatio >= 3.0) {
        addGroup(tr("Imbalanced classes"),
                 tr("The largest class has %1× the images of the smallest. Add images to the small classes, or "
                    "turn on class weights on the Model page.").arg(m_report.imbalanceRatio, 0, 'f', 1));
        ++problems;
    }
    if (problems == 0 && m_scanned)
        new QTreeWidgetItem(m_problems, {tr("No problems found"), tr("Every file is usable and unique.")});
    m_problems->expandToDepth(0);
    m_tabs->setTabText(1, problems ? tr("Problems (%1)").arg(problems) : tr("Problems"));
}

void DataPage::showPreview(const QString& path, const QString& detail)
{
    const QImage image = ImageGrid::decode(path, 256);
    m_preview->setPixmap(image.isNull() ? QPixmap() : QPixmap::fromImage(image));
    if (image.isNull())
        m_preview->setText(tr("(cannot be shown)"));
    // The whole reason too: the tree's column shows only its start.
    m_previewCaption->setText(detail.isEmpty() ? path : path + QStringLiteral("\n\n") + detail);
}

void DataPage::rememberRecent(const QString& folder)
{
    QSettings settings;
    QStringList recent = settings.value(kRecentKey).toStringList();
    recent.removeAll(folder);
    recent.prepend(folder);
    while (recent.size() > kRecentMax)
        recent.removeLast();
    settings.setValue(kRecentKey, recent);
    rebuildRecentMenu();
}

void DataPage::rebuildRecentMenu()
{
    QMenu* menu = m_recent->menu();
    menu->clear();
    const QStringList recent = QSettings().value(kRecentKey).toStringList();
    for (const QString& folder : recent)
        menu->addAction(folder, this, [this, folder] { selectDataset(folder); });
    m_recent->setEnabled(!recent.isEmpty());
}

} // namespace vitlab::ui
