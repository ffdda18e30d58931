#include "ui/pages/inspect_page.h"

#include "ui/widgets/attention_inspector.h"
#include "ui/widgets/dropped_paths.h"
#include "ui/widgets/image_grid.h"
#include "ui/widgets/run_choice.h"

#include <QComboBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMimeData>
#include <QPushButton>
#include <QVBoxLayout>

namespace vitlab::ui {

namespace {

/// "item_03.png", or "fashion-mnist #t10k:12" for an image inside a dataset.
QString sourceLabel(const QString& source)
{
    const QString caption = sourceCaption(source);
    const QString container = QFileInfo(source.section(QLatin1Char('#'), 0, 0)).fileName();
    return container == caption ? caption : container + QStringLiteral(" #") + caption;
}

} // namespace

InspectPage::InspectPage(QWidget* parent)
    : QWidget(parent)
    , m_runs(new QComboBox(this))
    , m_open(new QPushButton(tr("Open image…"), this))
    , m_hint(new QLabel(this))
    , m_inspector(new AttentionInspector(this, Qt::Horizontal))
{
    setAcceptDrops(true);
    m_runs->setObjectName(QStringLiteral("inspectRunBox"));
    m_runs->setToolTip(tr("The trained run whose model is inspected (its best weights)"));
    m_runs->setMinimumContentsLength(18);
    m_runs->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_open->setToolTip(tr("Choose an image to see where the model looks in it"));
    m_hint->setObjectName(QStringLiteral("inspectHint"));
    m_hint->setWordWrap(true);

    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel(tr("Model:"), this));
    top->addWidget(m_runs, 1);
    top->addWidget(m_open);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(m_hint);
    layout->addWidget(m_inspector, 1);

    connect(m_open, &QPushButton::clicked, this, [this] {
        const QString file = QFileDialog::getOpenFileName(this, tr("Image to inspect"), QString(),
                                                          tr("Images (*.png *.jpg *.jpeg *.bmp *.webp *.tif *.tiff)"));
        if (!file.isEmpty())
            openImage(file);
    });
    connect(m_runs, &QComboBox::currentIndexChanged, this, [this] {
        m_inspector->setRun(runDirectory());
        updateHint();
    });
    connect(m_inspector, &AttentionInspector::failed, this, &InspectPage::failed);
    refreshRuns();
}

void InspectPage::refreshRuns(const QString& runDirectory)
{
    fillRunChoices(m_runs, runDirectory.isEmpty() ? this->runDirectory() : runDirectory);
    m_inspector->setRun(this->runDirectory());
    updateHint();
}

QString InspectPage::runDirectory() const
{
    return m_runs->currentData().toString();
}

void InspectPage::inspect(const QString& runDirectory, const QString& source)
{
    refreshRuns(runDirectory);
    m_inspector->setSource(source);
    updateHint();
}

void InspectPage::openImage(const QString& path)
{
    if (runDirectory().isEmpty()) {
        Q_EMIT failed(tr("There is no trained model to inspect yet. Train one on the Train page first."));
        return;
    }
    m_inspector->setSource(path);
    updateHint();
}

void InspectPage::updateHint()
{
    if (m_runs->count() == 0)
        m_hint->setText(tr("No trained model yet: train one on the Train page, then come back with an image."));
    else if (m_inspector->source().isEmpty())
        m_hint->setText(tr("Open or drop an image, or double-click any image on the Evaluate page."));
    else
        m_hint->setText(tr("<b>%1</b> · click the image to see what one patch attends to; click a head to show it alone.")
                            .arg(sourceLabel(m_inspector->source()).toHtmlEscaped()));
}

void InspectPage::dragEnterEvent(QDragEnterEvent* event)
{
    if (event->mimeData()->hasUrls())
        event->acceptProposedAction();
}

void InspectPage::dropEvent(QDropEvent* event)
{
    for (const QString& path : droppedLocalPaths(event->mimeData())) {
        if (QFileInfo(path).isFile()) {
            event->acceptProposedAction();
            openImage(path);
            return;
        }
    }
    Q_EMIT failed(tr("Drop one image file here to inspect it; folders go to the Data or Predict page."));
}

} // namespace vitlab::ui
