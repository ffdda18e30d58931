#pragma once

#include "core/facade/engine.h"

#include <QWidget>

#include <memory>

class QCheckBox;
class QLabel;
class QTabWidget;
class QTableWidget;

namespace vitlab::ui {

class ConfusionMatrixView;
class ImageGrid;

/// An evaluation, explained: the confusion matrix as a heat map, per-class precision, recall and
/// F1, top-1 and top-5, the images behind any cell, and the hardest examples (highest loss), where
/// mislabelled images turn up first.
class EvaluatePage : public QWidget {
    Q_OBJECT
public:
    explicit EvaluatePage(QWidget* parent = nullptr);

    void showEvaluation(std::shared_ptr<const EvaluationResult> evaluation, const QString& title);
    bool hasEvaluation() const { return m_evaluation != nullptr; }
    /// Shows the images of true class `trueClass` predicted as `predicted`.
    void showCell(int trueClass, int predicted);

    ConfusionMatrixView* matrix() const { return m_matrix; }
    QTableWidget* classTable() const { return m_classTable; }
    ImageGrid* cellImages() const { return m_cellImages; }
    ImageGrid* hardestImages() const { return m_hardest; }
    QLabel* summary() const { return m_summary; }

private:
    void fillHardest();

    std::shared_ptr<const EvaluationResult> m_evaluation;
    QLabel* m_title = nullptr;
    QLabel* m_summary = nullptr;
    QCheckBox* m_normalised = nullptr;
    ConfusionMatrixView* m_matrix = nullptr;
    QTableWidget* m_classTable = nullptr;
    QTabWidget* m_tabs = nullptr;
    ImageGrid* m_cellImages = nullptr;
    ImageGrid* m_hardest = nullptr;
};

} // namespace vitlab::ui
