#include "ui/widgets/attention_inspector.h"

#include "ui/widgets/attention_overlay.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSlider>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>

namespace vitlab::ui {

namespace {

constexpr int kHeadTileSize = 64;

QString methodLabel(const std::string& method)
{
    if (method == "rollout")
        return AttentionInspector::tr("Attention rollout");
    if (method == "attention")
        return AttentionInspector::tr("Attention of one block");
    if (method == "relevance")
        return AttentionInspector::tr("Relevance (gradients)");
    if (method == "gradcam")
        return AttentionInspector::tr("Grad-CAM (last stage)");
    return QString::fromStdString(method);
}

QString tokenLabel(const std::string& token)
{
    if (token == "dist")
        return AttentionInspector::tr("Distillation token");
    if (token == "mean")
        return AttentionInspector::tr("Mean of both tokens");
    return AttentionInspector::tr("Class token");
}

/// Selects the item whose data is `value`, if there is one.
void selectData(QComboBox* box, const QVariant& value)
{
    const int index = box->findData(value);
    if (index >= 0)
        box->setCurrentIndex(index);
}

} // namespace

QImage toQImage(const facade::RgbImage& image)
{
    if (image.width <= 0 || image.height <= 0
        || image.pixels.size() != static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height) * 3)
        return {};
    return QImage(image.pixels.data(), image.width, image.height, 3 * image.width, QImage::Format_RGB888).copy();
}

