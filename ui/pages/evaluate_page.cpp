#include "ui/pages/evaluate_page.h"

#include "ui/widgets/confusion_matrix_view.h"
#include "ui/widgets/image_grid.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <numeric>

namespace vitlab::ui {

namespace {

constexpr std::size_t kCellImageLimit = 500;
constexpr std::size_t kHardestLimit = 300;

QTableWidgetItem* percentItem(double share)
{
    auto* item = new QTableWidgetItem(QStringLiteral("%1 %").arg(100.0 * share, 0, 'f', 1));
    item->setData(Qt::UserRole, share);
    item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return item;
}

} // namespace

EvaluatePage::EvaluatePage(QWidget* parent)
    : QWidget(parent)
    , m_title(new QLabel(this))
    , m_summary(new QLabel(this))
    , m_normalised(new QCheckBox(tr("Show shares of each true class"), this))
    , m_matrix(new ConfusionMatrixView(this))
    , m_classTable(new QTableWidget(0, 5, this))
    , m_tabs(new QTabWidget(this))
    , m_cellImages(new ImageGrid(this, 72))
    , m_hardest(new ImageGrid(this, 72))
    , m_inspect(new QPushButton(tr("Where does it look?"), this))
{
    m_summary->setObjectName(QStringLiteral("evaluationSummary"));
    m_normalised->setObjectName(QStringLiteral("normalisedBox"));
    m_matrix->setObjectName(QStringLiteral("confusionMatrix"));
    m_classTable->setObjectName(QStringLiteral("classMetrics"));
    m_cellImages->setObjectName(QStringLiteral("cellImages"));
    m_hardest->setObjectName(QStringLiteral("hardestImages"));

    QFont titleFont = m_title->font();
    titleFont.setBold(true);
    titleFont.setPointSizeF(titleFont.pointSizeF() * 1.2);
    m_title->setFont(titleFont);
    m_title->setText(tr("No evaluation yet"));
    m_summary->setText(tr("Train a model, or open a run on the Runs page: its evaluation on the validation images "
                          "appears here."));
    m_summary->setWordWrap(true);
    m_normalised->setToolTip(tr("Counts show how many images; shares show the recall of each row"));
    m_normalised->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_N));

    m_classTable->setHorizontalHeaderLabels({tr("Class"), tr("Precision"), tr("Recall"), tr("F1"), tr("Images")});
    m_classTable->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_classTable->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
    m_classTable->verticalHeader()->setVisible(false);
    m_classTable->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_classTable->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_classTable->horizontalHeaderItem(1)->setToolTip(tr("Of the images predicted as this class, the share that are"));
    m_classTable->horizontalHeaderItem(2)->setToolTip(tr("Of the images of this class, the share found"));
    m_classTable->horizontalHeaderItem(3)->setToolTip(tr("The harmonic mean of precision and recall"));

    m_cellImages->setToolTip(tr("Click a cell of the matrix to see its images here"));
    m_hardest->setToolTip(tr("Validation images the model finds hardest, highest loss first. Confident mistakes at "
                             "the top are often mislabelled images."));
    m_tabs->addTab(m_cellImages, tr("Images of the selected cell"));
    m_tabs->addTab(m_hardest, tr("Hardest examples"));
    m_inspect->setObjectName(QStringLiteral("inspectButton"));
    m_inspect->setToolTip(tr("See where the model looks in the selected image, on the Inspect page (or double-click an image)"));
    m_inspect->setEnabled(false);
    m_tabs->setCornerWidget(m_inspect, Qt::TopRightCorner);

    auto* matrixColumn = new QVBoxLayout;
    matrixColumn->addWidget(m_normalised);
    matrixColumn->addWidget(m_matrix, 1);
    auto* matrixPane = new QWidget(this);
    matrixPane->setLayout(matrixColumn);
    matrixColumn->setContentsMargins(0, 0, 0, 0);

    auto* top = new QSplitter(Qt::Horizontal, this);
    top->addWidget(matrixPane);
    top->addWidget(m_classTable);
    top->setStretchFactor(0, 3);
    top->setStretchFactor(1, 2);
    top->setSizes({560, 440});
    auto* body = new QSplitter(Qt::Vertical, this);
    body->addWidget(top);
    body->addWidget(m_tabs);
    body->setStretchFactor(0, 3);
    body->setStretchFactor(1, 2);

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(m_title);
    layout->addWidget(m_summary);
    layout->addWidget(body, 1);

    connect(m_normalised, &QCheckBox::toggled, m_matrix, &ConfusionMatrixView::setNormalised);
    connect(m_matrix, &ConfusionMatrixView::cellClicked, this, &EvaluatePage::showCell);
    for (ImageGrid* grid : {m_cellImages, m_hardest}) {
        connect(grid, &ImageGrid::sourceActivated, this, &EvaluatePage::inspect);
        connect(grid, &ImageGrid::currentSourceChanged, this, &EvaluatePage::updateInspectButton);
    }
    connect(m_tabs, &QTabWidget::currentChanged, this, &EvaluatePage::updateInspectButton);
    connect(m_inspect, &QPushButton::clicked, this, [this] { inspect(visibleGrid()->currentSource()); });
}

