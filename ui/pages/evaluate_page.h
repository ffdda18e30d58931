#pragma once

#include "core/facade/engine.h"

#include <QWidget>

#include <memory>

class QCheckBox;
class QLabel;
class QPushButton;
class QTabWidget;
class QTableWidget;

namespace vitlab::ui {

class ConfusionMatrixView;
class ImageGrid;

/// An evaluation, explained: the confusion matrix as a heat map, per-class precision, recall and
/// F1, top-1 and top-5, the images behind any cell, and the hardest examples (highest loss), where
/// mislabelled images turn up first. Any of those images can be inspected.
class EvaluatePage : public QWidget {
    Q_OBJECT
public:
    explicit EvaluatePage(QWidget* parent = nullptr);

    /// `runDirectory` is the run that was evaluated: its model explains the images on request.
    void showEvaluation(std::shared_ptr<const EvaluationResult> evaluation, const QString& title,
                        const QString& runDirectory);
    bool hasEvaluation() const { return m_evaluation != nullptr; }
    /// Shows the images of true class `trueClass` predicted as `predicted`.
    void showCell(int trueClass, int predicted);
    /// Asks for the attention inspector on a validation image of the evaluated run.
    void inspect(const QString& source);

    ConfusionMatrixView* matrix() const { return m_matrix; }
    QTableWidget* classTable() const { return m_classTable; }
    ImageGrid* cellImages() const { return m_cellImages; }
    ImageGrid* hardestImages() const { return m_hardest; }
    QLabel* summary() const { return m_summary; }
    QPushButton* inspectButton() const { return m_inspect; }

Q_SIGNALS:
    /// `source` (a file or a Dataset source) should be inspected with the model of `runDirectory`.
    void inspectRequested(const QString& runDirectory, const QString& source);

private:
    void fillHardest();
    ImageGrid* visibleGrid() const;
    void updateInspectButton();

    std::shared_ptr<const EvaluationResult> m_evaluation;
    QString m_runDirectory;
    QLabel* m_title = nullptr;
    QLabel* m_summary = nullptr;
    QCheckBox* m_normalised = nullptr;
    ConfusionMatrixView* m_matrix = nullptr;
    QTableWidget* m_classTable = nullptr;
    QTabWidget* m_tabs = nullptr;
    ImageGrid* m_cellImages = nullptr;
    ImageGrid* m_hardest = nullptr;
    QPushButton* m_inspect = nullptr;
};

} // namespace vitlab::ui