AttentionInspector::AttentionInspector(QWidget* parent, Qt::Orientation orientation)
    : QWidget(parent)
    , m_overlay(new AttentionOverlay(this))
    , m_method(new QComboBox(this))
    , m_layer(new QComboBox(this))
    , m_head(new QComboBox(this))
    , m_fusion(new QComboBox(this))
    , m_discard(new QDoubleSpinBox(this))
    , m_token(new QComboBox(this))
    , m_class(new QComboBox(this))
    , m_inner(new QCheckBox(tr("Inner (pixel) attention"), this))
    , m_opacity(new QSlider(Qt::Horizontal, this))
    , m_query(new QLabel(this))
    , m_clearQuery(new QPushButton(tr("Reset"), this))
    , m_save(new QPushButton(tr("Save PNG…"), this))
    , m_status(new QLabel(this))
    , m_headGrid(new QListWidget(this))
{
    m_overlay->setObjectName(QStringLiteral("attentionOverlay"));
    m_method->setObjectName(QStringLiteral("attentionMethod"));
    m_layer->setObjectName(QStringLiteral("attentionLayer"));
    m_head->setObjectName(QStringLiteral("attentionHead"));
    m_headGrid->setObjectName(QStringLiteral("attentionHeads"));
    m_status->setObjectName(QStringLiteral("attentionStatus"));
    m_overlay->setPlaceholder(tr("Select an image to see where the model looks."));
    // Long entries ("Relevance (gradients)") must not set the page's minimum width.
    for (QComboBox* box : {m_method, m_layer, m_head, m_fusion, m_token, m_class}) {
        box->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
        box->setMinimumContentsLength(6);
    }

    m_method->setToolTip(tr("Rollout follows attention through every block; one block shows its raw attention; "
                            "relevance weighs attention by the gradient of the chosen class; Grad-CAM uses the "
                            "last stage's features (Swin, ResNet+ViT)"));
    m_layer->setToolTip(tr("The block whose attention is shown, and whose heads fill the grid below"));
    m_head->setToolTip(tr("One head, or all heads fused"));
    for (const char* fusion : {"mean", "max", "min"})
        m_fusion->addItem(QString::fromLatin1(fusion), QString::fromLatin1(fusion));
    m_fusion->setToolTip(tr("How the heads are fused: their mean, maximum or minimum"));
    m_discard->setRange(0.0, 0.99);
    m_discard->setSingleStep(0.05);
    m_discard->setDecimals(2);
    m_discard->setToolTip(tr("Rollout: the share of the weakest attention links dropped in every block"));
    m_token->setToolTip(tr("Distilled DeiT: the row of the class token, of the distillation token, or their mean"));
    m_class->setToolTip(tr("The class whose evidence is shown"));
    m_inner->setToolTip(tr("TNT: the attention among the pixels within each patch"));
    m_opacity->setRange(0, 100);
    m_opacity->setValue(50);
    m_opacity->setToolTip(tr("Opacity of the heatmap over the image"));
    m_query->setToolTip(tr("What the attention map is computed for: the class token, or the patch you clicked"));
    m_clearQuery->setToolTip(tr("Back to the attention of the class token"));
    m_save->setToolTip(tr("Save the overlay as shown, at the size the model saw the image"));
    m_status->setWordWrap(true);
    // Texts that change with every click must not widen the page.
    m_query->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_status->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_headGrid->setViewMode(QListView::IconMode);
    m_headGrid->setIconSize({kHeadTileSize, kHeadTileSize});
    m_headGrid->setResizeMode(QListView::Adjust);
    m_headGrid->setMovement(QListView::Static);
    m_headGrid->setUniformItemSizes(true);
    m_headGrid->setToolTip(tr("Every head of the chosen block; click one to show it above"));

    auto* layerAndHead = new QHBoxLayout;
    layerAndHead->addWidget(m_layer, 1);
    layerAndHead->addWidget(m_head, 1);
    auto* fusionRow = new QHBoxLayout;
    fusionRow->addWidget(m_fusion, 1);
    fusionRow->addWidget(new QLabel(tr("discard"), this));
    fusionRow->addWidget(m_discard);
    auto* queryRow = new QHBoxLayout;
    queryRow->addWidget(m_query, 1);
    queryRow->addWidget(m_clearQuery);
    auto* opacityRow = new QHBoxLayout;
    opacityRow->addWidget(m_opacity, 1);
    opacityRow->addWidget(m_save);
    const std::vector<std::pair<QString, QLayoutItem*>> fields = {
        {tr("Method:"), new QWidgetItem(m_method)}, {tr("Block, head:"), layerAndHead},
        {tr("Heads fused by:"), fusionRow},         {tr("Token:"), new QWidgetItem(m_token)},
        {tr("Class:"), new QWidgetItem(m_class)},   {QString(), new QWidgetItem(m_inner)},
        {tr("Query:"), queryRow},                   {tr("Opacity:"), opacityRow},
    };
    // Beside the image one pair per row; under it two, to stay short beside the Predict page's bars.
    const bool vertical = orientation == Qt::Vertical;
    const int pairsPerRow = vertical ? 2 : 1;
    auto* controls = new QGridLayout;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const int row = int(i) / pairsPerRow;
        const int column = 2 * (int(i) % pairsPerRow);
        if (!fields[i].first.isEmpty())
            controls->addWidget(new QLabel(fields[i].first, this), row, column);
        controls->addItem(fields[i].second, row, column + 1);
        controls->setColumnStretch(column + 1, 1);
    }

    if (vertical) {
        // One row of heads without captions (their tooltips name them), scrolled sideways when a
        // block has many: the Predict page's bars need the height.
        m_headGrid->setFlow(QListView::LeftToRight);
        m_headGrid->setWrapping(false);
        m_headGrid->setFixedHeight(kHeadTileSize + 30);
        m_showHeadCaptions = false;
        auto* layout = new QVBoxLayout(this);
        layout->setContentsMargins(0, 0, 0, 0);
        layout->addWidget(m_overlay, 1);
        layout->addWidget(m_status);
        layout->addLayout(controls);
        layout->addWidget(m_headGrid);
    } else {
        auto* side = new QVBoxLayout;
        side->addWidget(m_status);
        side->addLayout(controls);
        side->addWidget(new QLabel(tr("Every head of the block:"), this));
        side->addWidget(m_headGrid, 1);
        auto* layout = new QHBoxLayout(this);
        layout->setContentsMargins(0, 0, 0, 0);
        layout->addWidget(m_overlay, 3);
        layout->addLayout(side, 2);
    }

    const auto changed = [this] {
        updateControls();
        requestUpdate();
    };
    connect(m_method, &QComboBox::currentIndexChanged, this, changed);
    connect(m_layer, &QComboBox::currentIndexChanged, this, [this, changed] {
        // Swin's stages have different head counts: a new block starts from the fused heads.
        QSignalBlocker block(m_head);
        m_head->setCurrentIndex(0);
        changed();
    });
    connect(m_head, &QComboBox::currentIndexChanged, this, changed);
    connect(m_fusion, &QComboBox::currentIndexChanged, this, changed);
    connect(m_discard, &QDoubleSpinBox::valueChanged, this, changed);
    connect(m_token, &QComboBox::currentIndexChanged, this, changed);
    connect(m_class, &QComboBox::currentIndexChanged, this, changed);
    connect(m_inner, &QCheckBox::toggled, this, [this, changed] {
        // Inner attention has its own grid (the pixels of a patch): drop a query on the outer one.
        m_queryPoint.reset();
        m_overlay->setQuery(std::nullopt);
        resetLayerAndHeadBoxes(0, 0);
        changed();
    });
    connect(m_opacity, &QSlider::valueChanged, this, [this](int value) {
        m_overlay->setOpacity(value / 100.0);
        fillHeadGrid();
    });
    connect(m_overlay, &AttentionOverlay::pointClicked, this, [this](QPointF fractions) { setQuery(fractions); });
    connect(m_clearQuery, &QPushButton::clicked, this, [this] { setQuery(std::nullopt); });
    connect(m_headGrid, &QListWidget::itemClicked, this, [this](QListWidgetItem* item) { selectHead(item->data(Qt::UserRole).toInt()); });
    connect(m_save, &QPushButton::clicked, this, [this] {
        const QString suggested = QFileInfo(m_source.section(QLatin1Char('#'), 0, 0)).completeBaseName()
                                  + QStringLiteral("-") + m_method->currentData().toString() + QStringLiteral(".png");
        const QString file = QFileDialog::getSaveFileName(this, tr("Save the overlay"), suggested, tr("PNG (*.png)"));
        QString error;
        if (!file.isEmpty() && !saveOverlay(file, &error))
            Q_EMIT failed(error);
    });
    connect(&m_watcher, &QFutureWatcher<Job>::finished, this, &AttentionInspector::onJobFinished);
    updateControls();
}

