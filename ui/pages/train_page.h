#pragma once

#include <QWidget>

class QCustomPlot;
class QLabel;

namespace vitlab::ui {

/// Training: controls and live curves. Until a run starts, the loss chart stands empty with a
/// hint of what to do.
class TrainPage : public QWidget {
    Q_OBJECT
public:
    explicit TrainPage(QWidget* parent = nullptr);

    QCustomPlot* lossPlot() const { return m_lossPlot; }

private:
    QLabel* m_hint = nullptr;
    QCustomPlot* m_lossPlot = nullptr;
};

} // namespace vitlab::ui
