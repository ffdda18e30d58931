#pragma once

#include <QWidget>

class QComboBox;
class QLabel;
class QPushButton;

namespace vitlab::ui {

class AttentionInspector;

/// Where a trained model looks, on a whole page: pick a run, then open or drop an image, or
/// come here from any image of the Evaluate page.
class InspectPage : public QWidget {
    Q_OBJECT
public:
    explicit InspectPage(QWidget* parent = nullptr);

    /// Lists the runs that have weights and selects `runDirectory` when given.
    void refreshRuns(const QString& runDirectory = {});
    QString runDirectory() const;
    /// Explains `source` (an image file or a Dataset source) with the model of `runDirectory`.
    void inspect(const QString& runDirectory, const QString& source);
    /// Explains an image file with the selected run's model.
    void openImage(const QString& path);
    AttentionInspector* inspector() const { return m_inspector; }

Q_SIGNALS:
    void failed(const QString& reason);

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void updateHint();

    QComboBox* m_runs = nullptr;
    QPushButton* m_open = nullptr;
    QLabel* m_hint = nullptr;
    AttentionInspector* m_inspector = nullptr;
};

} // namespace vitlab::ui