AttentionInspector::~AttentionInspector()
{
    // A running job holds everything it needs; its result is dropped with the watcher.
    m_watcher.disconnect(this);
}

void AttentionInspector::setRun(const QString& runDirectory)
{
    if (runDirectory == m_run)
        return;
    m_run = runDirectory;
    forgetView();
    requestUpdate();
}

void AttentionInspector::forgetView()
{
    m_view.reset();
    m_heads.reset();
    m_headHeatmaps.clear();
    m_image = {};
    m_overlay->clear();
    m_headGrid->clear();
}

void AttentionInspector::setSource(const QString& source)
{
    if (source == m_source)
        return;
    m_source = source;
    requestUpdate();
}

void AttentionInspector::clear()
{
    m_source.clear();
    forgetView();
    m_status->clear();
    updateControls();
}

void AttentionInspector::setQuery(std::optional<QPointF> fractions)
{
    m_queryPoint = fractions;
    m_overlay->setQuery(fractions);
    if (fractions && m_method->currentData().toString() != QLatin1String("attention")) {
        QSignalBlocker block(m_method);
        selectData(m_method, QStringLiteral("attention"));
    }
    updateControls();
    requestUpdate();
}

void AttentionInspector::selectHead(int head)
{
    {
        QSignalBlocker blockMethod(m_method);
        QSignalBlocker blockHead(m_head);
        selectData(m_method, QStringLiteral("attention"));
        selectData(m_head, head);
    }
    updateControls();
    requestUpdate();
}

facade::AttentionRequest AttentionInspector::request() const
{
    facade::AttentionRequest request;
    if (m_method->count() > 0)
        request.method = m_method->currentData().toString().toStdString();
    request.layer = m_layer->count() > 0 ? m_layer->currentData().toInt() : -1;
    request.head = m_head->count() > 0 && request.method == "attention" ? m_head->currentData().toInt() : -1;
    request.fusion = m_fusion->currentData().toString().toStdString();
    request.discardRatio = m_discard->value();
    request.token = m_token->count() > 0 ? m_token->currentData().toString().toStdString() : "class";
    request.classIndex = m_class->count() > 0 ? m_class->currentData().toInt() : -1;
    request.innerAttention = m_inner->isChecked();
    if (m_queryPoint) {
        request.hasQuery = true;
        request.queryX = m_queryPoint->x();
        request.queryY = m_queryPoint->y();
    }
    return request;
}

bool AttentionInspector::saveOverlay(const QString& path, QString* error) const
{
    if (!m_view) {
        if (error)
            *error = tr("There is no attention map to save yet.");
        return false;
    }
    try {
        facade::Inspector::saveOverlay(*m_view, m_overlay->opacity(), path.toStdString());
        return true;
    } catch (const std::exception& e) {
        if (error)
            *error = tr("Could not save the overlay: %1").arg(QString::fromStdString(e.what()));
        return false;
    }
}

