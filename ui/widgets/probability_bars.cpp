#include "ui/widgets/probability_bars.h"

#include <QPainter>

namespace vitlab::ui {

ProbabilityBars::ProbabilityBars(QWidget* parent)
    : QWidget(parent)
{
    setMinimumHeight(5 * kRowHeight + 8);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
}

void ProbabilityBars::setBars(const QVector<Bar>& bars, const QString& note)
{
    m_bars = bars;
    m_note = note;
    update();
}

void ProbabilityBars::paintEvent(QPaintEvent*)
{
    QPainter painter(this);
    if (m_bars.isEmpty()) {
        painter.setPen(palette().color(QPalette::PlaceholderText));
        painter.drawText(rect(), Qt::AlignCenter | Qt::TextWordWrap,
                         m_note.isEmpty() ? tr("Select an image to see its top-5 classes.") : m_note);
        return;
    }
    const int rowHeight = kRowHeight;
    const int nameWidth = std::min(160, width() / 3);
    const int valueWidth = 64;
    const int barWidth = std::max(10, width() - nameWidth - valueWidth - 16);
    painter.setRenderHint(QPainter::Antialiasing);
    for (int i = 0; i < m_bars.size(); ++i) {
        const int y = 4 + i * rowHeight;
        const Bar& bar = m_bars[i];
        QFont f = font();
        f.setBold(i == 0);
        painter.setFont(f);
        painter.setPen(palette().color(QPalette::Text));
        painter.drawText(QRect(0, y, nameWidth - 6, rowHeight - 6), Qt::AlignRight | Qt::AlignVCenter,
                         painter.fontMetrics().elidedText(bar.name, Qt::ElideRight, nameWidth - 6));
        const QRect track(nameWidth, y + 3, barWidth, rowHeight - 12);
        painter.setPen(Qt::NoPen);
        painter.setBrush(palette().color(QPalette::AlternateBase));
        painter.drawRoundedRect(track, 3, 3);
        painter.setBrush(i == 0 ? QColor(31, 119, 180) : QColor(120, 160, 200));
        painter.drawRoundedRect(QRect(track.left(), track.top(), static_cast<int>(track.width() * bar.probability), track.height()), 3, 3);
        painter.setPen(palette().color(QPalette::Text));
        painter.drawText(QRect(nameWidth + barWidth + 6, y, valueWidth, rowHeight - 6), Qt::AlignLeft | Qt::AlignVCenter,
                         QStringLiteral("%1 %").arg(100.0 * bar.probability, 0, 'f', bar.probability < 0.1 ? 2 : 1));
    }
}

} // namespace vitlab::ui
