#include "ui/widgets/attention_overlay.h"

#include <QMouseEvent>
#include <QPainter>

namespace vitlab::ui {

QImage blendHeatmap(const QImage& image, const QImage& heatmap, double opacity)
{
    if (image.isNull())
        return {};
    QImage result = image.convertToFormat(QImage::Format_RGB32);
    if (heatmap.isNull() || opacity <= 0.0)
        return result;
    QPainter painter(&result);
    painter.setOpacity(std::min(opacity, 1.0));
    painter.setRenderHint(QPainter::SmoothPixmapTransform);
    painter.drawImage(result.rect(), heatmap);
    return result;
}

AttentionOverlay::AttentionOverlay(QWidget* parent)
    : QWidget(parent)
{
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
    setCursor(Qt::CrossCursor);
    setToolTip(tr("Click a patch to see what it attends to (method: attention)"));
}

void AttentionOverlay::setImages(const QImage& image, const QImage& heatmap, QSize grid)
{
    m_image = image;
    m_heatmap = heatmap;
    m_grid = grid;
    update();
}

void AttentionOverlay::clear()
{
    m_image = {};
    m_heatmap = {};
    m_query.reset();
    update();
}

void AttentionOverlay::setOpacity(double opacity)
{
    m_opacity = std::clamp(opacity, 0.0, 1.0);
    update();
}

void AttentionOverlay::setQuery(std::optional<QPointF> fractions)
{
    m_query = fractions;
    update();
}

void AttentionOverlay::setPlaceholder(const QString& text)
{
    m_placeholder = text;
    update();
}

QImage AttentionOverlay::blended() const
{
    return blendHeatmap(m_image, m_heatmap, m_opacity);
}

QRect AttentionOverlay::imageRect() const
{
    if (m_image.isNull())
        return {};
    const QSize fitted = m_image.size().scaled(size(), Qt::KeepAspectRatio);
    return QRect(QPoint((width() - fitted.width()) / 2, (height() - fitted.height()) / 2), fitted);
}

void AttentionOverlay::paintEvent(QPaintEvent*)
{
    QPainter painter(this);
    if (m_image.isNull()) {
        painter.setPen(palette().color(QPalette::PlaceholderText));
        painter.drawText(rect().adjusted(8, 8, -8, -8), Qt::AlignCenter | Qt::TextWordWrap, m_placeholder);
        return;
    }
    const QRect target = imageRect();
    // Small images (28 px) are enlarged many times: keep their pixels sharp, smooth the map only.
    const bool enlarged = target.width() >= 2 * m_image.width();
    painter.setRenderHint(QPainter::SmoothPixmapTransform, !enlarged);
    painter.drawImage(target, m_image);
    if (!m_heatmap.isNull() && m_opacity > 0.0) {
        painter.setRenderHint(QPainter::SmoothPixmapTransform, true);
        painter.setOpacity(m_opacity);
        painter.drawImage(target, m_heatmap);
        painter.setOpacity(1.0);
    }
    if (m_query && m_grid.isValid()) {
        const double cellWidth = double(target.width()) / m_grid.width();
        const double cellHeight = double(target.height()) / m_grid.height();
        const int column = std::clamp(int(m_query->x() * m_grid.width()), 0, m_grid.width() - 1);
        const int row = std::clamp(int(m_query->y() * m_grid.height()), 0, m_grid.height() - 1);
        const QRectF cell(target.left() + column * cellWidth, target.top() + row * cellHeight, cellWidth, cellHeight);
        painter.setRenderHint(QPainter::Antialiasing);
        painter.setPen(QPen(Qt::white, 3));
        painter.drawRect(cell);
        painter.setPen(QPen(Qt::black, 1));
        painter.drawRect(cell);
    }
}

void AttentionOverlay::mousePressEvent(QMouseEvent* event)
{
    const QRect target = imageRect();
    if (event->button() != Qt::LeftButton || !target.contains(event->position().toPoint())) {
        QWidget::mousePressEvent(event);
        return;
    }
    const QPointF local = event->position() - QPointF(target.topLeft());
    Q_EMIT pointClicked(QPointF(std::clamp(local.x() / target.width(), 0.0, 0.999999),
                                std::clamp(local.y() / target.height(), 0.0, 0.999999)));
}

} // namespace vitlab::ui
