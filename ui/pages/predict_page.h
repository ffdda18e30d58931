#pragma once

#include "core/facade/engine.h"

#include <QFutureWatcher>
#include <QHash>
#include <QWidget>

#include <atomic>
#include <memory>

class QComboBox;
class QLabel;
class QProgressBar;
class QPushButton;

namespace vitlab::ui {

class AttentionInspector;
class ImageGrid;
class ProbabilityBars;

/// Classifying new images with a trained run: drop images or folders on the window (or add them),
/// see the top-5 classes of the selected image and where the model looks in it, export every
/// prediction as CSV. The model loads and predicts on a worker thread.
class PredictPage : public QWidget {
    Q_OBJECT
public:
    explicit PredictPage(QWidget* parent = nullptr);
    ~PredictPage() override;

    /// Lists the runs that have weights and selects `runDirectory` when given.
    void refreshRuns(const QString& runDirectory = {});
    QString runDirectory() const;
    /// Adds image files and folders (searched at any depth) and classifies them.
    void addPaths(const QStringList& paths);
    void clearImages();
    /// Writes every prediction as CSV; false with the reason in `error`.
    bool exportCsv(const QString& path, QString* error = nullptr) const;
    bool isBusy() const { return m_watcher.isRunning(); }
    int predictionCount() const { return static_cast<int>(m_predictions.size()); }
    /// The prediction of a source, or nullptr while it has none.
    const Prediction* prediction(const QString& source) const;
    ImageGrid* images() const { return m_images; }
    ProbabilityBars* bars() const { return m_bars; }
    AttentionInspector* inspector() const { return m_inspector; }

Q_SIGNALS:
    void predictionsReady(int count);
    void failed(const QString& reason);

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    struct Job {
        std::shared_ptr<Predictor> predictor;
        std::vector<Prediction> predictions;
        QString error;
    };
    void startNext();
    void onJobFinished();
    void showSelected(const QString& source);
    void updateCaptions();

    QComboBox* m_runs = nullptr;
    QPushButton* m_addImages = nullptr;
    QPushButton* m_addFolder = nullptr;
    QPushButton* m_clear = nullptr;
    QPushButton* m_export = nullptr;
    QLabel* m_hint = nullptr;
    QProgressBar* m_progress = nullptr;
    ImageGrid* m_images = nullptr;
    QLabel* m_previewCaption = nullptr;
    AttentionInspector* m_inspector = nullptr;
    ProbabilityBars* m_bars = nullptr;

    QFutureWatcher<Job> m_watcher;
    std::shared_ptr<std::atomic<bool>> m_cancel;
    /// Loaded once per run, reused for every drop.
    std::shared_ptr<Predictor> m_predictor;
    QString m_predictorRun;
    QStringList m_queued;
    QStringList m_order;
    QHash<QString, Prediction> m_predictions;
};

} // namespace vitlab::ui
