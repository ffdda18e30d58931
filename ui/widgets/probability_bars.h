#pragma once

#include <QVector>
#include <QWidget>

namespace vitlab::ui {

/// The top classes of one prediction as labelled horizontal bars, best first.
class ProbabilityBars : public QWidget {
    Q_OBJECT
public:
    struct Bar {
        QString name;
        double probability = 0.0;
    };

    explicit ProbabilityBars(QWidget* parent = nullptr);
    void setBars(const QVector<Bar>& bars, const QString& note = {});
    const QVector<Bar>& bars() const { return m_bars; }
    static constexpr int kRowHeight = 25;
    QSize sizeHint() const override { return {320, 5 * kRowHeight + 8}; }

protected:
    void paintEvent(QPaintEvent* event) override;

private:
    QVector<Bar> m_bars;
    QString m_note;
};

} // namespace vitlab::ui
