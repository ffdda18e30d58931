#include "ui/pages/runs_page.h"

#include "ui/plot.h"

#include <QComboBox>
#include <QDateTime>
#include <QDesktopServices>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTreeWidget>
#include <QUrl>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <cmath>

namespace vitlab::ui {

namespace {

constexpr int kDirectoryRole = Qt::UserRole + 1;
constexpr int kResumableRole = Qt::UserRole + 2;

const QColor kRunColours[] = {{31, 119, 180}, {214, 39, 40}, {44, 160, 44}, {148, 103, 189},
                              {255, 127, 14}, {140, 86, 75}, {227, 119, 194}, {23, 190, 207}};

QString stateText(const std::string& state)
{
    if (state == "time_limit")
        return RunsPage::tr("time limit");
    return QString::fromStdString(state);
}

} // namespace

StoredRun readStoredRun(const QString& directory, bool withEvaluation)
{
    StoredRun run;
    run.directory = directory;
    run.name = QFileInfo(directory).fileName();
    try {
        const RunFolder folder = RunFolder::open(directory.toStdString());
        run.status = folder.readStatus();
        run.metrics = folder.readMetrics();
        if (withEvaluation) {
            if (auto evaluation = folder.readEvaluation())
                run.evaluation = std::make_shared<const EvaluationResult>(std::move(*evaluation));
        }
    } catch (const std::exception& e) {
        run.error = QString::fromStdString(e.what());
    }
    return run;
}

RunsPage::RunsPage(QWidget* parent)
    : QWidget(parent)
    , m_list(new QTreeWidget(this))
    , m_refresh(new QPushButton(tr("Refresh"), this))
    , m_open(new QPushButton(tr("Open"), this))
    , m_resume(new QPushButton(tr("Resume training"), this))
    , m_compare(new QPushButton(tr("Compare selected"), this))
    , m_metric(new QComboBox(this))
    , m_plot(new QCustomPlot(this))
    , m_folder(new QLabel(this))
{
    qRegisterMetaType<vitlab::ui::StoredRun>();
    m_list->setObjectName(QStringLiteral("runList"));
    m_open->setObjectName(QStringLiteral("openRunButton"));
    m_resume->setObjectName(QStringLiteral("resumeRunButton"));
    m_compare->setObjectName(QStringLiteral("compareRunsButton"));
    m_plot->setObjectName(QStringLiteral("comparePlot"));
    m_list->setHeaderLabels({tr("Run"), tr("Model"), tr("Data"), tr("State"), tr("Epoch"), tr("Best top-1"), tr("Changed")});
    m_list->setRootIsDecorated(false);
    m_list->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_list->header()->setSectionResizeMode(0, QHeaderView::Stretch);
    m_list->setToolTip(tr("Double-click a run to open it; select several (Ctrl+click) to compare them"));
    m_open->setToolTip(tr("Show the run's curves on the Train page, its evaluation on the Evaluate page, and use it "
                          "on the Predict page"));
    m_resume->setToolTip(tr("Continue a stopped or interrupted run from its last checkpoint"));
    m_compare->setToolTip(tr("Overlay the selected runs' curves below"));
    m_metric->addItem(tr("Validation top-1 (%)"), QStringLiteral("top1"));
    m_metric->addItem(tr("Validation loss"), QStringLiteral("val_loss"));
    m_metric->addItem(tr("Training loss per step"), QStringLiteral("step_loss"));
    m_folder->setText(tr("Runs are stored in %1").arg(QString::fromStdString(defaultRunsDirectory().string())));
    m_folder->setTextInteractionFlags(Qt::TextSelectableByMouse);

    m_plot->legend->setVisible(true);
    m_plot->legend->setFont(QFont(font().family(), 8));
    m_plot->xAxis->setLabel(tr("epoch"));
    m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_plot->setMinimumHeight(200);

    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_refresh);
    buttons->addWidget(m_open);
    buttons->addWidget(m_resume);
    buttons->addWidget(m_compare);
    buttons->addWidget(m_metric);
    buttons->addStretch();

    auto* splitter = new QSplitter(Qt::Vertical, this);
    splitter->addWidget(m_list);
    splitter->addWidget(m_plot);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(m_folder);
    layout->addLayout(buttons);
    layout->addWidget(splitter, 1);

    connect(m_refresh, &QPushButton::clicked, this, &RunsPage::refresh);
    connect(m_open, &QPushButton::clicked, this, [this] {
        const QStringList selected = selectedDirectories();
        if (!selected.isEmpty())
            openRun(selected.front());
    });
    connect(m_list, &QTreeWidget::itemDoubleClicked, this,
            [this](QTreeWidgetItem* item) { openRun(item->data(0, kDirectoryRole).toString()); });
    connect(m_resume, &QPushButton::clicked, this, [this] {
        const QStringList selected = selectedDirectories();
        if (!selected.isEmpty())
            Q_EMIT resumeRequested(selected.front());
    });
    connect(m_compare, &QPushButton::clicked, this, [this] { compare(selectedDirectories()); });
    connect(m_metric, &QComboBox::currentIndexChanged, this, &RunsPage::drawComparison);
    connect(m_list, &QTreeWidget::itemSelectionChanged, this, &RunsPage::updateButtons);
    connect(&m_openWatcher, &QFutureWatcher<StoredRun>::finished, this, [this] {
        const StoredRun run = m_openWatcher.result();
        if (!run.error.isEmpty())
            Q_EMIT failed(tr("Cannot open the run %1: %2").arg(run.name, run.error));
        else
            Q_EMIT runOpened(run);
    });
    connect(&m_compareWatcher, &QFutureWatcher<std::vector<StoredRun>>::finished, this, [this] {
        m_compared = m_compareWatcher.result();
        drawComparison();
    });
    refresh();
}