void AttentionInspector::requestUpdate()
{
    if (m_run.isEmpty() || m_source.isEmpty())
        return;
    if (m_watcher.isRunning()) {
        m_dirty = true;
        return;
    }
    startJob();
}

void AttentionInspector::startJob()
{
    m_dirty = false;
    Job job;
    job.run = m_run;
    job.source = m_source;
    job.request = request();
    if (m_inspectorRun == m_run)
        job.inspector = m_inspector;
    m_status->setText(job.inspector ? tr("Explaining…") : tr("Loading the model…"));
    // The job owns its inputs and never touches the widget: it may outlive it.
    m_watcher.setFuture(QtConcurrent::run([job = std::move(job)]() mutable {
        try {
            if (!job.inspector)
                job.inspector = std::make_shared<facade::Inspector>(job.run.toStdString());
            const auto methods = job.inspector->methods();
            if (std::find(methods.begin(), methods.end(), job.request.method) == methods.end())
                job.request.method = methods.front();
            if (job.request.innerAttention && !job.inspector->hasInnerAttention())
                job.request.innerAttention = false;
            auto inspection = job.inspector->inspect(job.source.toStdString(), job.request);
            job.view = std::move(inspection.view);
            job.heads = std::move(inspection.heads);
        } catch (const std::exception& e) {
            job.error = QString::fromStdString(e.what());
        }
        return job;
    }));
}

void AttentionInspector::onJobFinished()
{
    Job job = m_watcher.result();
    if (job.inspector && job.run == m_run && job.inspector != m_inspector) {
        m_inspector = job.inspector;
        m_inspectorRun = job.run;
        adoptInspector(*m_inspector, job.request);
    }
    const bool current = job.run == m_run && job.source == m_source;
    if (current && !job.error.isEmpty()) {
        if (!job.inspector) {
            m_inspector.reset();
            m_inspectorRun.clear();
        }
        forgetView();
        m_overlay->setPlaceholder(tr("Cannot explain this image: %1").arg(job.error));
        m_status->setText(tr("Cannot explain this image: %1").arg(job.error));
        Q_EMIT viewFailed(job.error);
    } else if (current && job.view) {
        m_view = std::move(job.view);
        m_heads = std::move(job.heads);
        showView();
        Q_EMIT viewReady();
    }
    if (m_dirty || !current)
        requestUpdate();
}

void AttentionInspector::adoptInspector(const facade::Inspector& inspector, const facade::AttentionRequest& used)
{
    const QSignalBlocker blockMethod(m_method);
    const QSignalBlocker blockToken(m_token);
    const QSignalBlocker blockClass(m_class);
    const QSignalBlocker blockInner(m_inner);
    m_method->clear();
    for (const auto& method : inspector.methods())
        m_method->addItem(methodLabel(method), QString::fromStdString(method));
    selectData(m_method, QString::fromStdString(used.method));
    m_token->clear();
    for (const auto& token : inspector.queryTokens())
        m_token->addItem(tokenLabel(token), QString::fromStdString(token));
    m_class->clear();
    m_class->addItem(tr("The predicted class"), -1);
    for (std::size_t i = 0; i < inspector.classNames().size(); ++i)
        m_class->addItem(QString::fromStdString(inspector.classNames()[i]), static_cast<int>(i));
    m_inner->setVisible(inspector.hasInnerAttention());
    if (!inspector.hasInnerAttention())
        m_inner->setChecked(false);
    resetLayerAndHeadBoxes(0, 0);
    updateControls();
}

void AttentionInspector::resetLayerAndHeadBoxes(int layers, int heads)
{
    const QSignalBlocker blockLayer(m_layer);
    const QSignalBlocker blockHead(m_head);
    if (m_layer->count() != layers + 1) {
        const QVariant keep = m_layer->currentData();
        m_layer->clear();
        m_layer->addItem(tr("Last block"), -1);
        for (int i = 0; i < layers; ++i)
            m_layer->addItem(tr("Block %1").arg(i + 1), i);
        selectData(m_layer, keep.isValid() ? keep : QVariant(-1));
    }
    if (m_head->count() != heads + 1) {
        const QVariant keep = m_head->currentData();
        m_head->clear();
        m_head->addItem(tr("All heads"), -1);
        for (int i = 0; i < heads; ++i)
            m_head->addItem(tr("Head %1").arg(i + 1), i);
        selectData(m_head, keep.isValid() ? keep : QVariant(-1));
    }
}