void EvaluatePage::updateInspectButton()
{
    m_inspect->setEnabled(!m_runDirectory.isEmpty() && !visibleGrid()->currentSource().isEmpty());
}

ImageGrid* EvaluatePage::visibleGrid() const
{
    return m_tabs->currentWidget() == m_hardest ? m_hardest : m_cellImages;
}

void EvaluatePage::inspect(const QString& source)
{
    if (source.isEmpty() || m_runDirectory.isEmpty())
        return;
    Q_EMIT inspectRequested(m_runDirectory, source);
}

void EvaluatePage::showEvaluation(std::shared_ptr<const EvaluationResult> evaluation, const QString& title,
                                  const QString& runDirectory)
{
    if (!evaluation)
        return;
    m_evaluation = std::move(evaluation);
    m_runDirectory = runDirectory;
    const EvaluationResult& e = *m_evaluation;
    m_title->setText(title);
    m_summary->setText(tr("<b>Top-1 %1%</b> · top-5 %2% · loss %3 · macro F1 %4 · %5 validation images")
                           .arg(100.0 * e.top1, 0, 'f', 2)
                           .arg(100.0 * e.top5, 0, 'f', 2)
                           .arg(e.loss, 0, 'f', 4)
                           .arg(e.macroF1, 0, 'f', 3)
                           .arg(e.count));
    QStringList names;
    for (const auto& name : e.classNames)
        names << QString::fromStdString(name);
    m_matrix->setMatrix(names, e.confusion);

    m_classTable->setRowCount(static_cast<int>(e.perClass.size()));
    for (int row = 0; row < static_cast<int>(e.perClass.size()); ++row) {
        const ClassMetrics& m = e.perClass[static_cast<std::size_t>(row)];
        m_classTable->setItem(row, 0, new QTableWidgetItem(QString::fromStdString(m.name)));
        m_classTable->setItem(row, 1, percentItem(m.precision));
        m_classTable->setItem(row, 2, percentItem(m.recall));
        m_classTable->setItem(row, 3, percentItem(m.f1));
        auto* support = new QTableWidgetItem;
        support->setData(Qt::DisplayRole, static_cast<qint64>(m.support));
        m_classTable->setItem(row, 4, support);
    }
    m_cellImages->clear();
    m_tabs->setTabText(0, tr("Images of the selected cell"));
    fillHardest();
}

void EvaluatePage::showCell(int trueClass, int predicted)
{
    if (!m_evaluation)
        return;
    const EvaluationResult& e = *m_evaluation;
    std::vector<const SampleResult*> hits;
    for (const SampleResult& s : e.samples)
        if (s.label == trueClass && s.predicted == predicted)
            hits.push_back(&s);
    // Within a cell the most confident first: for mistakes those are the likeliest mislabels.
    std::sort(hits.begin(), hits.end(), [](auto* a, auto* b) { return a->confidence > b->confidence; });
    std::vector<GridItem> items;
    for (std::size_t i = 0; i < hits.size() && i < kCellImageLimit; ++i) {
        const SampleResult& s = *hits[i];
        items.push_back({QString::fromStdString(s.source), QStringLiteral("%1 %").arg(100.0 * s.confidence, 0, 'f', 0),
                         tr("%1\ntrue: %2, predicted: %3 (%4 %)")
                             .arg(QString::fromStdString(s.source), QString::fromStdString(e.classNames[s.label]),
                                  QString::fromStdString(e.classNames[s.predicted]))
                             .arg(100.0 * s.confidence, 0, 'f', 1),
                         s.label != s.predicted});
    }
    m_cellImages->setItems(std::move(items));
    const auto name = [&](int i) { return QString::fromStdString(e.classNames[static_cast<std::size_t>(i)]); };
    m_tabs->setTabText(0, tr("%1 predicted as %2 (%3)").arg(name(trueClass), name(predicted)).arg(hits.size()));
    m_tabs->setCurrentIndex(0);
}

void EvaluatePage::fillHardest()
{
    const EvaluationResult& e = *m_evaluation;
    std::vector<std::size_t> order(e.samples.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    const std::size_t keep = std::min(kHardestLimit, order.size());
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                      [&](std::size_t a, std::size_t b) { return e.samples[a].loss > e.samples[b].loss; });
    std::vector<GridItem> items;
    for (std::size_t i = 0; i < keep; ++i) {
        const SampleResult& s = e.samples[order[i]];
        const QString truth = QString::fromStdString(e.classNames[static_cast<std::size_t>(s.label)]);
        const QString guess = QString::fromStdString(e.classNames[static_cast<std::size_t>(s.predicted)]);
        items.push_back({QString::fromStdString(s.source),
                         s.label == s.predicted ? truth : QStringLiteral("%1 → %2").arg(truth, guess),
                         tr("%1\nlabelled %2, predicted %3 (%4 %), loss %5")
                             .arg(sourceCaption(QString::fromStdString(s.source)), truth, guess)
                             .arg(100.0 * s.confidence, 0, 'f', 1)
                             .arg(s.loss, 0, 'f', 3),
                         s.label != s.predicted});
    }
    m_hardest->setItems(std::move(items));
}

} // namespace vitlab::ui
