#pragma once

#include "core/facade/inspector.h"

#include <QFutureWatcher>
#include <QPointF>
#include <QWidget>

#include <memory>
#include <optional>
#include <vector>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QListWidget;
class QPushButton;
class QSlider;

namespace vitlab::ui {

class AttentionOverlay;

/// Where a trained model looks in one image: the map of the chosen method (rollout, attention of a
/// block and head, gradient relevance, Grad-CAM) blended over the image at an adjustable opacity, a
/// grid with every head of the chosen block, and click-a-patch to see what that patch attends to.
/// The model loads and explains on a worker thread; changes made meanwhile are merged into one
/// follow-up request, so the window never waits on the engine.
class AttentionInspector : public QWidget {
    Q_OBJECT
public:
    /// Vertical: the image above its controls and a strip of heads (a page's side pane).
    /// Horizontal: the image beside its controls and a wrapping grid of heads (a whole page).
    explicit AttentionInspector(QWidget* parent = nullptr, Qt::Orientation orientation = Qt::Vertical);
    ~AttentionInspector() override;

    /// The run whose best weights explain; loaded with the next image.
    void setRun(const QString& runDirectory);
    QString run() const { return m_run; }
    /// An image file or a Dataset source ("<folder>#t10k:12").
    void setSource(const QString& source);
    QString source() const { return m_source; }
    /// No image: the map, the heads and the status go.
    void clear();
    /// The attention of the patch at these fractions of the image (switches to the attention
    /// method); no value goes back to the class token.
    void setQuery(std::optional<QPointF> fractions);
    /// Shows head `head` (0-based) of the chosen block, as a click on the grid of heads does.
    void selectHead(int head);

    facade::AttentionRequest request() const;
    bool isBusy() const { return m_watcher.isRunning(); }
    /// The map on show, or nullptr before the first one.
    const facade::AttentionView* view() const { return m_view ? &*m_view : nullptr; }
    const facade::HeadMaps* headMaps() const { return m_heads ? &*m_heads : nullptr; }
    /// Writes the overlay as shown (at the image's size) as a PNG; false with the reason in `error`.
    bool saveOverlay(const QString& path, QString* error = nullptr) const;

    QComboBox* methodBox() const { return m_method; }
    QComboBox* layerBox() const { return m_layer; }
    QComboBox* headBox() const { return m_head; }
    QComboBox* fusionBox() const { return m_fusion; }
    QComboBox* tokenBox() const { return m_token; }
    QComboBox* classBox() const { return m_class; }
    QDoubleSpinBox* discardBox() const { return m_discard; }
    QCheckBox* innerBox() const { return m_inner; }
    QSlider* opacitySlider() const { return m_opacity; }
    AttentionOverlay* overlay() const { return m_overlay; }
    QListWidget* headGrid() const { return m_headGrid; }
    QLabel* status() const { return m_status; }

Q_SIGNALS:
    /// A new map is on show.
    void viewReady();
    /// The image could not be explained; the reason is also on show.
    void viewFailed(const QString& reason);
    /// Saving the overlay failed.
    void failed(const QString& reason);

private:
    struct Job {
        std::shared_ptr<facade::Inspector> inspector;
        QString run;
        QString source;
        facade::AttentionRequest request;
        std::optional<facade::AttentionView> view;
        std::optional<facade::HeadMaps> heads;
        QString error;
    };
    void requestUpdate();
    void startJob();
    void onJobFinished();
    void adoptInspector(const facade::Inspector& inspector, const facade::AttentionRequest& used);
    void showView();
    /// No map on show: the view, the heads, the overlay and the grid go.
    void forgetView();
    void fillHeadGrid();
    void updateControls();
    void resetLayerAndHeadBoxes(int layers, int heads);

    AttentionOverlay* m_overlay = nullptr;
    QComboBox* m_method = nullptr;
    QComboBox* m_layer = nullptr;
    QComboBox* m_head = nullptr;
    QComboBox* m_fusion = nullptr;
    QDoubleSpinBox* m_discard = nullptr;
    QComboBox* m_token = nullptr;
    QComboBox* m_class = nullptr;
    QCheckBox* m_inner = nullptr;
    QSlider* m_opacity = nullptr;
    QLabel* m_query = nullptr;
    QPushButton* m_clearQuery = nullptr;
    QPushButton* m_save = nullptr;
    QLabel* m_status = nullptr;
    QListWidget* m_headGrid = nullptr;

    QString m_run;
    QString m_source;
    std::optional<QPointF> m_queryPoint;
    std::shared_ptr<facade::Inspector> m_inspector;
    QString m_inspectorRun;
    std::optional<facade::AttentionView> m_view;
    std::optional<facade::HeadMaps> m_heads;
    QImage m_image;
    std::vector<QImage> m_headHeatmaps;
    bool m_showHeadCaptions = true;
    /// Controls changed while a job ran: one more job when it ends.
    bool m_dirty = false;
    QFutureWatcher<Job> m_watcher;
};

/// An RGB image of the facade as a QImage (a copy).
QImage toQImage(const facade::RgbImage& image);

} // namespace vitlab::ui
