#include "ui/widgets/confusion_matrix_view.h"

#include <QHelpEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QToolTip>

#include <algorithm>
#include <cmath>

namespace vitlab::ui {

namespace {
constexpr int kLeftMargin = 110;
constexpr int kTopMargin = 24;
constexpr int kBottomMargin = 90;
} // namespace

ConfusionMatrixView::ConfusionMatrixView(QWidget* parent)
    : QWidget(parent)
{
    setMouseTracking(true);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
    setToolTip(tr("Rows: the true class. Columns: what the model predicted. Click a cell to see its images."));
}

void ConfusionMatrixView::setMatrix(const QStringList& classNames, const std::vector<std::int64_t>& counts)
{
    m_names = classNames;
    const auto n = static_cast<std::size_t>(classNames.size());
    m_counts = counts.size() == n * n ? counts : std::vector<std::int64_t>(n * n, 0);
    m_rowTotals.assign(n, 0);
    m_max = 0;
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < n; ++c) {
            m_rowTotals[r] += m_counts[r * n + c];
            m_max = std::max(m_max, m_counts[r * n + c]);
        }
    m_selectedRow = m_selectedColumn = -1;
    update();
}

void ConfusionMatrixView::setNormalised(bool normalised)
{
    m_normalised = normalised;
    update();
}

std::int64_t ConfusionMatrixView::count(int trueClass, int predicted) const
{
    const int n = classCount();
    if (trueClass < 0 || predicted < 0 || trueClass >= n || predicted >= n)
        return 0;
    return m_counts[static_cast<std::size_t>(trueClass * n + predicted)];
}

std::int64_t ConfusionMatrixView::total() const
{
    std::int64_t sum = 0;
    for (auto v : m_counts)
        sum += v;
    return sum;
}

double ConfusionMatrixView::share(int trueClass, int predicted) const
{
    const auto rowTotal = m_rowTotals[static_cast<std::size_t>(trueClass)];
    return rowTotal > 0 ? static_cast<double>(count(trueClass, predicted)) / static_cast<double>(rowTotal) : 0.0;
}

QRect ConfusionMatrixView::gridRect() const
{
    const int n = std::max(1, classCount());
    const int side = std::max(n, std::min(width() - kLeftMargin - 8, height() - kTopMargin - kBottomMargin));
    const int cell = side / n;
    return {kLeftMargin, kTopMargin, cell * n, cell * n};
}

QPoint ConfusionMatrixView::cellCenter(int trueClass, int predicted) const
{
    const QRect grid = gridRect();
    const int cell = grid.width() / std::max(1, classCount());
    return {grid.left() + predicted * cell + cell / 2, grid.top() + trueClass * cell + cell / 2};
}

bool ConfusionMatrixView::cellAt(const QPoint& point, int* trueClass, int* predicted) const
{
    const QRect grid = gridRect();
    if (classCount() == 0 || !grid.contains(point))
        return false;
    const int cell = grid.width() / classCount();
    *predicted = std::min(classCount() - 1, (point.x() - grid.left()) / cell);
    *trueClass = std::min(classCount() - 1, (point.y() - grid.top()) / cell);
    return true;
}

QString ConfusionMatrixView::cellText(int trueClass, int predicted) const
{
    const auto n = count(trueClass, predicted);
    return tr("True %1, predicted %2: %3 image(s), %4% of %1")
        .arg(m_names.value(trueClass), m_names.value(predicted))
        .arg(n)
        .arg(100.0 * share(trueClass, predicted), 0, 'f', 1);
}

