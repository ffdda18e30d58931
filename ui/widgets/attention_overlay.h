#pragma once

#include <QImage>
#include <QPointF>
#include <QWidget>

#include <optional>

namespace vitlab::ui {

/// The image a model saw with an attention heatmap blended over it, scaled to fit. A click picks
/// the patch under the pointer as the query of the attention map; the chosen patch is outlined.
class AttentionOverlay : public QWidget {
    Q_OBJECT
public:
    explicit AttentionOverlay(QWidget* parent = nullptr);

    /// `grid` is the token grid (rows, columns) the map lives on; it sizes the outline of a patch.
    void setImages(const QImage& image, const QImage& heatmap, QSize grid);
    void clear();
    /// 0: the image alone, 1: the heatmap alone.
    void setOpacity(double opacity);
    double opacity() const { return m_opacity; }
    /// The outlined query point, as fractions of the image's width and height.
    void setQuery(std::optional<QPointF> fractions);
    void setPlaceholder(const QString& text);
    /// The blend as shown, at the image's own size.
    QImage blended() const;
    /// Where the image is drawn within the widget.
    QRect imageRect() const;

    QSize sizeHint() const override { return {320, 320}; }
    QSize minimumSizeHint() const override { return {96, 96}; }

Q_SIGNALS:
    /// A click on the image, as fractions of its width and height.
    void pointClicked(QPointF fractions);

protected:
    void paintEvent(QPaintEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;

private:
    QImage m_image;
    QImage m_heatmap;
    QSize m_grid;
    double m_opacity = 0.5;
    std::optional<QPointF> m_query;
    QString m_placeholder;
};

/// `image` with `heatmap` blended over it at `opacity`, at the image's size.
QImage blendHeatmap(const QImage& image, const QImage& heatmap, double opacity);

} // namespace vitlab::ui
