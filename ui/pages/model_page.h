#pragma once

#include "core/facade/engine.h"
#include "ui/pretrained_download.h"

#include <QFutureWatcher>
#include <QWidget>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace vitlab::ui {

/// The model and how to train it: family and size from the registry, image size, the key
/// hyper-parameters (with defaults that suit the dataset), where to start from (random weights,
/// timm's pretrained ones from the Hub, or a local file) with freezing, device and precision.
/// Parameters and FLOPs follow every change.
class ModelPage : public QWidget {
    Q_OBJECT
public:
    explicit ModelPage(const RuntimeInfo& runtime, QWidget* parent = nullptr);

    /// The model and optimisation fields of a TrainConfig; the data fields are left as they are.
    TrainConfig trainConfig(TrainConfig base = {}) const;
    /// Proposes settings for a freshly scanned dataset.
    void setDataset(const ScanReport& report, bool builtin);
    /// Picks a registry model by name; false when there is none.
    bool setModel(const QString& name);
    /// Uses a JSON model config file ({"family": ..., timm's arguments}) instead of a registry model.
    void setCustomModelFile(const QString& path);
    void setImageSize(int pixels);
    /// Trains this many epochs (and no time budget).
    void setEpochs(int epochs);
    void setBatchSize(int batch);
    QString modelName() const;
    /// "" when the chosen model can be built at the chosen size, else why not.
    QString modelError() const { return m_error; }
    std::int64_t parameterCount() const { return m_cost.parameters; }
    std::int64_t macsPerImage() const { return m_cost.macs; }
    QLabel* costLabel() const { return m_cost_label; }
    QComboBox* deviceBox() const { return m_device; }
    /// How many processes of this machine train the run (1: this one alone).
    int processes() const;

    /// Picks the start: "" (random), "hub" (the model's default tag), "hub:NAME.TAG", or a file.
    bool setStartFrom(const QString& weights);
    /// False while the chosen Hub weights are not in the cache (training must wait for them).
    bool pretrainedReady() const;
    /// Downloads the chosen Hub weights, with progress and Cancel on this page; ends with
    /// pretrainedDownloadEnded. False when there is nothing to download or one is running.
    bool downloadPretrained();
    bool isDownloading() const { return m_download.isRunning(); }

Q_SIGNALS:
    /// Any setting changed (for the Train page's plan line).
    void settingsChanged();
    /// A download of pretrained weights finished (`ok`), failed or was cancelled.
    void pretrainedDownloadEnded(bool ok);

private:
    void fillSizes();
    void updateCost();
    void applySuggestion();
    void showSuggestion();
    void fillStartFrom();
    void updateWeightsState();
    void probeHubForSuggestion();
    /// The processes' limit follows the device: one per GPU, or one per core.
    void updateProcessLimit();

    RuntimeInfo m_runtime;
    std::vector<facade::ModelInfo> m_models;
    QComboBox* m_family = nullptr;
    QComboBox* m_size = nullptr;
    QLabel* m_description = nullptr;
    QSpinBox* m_imageSize = nullptr;
    QLabel* m_cost_label = nullptr;
    QLabel* m_suggestion = nullptr;
    QPushButton* m_useSuggestion = nullptr;
    QSpinBox* m_epochs = nullptr;
    QSpinBox* m_budget = nullptr;
    QSpinBox* m_batch = nullptr;
    QDoubleSpinBox* m_learningRate = nullptr;
    QDoubleSpinBox* m_weightDecay = nullptr;
    QDoubleSpinBox* m_warmup = nullptr;
    QDoubleSpinBox* m_labelSmoothing = nullptr;
    QDoubleSpinBox* m_dropPath = nullptr;
    QCheckBox* m_flip = nullptr;
    QCheckBox* m_classWeights = nullptr;
    QComboBox* m_startFrom = nullptr;
    QLineEdit* m_weights = nullptr;
    QPushButton* m_browse = nullptr;
    QLabel* m_weightsStatus = nullptr;
    QPushButton* m_downloadButton = nullptr;
    QProgressBar* m_downloadProgress = nullptr;
    QPushButton* m_cancelDownload = nullptr;
    PretrainedDownload m_download;
    std::vector<facade::PretrainedChoice> m_choices;
    /// Pretrained weights were asked for: a model switch picks that model's default tag.
    bool m_wantsPretrained = false;
    QComboBox* m_freeze = nullptr;
    QSpinBox* m_freezeBlocks = nullptr;
    QComboBox* m_device = nullptr;
    QComboBox* m_precision = nullptr;
    QCheckBox* m_tf32 = nullptr;
    QSpinBox* m_processes = nullptr;
    facade::SuggestedSettings m_suggested;
    bool m_hasSuggestion = false;
    /// The suggestion once the Hub has answered for pretrained weights, or has not.
    facade::SuggestedSettings m_suggestedIfReachable;
    facade::SuggestedSettings m_suggestedIfUnreachable;
    QFutureWatcher<QString> m_probe;
    std::int64_t m_classes = 10;
    QString m_customFile;
    facade::ModelCost m_cost;
    QString m_error;
};

} // namespace vitlab::ui
