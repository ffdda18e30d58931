#pragma once

#include <QStringList>
#include <QWidget>

#include <cstdint>
#include <vector>

namespace vitlab::ui {

/// A confusion matrix as a heat map: rows are true classes, columns predictions. Counts or
/// row-normalised shares; the value of any cell on hover; a click selects a cell.
class ConfusionMatrixView : public QWidget {
    Q_OBJECT
public:
    explicit ConfusionMatrixView(QWidget* parent = nullptr);

    void setMatrix(const QStringList& classNames, const std::vector<std::int64_t>& counts);
    void setNormalised(bool normalised);
    bool isNormalised() const { return m_normalised; }
    int classCount() const { return static_cast<int>(m_names.size()); }
    std::int64_t count(int trueClass, int predicted) const;
    std::int64_t total() const;
    /// The centre of a cell in widget coordinates (for tests and keyboard focus).
    QPoint cellCenter(int trueClass, int predicted) const;
    /// What hovering a cell shows.
    QString cellText(int trueClass, int predicted) const;

    QSize sizeHint() const override { return {480, 420}; }
    QSize minimumSizeHint() const override { return {200, 180}; }

Q_SIGNALS:
    void cellClicked(int trueClass, int predicted);

protected:
    void paintEvent(QPaintEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mousePressEvent(QMouseEvent* event) override;
    bool event(QEvent* event) override;

private:
    QRect gridRect() const;
    bool cellAt(const QPoint& point, int* trueClass, int* predicted) const;
    double share(int trueClass, int predicted) const;

    QStringList m_names;
    std::vector<std::int64_t> m_counts;
    std::vector<std::int64_t> m_rowTotals;
    std::int64_t m_max = 0;
    bool m_normalised = false;
    int m_selectedRow = -1;
    int m_selectedColumn = -1;
};

} // namespace vitlab::ui