void AttentionInspector::showView()
{
    const facade::AttentionView& view = *m_view;
    resetLayerAndHeadBoxes(view.layers, view.heads);
    m_image = toQImage(view.image);
    // Converted once per map: the opacity slider only blends again.
    m_headHeatmaps.clear();
    if (m_heads) {
        for (const auto& heatmap : m_heads->heatmaps)
            m_headHeatmaps.push_back(toQImage(heatmap));
    }
    m_overlay->setImages(m_image, toQImage(view.heatmap), QSize(view.gridWidth, view.gridHeight));
    m_overlay->setQuery(m_queryPoint);
    const auto& names = m_inspector->classNames();
    QString text;
    if (!view.probabilities.empty()) {
        const auto top = std::max_element(view.probabilities.begin(), view.probabilities.end()) - view.probabilities.begin();
        const auto name = [&](std::ptrdiff_t i) {
            return i >= 0 && static_cast<std::size_t>(i) < names.size() ? QString::fromStdString(names[static_cast<std::size_t>(i)])
                                                                         : QString::number(i);
        };
        text = tr("Predicted <b>%1</b> (%2 %)").arg(name(top).toHtmlEscaped()).arg(100.0 * view.probabilities[top], 0, 'f', 1);
        const std::string method = m_method->currentData().toString().toStdString();
        if ((method == "relevance" || method == "gradcam") && view.classIndex != top)
            text += tr(" · evidence for <b>%1</b> (%2 %)")
                        .arg(name(view.classIndex).toHtmlEscaped())
                        .arg(100.0 * view.probabilities[static_cast<std::size_t>(view.classIndex)], 0, 'f', 1);
    }
    text += tr(" · %1×%2 map").arg(view.gridWidth).arg(view.gridHeight);
    m_status->setText(text);
    fillHeadGrid();
    updateControls();
}

void AttentionInspector::fillHeadGrid()
{
    m_headGrid->clear();
    if (m_image.isNull())
        return;
    const double opacity = std::max(m_overlay->opacity(), 0.35);
    for (int head = 0; head < int(m_headHeatmaps.size()); ++head) {
        const QImage tile = blendHeatmap(m_image, m_headHeatmaps[std::size_t(head)], opacity)
                                .scaled(kHeadTileSize, kHeadTileSize, Qt::KeepAspectRatio, Qt::SmoothTransformation);
        const QString name = tr("Head %1").arg(head + 1);
        auto* item = new QListWidgetItem(QIcon(QPixmap::fromImage(tile)), m_showHeadCaptions ? name : QString(), m_headGrid);
        item->setToolTip(name);
        item->setData(Qt::UserRole, head);
    }
    const int chosen = m_head->currentData().toInt();
    if (m_method->currentData().toString() == QLatin1String("attention") && chosen >= 0 && chosen < m_headGrid->count())
        m_headGrid->setCurrentRow(chosen);
}

void AttentionInspector::updateControls()
{
    const QString method = m_method->currentData().toString();
    const bool attention = method == QLatin1String("attention");
    const bool rollout = method == QLatin1String("rollout");
    const bool classBased = method == QLatin1String("relevance") || method == QLatin1String("gradcam");
    m_head->setEnabled(attention);
    m_fusion->setEnabled(rollout || (attention && m_head->currentData().toInt() < 0));
    m_discard->setEnabled(rollout);
    m_token->setEnabled(m_token->count() > 1 && (rollout || (attention && !m_queryPoint)));
    m_class->setEnabled(classBased);
    m_clearQuery->setEnabled(m_queryPoint.has_value());
    m_save->setEnabled(m_view.has_value());
    if (m_queryPoint && m_view)
        m_query->setText(tr("patch row %1, column %2")
                             .arg(std::clamp(int(m_queryPoint->y() * m_view->gridHeight), 0, m_view->gridHeight - 1) + 1)
                             .arg(std::clamp(int(m_queryPoint->x() * m_view->gridWidth), 0, m_view->gridWidth - 1) + 1));
    else if (m_queryPoint)
        m_query->setText(tr("the clicked patch"));
    else
        m_query->setText(tr("class token (click a patch)"));
}

} // namespace vitlab::ui