void ConfusionMatrixView::paintEvent(QPaintEvent*)
{
    QPainter painter(this);
    painter.fillRect(rect(), palette().base());
    const int n = classCount();
    if (n == 0) {
        painter.setPen(palette().color(QPalette::PlaceholderText));
        painter.drawText(rect(), Qt::AlignCenter | Qt::TextWordWrap,
                         tr("The confusion matrix appears here after an evaluation."));
        return;
    }
    const QRect grid = gridRect();
    const int cell = grid.width() / n;
    QFont small = font();
    small.setPointSizeF(std::clamp(cell / 3.2, 6.0, font().pointSizeF()));
    painter.setFont(small);
    for (int r = 0; r < n; ++r) {
        for (int c = 0; c < n; ++c) {
            const double value = m_normalised ? share(r, c)
                                               : (m_max > 0 ? static_cast<double>(count(r, c)) / static_cast<double>(m_max) : 0.0);
            // White to deep blue; errors (off the diagonal) in red so mistakes stand out.
            const QColor full = r == c ? QColor(8, 69, 148) : QColor(178, 24, 43);
            const double t = std::sqrt(std::clamp(value, 0.0, 1.0));
            const QColor colour(static_cast<int>(255 + (full.red() - 255) * t), static_cast<int>(255 + (full.green() - 255) * t),
                                static_cast<int>(255 + (full.blue() - 255) * t));
            const QRect box(grid.left() + c * cell, grid.top() + r * cell, cell, cell);
            painter.fillRect(box, colour);
            if (cell >= 18) {
                painter.setPen(t > 0.6 ? Qt::white : Qt::black);
                const QString text = m_normalised ? QString::number(100.0 * share(r, c), 'f', cell >= 40 ? 1 : 0)
                                                  : QString::number(count(r, c));
                painter.drawText(box, Qt::AlignCenter, text);
            }
        }
    }
    painter.setPen(QPen(palette().color(QPalette::Mid), 1));
    painter.drawRect(grid.adjusted(0, 0, -1, -1));
    if (m_selectedRow >= 0) {
        painter.setPen(QPen(QColor(255, 165, 0), 3));
        painter.drawRect(QRect(grid.left() + m_selectedColumn * cell, grid.top() + m_selectedRow * cell, cell, cell));
    }
    // Class names: true classes on the left, predictions below, rotated.
    painter.setPen(palette().color(QPalette::Text));
    const QFontMetrics metrics(small);
    for (int i = 0; i < n; ++i) {
        const QString name = metrics.elidedText(m_names[i], Qt::ElideRight, kLeftMargin - 8);
        painter.drawText(QRect(0, grid.top() + i * cell, kLeftMargin - 6, cell), Qt::AlignRight | Qt::AlignVCenter, name);
        painter.save();
        painter.translate(grid.left() + i * cell + cell / 2 + metrics.height() / 3, grid.bottom() + 6);
        painter.rotate(60);
        painter.drawText(0, 0, metrics.elidedText(m_names[i], Qt::ElideRight, kBottomMargin));
        painter.restore();
    }
    QFont bold = font();
    bold.setBold(true);
    painter.setFont(bold);
    painter.drawText(QRect(grid.left(), 0, grid.width(), kTopMargin), Qt::AlignCenter,
                     m_normalised ? tr("predicted class (% of each true class)") : tr("predicted class (images)"));
}

void ConfusionMatrixView::mouseMoveEvent(QMouseEvent* event)
{
    int r = 0, c = 0;
    if (cellAt(event->position().toPoint(), &r, &c))
        QToolTip::showText(event->globalPosition().toPoint(), cellText(r, c), this);
    else
        QToolTip::hideText();
}

bool ConfusionMatrixView::event(QEvent* event)
{
    if (event->type() == QEvent::ToolTip) {
        auto* help = static_cast<QHelpEvent*>(event);
        int r = 0, c = 0;
        if (cellAt(help->pos(), &r, &c)) {
            QToolTip::showText(help->globalPos(), cellText(r, c), this);
            return true;
        }
    }
    return QWidget::event(event);
}

void ConfusionMatrixView::mousePressEvent(QMouseEvent* event)
{
    int r = 0, c = 0;
    if (event->button() == Qt::LeftButton && cellAt(event->position().toPoint(), &r, &c)) {
        m_selectedRow = r;
        m_selectedColumn = c;
        update();
        Q_EMIT cellClicked(r, c);
    }
}

} // namespace vitlab::ui