RunsPage::~RunsPage()
{
    m_openWatcher.waitForFinished();
    m_compareWatcher.waitForFinished();
}

void RunsPage::refresh()
{
    const QStringList selected = selectedDirectories();
    m_list->clear();
    std::vector<RunSummary> runs;
    try {
        runs = listRuns(defaultRunsDirectory());
    } catch (const std::exception&) {
        // No runs folder yet.
    }
    for (const RunSummary& run : runs) {
        const QString directory = QString::fromStdString(run.directory.string());
        auto* item = new QTreeWidgetItem(m_list);
        item->setText(0, QString::fromStdString(run.name));
        item->setText(1, QString::fromStdString(run.model));
        item->setText(2, QFileInfo(QString::fromStdString(run.data)).fileName());
        item->setToolTip(2, QString::fromStdString(run.data));
        item->setText(3, stateText(run.status.state));
        item->setToolTip(3, QString::fromStdString(run.status.message));
        item->setText(4, QStringLiteral("%1 / %2").arg(run.status.epoch).arg(run.status.epochs));
        item->setText(5, run.status.bestTop1 > 0 ? QStringLiteral("%1 %").arg(100.0 * run.status.bestTop1, 0, 'f', 2) : QString());
        item->setText(6, QDateTime::fromSecsSinceEpoch(run.modified).toString(QStringLiteral("yyyy-MM-dd HH:mm")));
        item->setData(0, kDirectoryRole, directory);
        const bool resumable = run.status.state != "finished" && run.status.state != "running"
                               && std::filesystem::exists(RunFolder(run.directory).resumeStatePath());
        item->setData(0, kResumableRole, resumable);
        if (selected.contains(directory))
            item->setSelected(true);
    }
    for (int c = 1; c < m_list->columnCount(); ++c)
        m_list->resizeColumnToContents(c);
    updateButtons();
}

int RunsPage::runCount() const
{
    return m_list->topLevelItemCount();
}

QStringList RunsPage::selectedDirectories() const
{
    QStringList directories;
    for (QTreeWidgetItem* item : m_list->selectedItems())
        directories << item->data(0, kDirectoryRole).toString();
    return directories;
}

void RunsPage::setTrainingActive(bool active)
{
    m_trainingActive = active;
    updateButtons();
}

void RunsPage::updateButtons()
{
    const auto selected = m_list->selectedItems();
    m_open->setEnabled(selected.size() == 1);
    m_resume->setEnabled(selected.size() == 1 && !m_trainingActive && selected.front()->data(0, kResumableRole).toBool());
    m_compare->setEnabled(!selected.isEmpty());
}

void RunsPage::openRun(const QString& directory)
{
    for (int i = 0; i < m_list->topLevelItemCount(); ++i) {
        QTreeWidgetItem* item = m_list->topLevelItem(i);
        item->setSelected(item->data(0, kDirectoryRole).toString() == directory);
    }
    m_openWatcher.waitForFinished();
    m_openWatcher.setFuture(QtConcurrent::run([directory] { return readStoredRun(directory, true); }));
}

void RunsPage::compare(const QStringList& directories)
{
    m_compareWatcher.waitForFinished();
    m_compareWatcher.setFuture(QtConcurrent::run([directories] {
        std::vector<StoredRun> runs;
        for (const QString& directory : directories)
            runs.push_back(readStoredRun(directory, false));
        return runs;
    }));
}

void RunsPage::drawComparison()
{
    m_plot->clearGraphs();
    const QString metric = m_metric->currentData().toString();
    const bool perStep = metric == QLatin1String("step_loss");
    m_plot->xAxis->setLabel(perStep ? tr("step") : tr("epoch"));
    m_plot->yAxis->setLabel(m_metric->currentText());
    int index = 0;
    for (const StoredRun& run : m_compared) {
        if (!run.error.isEmpty())
            continue;
        QCPGraph* graph = m_plot->addGraph();
        graph->setName(run.name);
        const QColor colour = kRunColours[index++ % std::size(kRunColours)];
        graph->setPen(QPen(colour, perStep ? 1.2 : 2.0));
        if (!perStep)
            graph->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, colour, colour, 5));
        graph->setAdaptiveSampling(true);
        double ema = 0.0, weight = 0.0;
        for (const MetricsRow& row : run.metrics) {
            if (perStep && row.kind == "step" && std::isfinite(row.loss)) {
                ema = 0.95 * ema + 0.05 * row.loss; // smoothed, or the curves drown each other
                weight = 0.95 * weight + 0.05;
                graph->addData(static_cast<double>(row.step), ema / weight);
            } else if (!perStep && row.kind == "epoch") {
                graph->addData(row.epoch, metric == QLatin1String("top1") ? 100.0 * row.validationTop1 : row.validationLoss);
            }
        }
    }
    m_plot->rescaleAxes();
    if (!perStep) {
        m_plot->xAxis->setRange(0.5, std::max(2.0, m_plot->xAxis->range().upper) + 0.5);
        QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
        ticker->setTickStep(1.0);
        ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
        m_plot->xAxis->setTicker(ticker);
    } else {
        m_plot->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    }
    if (metric == QLatin1String("top1"))
        m_plot->yAxis->setRange(0, 100);
    else
        m_plot->yAxis->setRange(0, m_plot->yAxis->range().upper * 1.1);
    m_plot->replot();
}

} // namespace vitlab::ui
