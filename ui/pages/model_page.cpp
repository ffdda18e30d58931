#include "ui/pages/model_page.h"

#include <cmath>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

namespace vitlab::ui {

namespace {

const QString kCustomFamily = QStringLiteral("Custom (JSON config)");
/// The fields start from the engine's own training defaults.
const TrainConfig kDefaults;

QString countText(double value)
{
    if (value >= 1e9)
        return QStringLiteral("%1 G").arg(value / 1e9, 0, 'f', 2);
    if (value >= 1e6)
        return QStringLiteral("%1 M").arg(value / 1e6, 0, 'f', 2);
    if (value >= 1e3)
        return QStringLiteral("%1 k").arg(value / 1e3, 0, 'f', 1);
    return QString::number(value, 'f', 0);
}

/// "23 MB", "6.3 MB": whole megabytes from 10 on, as people say file sizes.
QString sizeText(qint64 bytes)
{
    return QLocale().formattedDataSize(bytes, bytes >= 10'000'000 ? 0 : 1, QLocale::DataSizeSIFormat);
}

QDoubleSpinBox* doubleBox(QWidget* parent, double low, double high, double step, int decimals, double value)
{
    auto* box = new QDoubleSpinBox(parent);
    box->setRange(low, high);
    box->setSingleStep(step);
    box->setDecimals(decimals);
    box->setValue(value);
    return box;
}

} // namespace

ModelPage::ModelPage(const RuntimeInfo& runtime, QWidget* parent)
    : QWidget(parent)
    , m_runtime(runtime)
    , m_models(facade::listModels())
    , m_family(new QComboBox(this))
    , m_size(new QComboBox(this))
    , m_description(new QLabel(this))
    , m_imageSize(new QSpinBox(this))
    , m_cost_label(new QLabel(this))
    , m_suggestion(new QLabel(this))
    , m_useSuggestion(new QPushButton(tr("Use suggested settings"), this))
    , m_epochs(new QSpinBox(this))
    , m_budget(new QSpinBox(this))
    , m_batch(new QSpinBox(this))
    , m_learningRate(doubleBox(this, 1e-6, 1.0, 1e-4, 6, kDefaults.learningRate))
    , m_weightDecay(doubleBox(this, 0.0, 1.0, 0.01, 3, kDefaults.weightDecay))
    , m_warmup(doubleBox(this, 0.0, 100.0, 0.5, 1, kDefaults.warmupEpochs))
    , m_labelSmoothing(doubleBox(this, 0.0, 0.5, 0.05, 2, kDefaults.labelSmoothing))
    , m_dropPath(doubleBox(this, 0.0, 0.5, 0.05, 2, kDefaults.dropPath))
    , m_flip(new QCheckBox(tr("Mirror images at random"), this))
    , m_classWeights(new QCheckBox(tr("Weigh rare classes up"), this))
    , m_startFrom(new QComboBox(this))
    , m_weights(new QLineEdit(this))
    , m_browse(new QPushButton(tr("Browse…"), this))
    , m_weightsStatus(new QLabel(this))
    , m_downloadButton(new QPushButton(tr("Download"), this))
    , m_downloadProgress(new QProgressBar(this))
    , m_cancelDownload(new QPushButton(tr("Cancel"), this))
    , m_freeze(new QComboBox(this))
    , m_freezeBlocks(new QSpinBox(this))
    , m_device(new QComboBox(this))
    , m_precision(new QComboBox(this))
    , m_tf32(new QCheckBox(tr("TF32 for 32-bit products on the GPU"), this))
    , m_processes(new QSpinBox(this))
{
    m_family->setObjectName(QStringLiteral("familyBox"));
    m_size->setObjectName(QStringLiteral("modelBox"));
    m_imageSize->setObjectName(QStringLiteral("imageSizeBox"));
    m_cost_label->setObjectName(QStringLiteral("costLabel"));
    m_suggestion->setObjectName(QStringLiteral("suggestionLabel"));
    m_epochs->setObjectName(QStringLiteral("epochsBox"));
    m_batch->setObjectName(QStringLiteral("batchBox"));
    m_learningRate->setObjectName(QStringLiteral("learningRateBox"));
    m_startFrom->setObjectName(QStringLiteral("startFromBox"));
    m_weights->setObjectName(QStringLiteral("weightsEdit"));
    m_weightsStatus->setObjectName(QStringLiteral("weightsStatus"));
    m_downloadButton->setObjectName(QStringLiteral("downloadButton"));
    m_downloadProgress->setObjectName(QStringLiteral("downloadProgress"));
    m_cancelDownload->setObjectName(QStringLiteral("cancelDownloadButton"));
    m_freeze->setObjectName(QStringLiteral("freezeBox"));
    m_device->setObjectName(QStringLiteral("deviceBox"));
    m_precision->setObjectName(QStringLiteral("precisionBox"));
    m_tf32->setObjectName(QStringLiteral("tf32Box"));
    m_processes->setObjectName(QStringLiteral("processesBox"));
    m_processes->setToolTip(tr("Train data-parallel in several processes of this machine, each with its share of every "
                               "batch and of the cores (or a GPU of its own). The result is that of one process; on a "
                               "CPU it is faster only where one process leaves cores idle. Such a run cannot pause."));
    m_tf32->setToolTip(tr("Faster 32-bit training on GPUs from Ampere on, with products rounded to 10 bits"));
    m_tf32->setEnabled(runtime.cudaAvailable);

    QStringList families;
    for (const auto& m : m_models) {
        const QString architecture = QString::fromStdString(m.architecture);
        if (!families.contains(architecture))
            families << architecture;
    }
    m_family->addItems(families);
    m_family->addItem(kCustomFamily);
    m_family->setToolTip(tr("The architecture: ViT splits the image into patches; DeiT is ViT trained with a "
                            "teacher; Swin attends within shifted windows; TNT adds attention inside each patch; "
                            "ResNet+ViT puts a small convolutional stem first"));
    m_size->setToolTip(tr("timm's standard sizes (224 px) and small presets for 28 to 64 px images"));
    m_description->setWordWrap(true);
    m_imageSize->setRange(8, 1024);
    m_imageSize->setSuffix(QStringLiteral(" px"));
    m_imageSize->setToolTip(tr("Images are resized to this square size. It must be a multiple of the patch size. "
                               "Larger is slower: cost grows with the square of the size."));
    QFont costFont = m_cost_label->font();
    costFont.setBold(true);
    m_cost_label->setFont(costFont);
    m_cost_label->setWordWrap(true);
    m_suggestion->setWordWrap(true);

    m_epochs->setRange(1, 1000);
    m_epochs->setValue(kDefaults.epochs);
    m_epochs->setToolTip(tr("Passes over the training images"));
    m_budget->setObjectName(QStringLiteral("budgetBox"));
    m_budget->setRange(0, 24 * 60);
    m_budget->setSuffix(tr(" min"));
    m_budget->setSpecialValueText(tr("none: train the epochs above"));
    m_budget->setToolTip(tr("Train for about this long, data preparation included: the first steps are timed and the "
                            "epochs and learning-rate schedule fitted to end on time, the decay complete"));
    m_batch->setRange(1, 4096);
    m_batch->setValue(static_cast<int>(kDefaults.batchSize));
    m_batch->setToolTip(tr("Images per step. Smaller uses less memory; on a CPU 32 to 128 is a good range."));
    m_learningRate->setToolTip(tr("Peak learning rate of AdamW, reached after the warm-up and then lowered along a "
                                  "cosine. 1e-3 suits training from scratch, 1e-4 fine-tuning."));
    m_weightDecay->setToolTip(tr("AdamW weight decay (not applied to biases, norms and embeddings)"));
    m_warmup->setToolTip(tr("Epochs over which the learning rate rises from zero"));
    m_labelSmoothing->setToolTip(tr("Softens the targets; helps transformers generalise"));
    m_dropPath->setToolTip(tr("Stochastic depth: skips whole blocks at random during training"));
    m_flip->setChecked(true);
    m_flip->setToolTip(tr("Off for images whose meaning changes when mirrored (text, digits)"));
    m_classWeights->setToolTip(tr("Scales each class's loss by the inverse of its frequency: for imbalanced data"));

    m_startFrom->setToolTip(tr("Pretrained weights learn from few images what random ones cannot. timm's come "
                               "from the Hugging Face Hub into the cache Python's timm uses too. Position embeddings "
                               "are resized and a new head is put on when the size or the classes differ."));
    m_weights->setPlaceholderText(tr("a timm .safetensors file"));
    m_weights->setToolTip(tr("A .safetensors file in timm's layout (e.g. one saved by timm or by ViTLab)"));
    m_weightsStatus->setWordWrap(true);
    // The repository names are long: the box shows their start, the tooltip the rest.
    m_startFrom->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_startFrom->setMinimumContentsLength(40);
    m_downloadProgress->setRange(0, 1000);
    m_downloadProgress->setTextVisible(true);
    m_downloadProgress->setVisible(false);
    m_cancelDownload->setVisible(false);
    m_freeze->addItem(tr("Train every layer"), QStringLiteral("none"));
    m_freeze->addItem(tr("Train only the head"), QStringLiteral("head"));
    m_freeze->addItem(tr("Freeze the first blocks"), QStringLiteral("blocks"));
    m_freeze->setToolTip(tr("With pretrained weights, freezing trains faster and needs fewer images"));
    m_freezeBlocks->setRange(1, 48);
    m_freezeBlocks->setValue(6);
    m_freezeBlocks->setEnabled(false);

    m_device->addItem(tr("Automatic"), QStringLiteral("auto"));
    m_device->addItem(tr("CPU"), QStringLiteral("cpu"));
    // One entry per GPU, with its name and memory, so a machine with several can pick one.
    for (const auto& gpu : runtime.cudaDevices)
        m_device->addItem(tr("GPU %1: %2").arg(gpu.index).arg(QString::fromStdString(describeCudaDevice(gpu))),
                          QStringLiteral("cuda:%1").arg(gpu.index));
    if (runtime.cudaDevices.empty()) {
        m_device->addItem(tr("CUDA GPU"), QStringLiteral("cuda"));
        if (!runtime.cudaAvailable) {
            // Shown but disabled, with the reason, so nobody hunts for a setting that cannot work.
            auto* items = qobject_cast<QStandardItemModel*>(m_device->model());
            items->item(2)->setEnabled(false);
            const QString reason = tr("CUDA is unavailable: %1").arg(QString::fromStdString(runtime.cudaUnavailableReason));
            items->item(2)->setToolTip(reason);
            m_device->setToolTip(reason);
        }
    }
    m_precision->addItem(tr("Automatic"), QStringLiteral("auto"));
    m_precision->addItem(tr("32-bit float"), QStringLiteral("fp32"));
    m_precision->addItem(tr("bfloat16 mixed"), QStringLiteral("bf16"));
    m_precision->addItem(tr("float16 mixed, loss scaled"), QStringLiteral("fp16"));
    m_precision->setToolTip(tr("Automatic: bfloat16 on GPUs from compute capability 8.0 and CPUs that run it natively, "
                               "float16 with loss scaling on older GPUs, else 32-bit"));
    if (!runtime.cudaAvailable) {
        // On the CPU float16 is emulated (many times slower than 32-bit): a GPU's choice.
        auto* items = qobject_cast<QStandardItemModel*>(m_precision->model());
        items->item(3)->setEnabled(false);
        items->item(3)->setToolTip(tr("float16 is for GPUs; on this CPU it would be emulated"));
    }

    // --- layout
    auto* modelBox = new QGroupBox(tr("Model"), this);
    auto* modelForm = new QFormLayout(modelBox);
    modelForm->addRow(tr("Architecture:"), m_family);
    modelForm->addRow(tr("Size:"), m_size);
    modelForm->addRow(QString(), m_description);
    modelForm->addRow(tr("Image size:"), m_imageSize);
    modelForm->addRow(tr("Cost:"), m_cost_label);

    auto* trainingBox = new QGroupBox(tr("Training"), this);
    auto* trainingForm = new QFormLayout(trainingBox);
    trainingForm->addRow(tr("Time budget:"), m_budget);
    trainingForm->addRow(tr("Epochs:"), m_epochs);
    trainingForm->addRow(tr("Batch size:"), m_batch);
    trainingForm->addRow(tr("Learning rate:"), m_learningRate);
    trainingForm->addRow(tr("Weight decay:"), m_weightDecay);
    trainingForm->addRow(tr("Warm-up epochs:"), m_warmup);
    trainingForm->addRow(tr("Label smoothing:"), m_labelSmoothing);
    trainingForm->addRow(tr("Drop path:"), m_dropPath);
    trainingForm->addRow(QString(), m_flip);
    trainingForm->addRow(QString(), m_classWeights);

    auto* weightsBox = new QGroupBox(tr("Start from"), this);
    auto* weightsForm = new QFormLayout(weightsBox);
    weightsForm->addRow(tr("Weights:"), m_startFrom);
    auto* weightsRow = new QHBoxLayout;
    weightsRow->addWidget(m_weights, 1);
    weightsRow->addWidget(m_browse);
    weightsForm->addRow(tr("File:"), weightsRow);
    weightsForm->addRow(QString(), m_weightsStatus);
    auto* downloadRow = new QHBoxLayout;
    downloadRow->addStretch(); // the button sits on the right while no progress shows
    downloadRow->addWidget(m_downloadProgress, 1);
    downloadRow->addWidget(m_downloadButton);
    downloadRow->addWidget(m_cancelDownload);
    weightsForm->addRow(QString(), downloadRow);
    auto* freezeRow = new QHBoxLayout;
    freezeRow->addWidget(m_freeze, 1);
    freezeRow->addWidget(m_freezeBlocks);
    weightsForm->addRow(tr("Freezing:"), freezeRow);

    auto* runBox = new QGroupBox(tr("Where it runs"), this);
    auto* runForm = new QFormLayout(runBox);
    runForm->addRow(tr("Device:"), m_device);
    runForm->addRow(tr("Precision:"), m_precision);
    runForm->addRow(QString(), m_tf32);
    runForm->addRow(tr("Processes:"), m_processes);
    if (!runtime.cudaAvailable) {
        auto* cudaNote = new QLabel(tr("The CUDA GPU choice is disabled: %1")
                                        .arg(QString::fromStdString(runtime.cudaUnavailableReason)), this);
        cudaNote->setObjectName(QStringLiteral("cudaNote"));
        cudaNote->setWordWrap(true);
        cudaNote->setEnabled(false); // drawn greyed, as a remark
        runForm->addRow(QString(), cudaNote);
    }

    auto* suggestionRow = new QHBoxLayout;
    suggestionRow->addWidget(m_suggestion, 1);
    suggestionRow->addWidget(m_useSuggestion);

    auto* columns = new QHBoxLayout;
    auto* leftColumn = new QVBoxLayout;
    leftColumn->addWidget(modelBox);
    leftColumn->addWidget(weightsBox);
    leftColumn->addWidget(runBox);
    leftColumn->addStretch();
    auto* rightColumn = new QVBoxLayout;
    rightColumn->addWidget(trainingBox);
    rightColumn->addStretch();
    columns->addLayout(leftColumn, 3);
    columns->addLayout(rightColumn, 2);

    auto* content = new QWidget(this);
    auto* contentLayout = new QVBoxLayout(content);
    contentLayout->addLayout(suggestionRow);
    contentLayout->addLayout(columns);
    auto* scroll = new QScrollArea(this);
    scroll->setWidget(content);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(scroll);

    // --- behaviour
    connect(m_family, &QComboBox::currentIndexChanged, this, &ModelPage::fillSizes);
    connect(m_size, &QComboBox::currentIndexChanged, this, [this] {
        const QString name = m_size->currentData().toString();
        for (const auto& m : m_models) {
            if (QString::fromStdString(m.name) == name) {
                m_description->setText(QString::fromStdString(m.description));
                m_imageSize->setSingleStep(static_cast<int>(m.patchSize));
                m_imageSize->setValue(static_cast<int>(m.imageSize));
            }
        }
        fillStartFrom();
        if (m_family->currentText() == kCustomFamily && !m_customFile.isEmpty()) {
            m_description->setText(tr("Model built from %1").arg(m_customFile));
            const auto own = facade::modelCost(m_customFile.toStdString(), 0, m_classes);
            if (own.imageSize > 0)
                m_imageSize->setValue(static_cast<int>(own.imageSize));
        }
        updateCost();
    });
    connect(m_imageSize, &QSpinBox::valueChanged, this, &ModelPage::updateCost);
    connect(m_useSuggestion, &QPushButton::clicked, this, &ModelPage::applySuggestion);
    connect(m_browse, &QPushButton::clicked, this, [this] {
        const QString file = QFileDialog::getOpenFileName(this, tr("timm weights"), QString(),
                                                          tr("safetensors (*.safetensors)"));
        if (!file.isEmpty())
            m_weights->setText(file);
    });
    connect(m_freeze, &QComboBox::currentIndexChanged, this,
            [this] { m_freezeBlocks->setEnabled(m_freeze->currentData().toString() == QLatin1String("blocks")); });
    connect(m_budget, &QSpinBox::valueChanged, this, [this](int minutes) {
        m_epochs->setEnabled(minutes == 0);
        m_epochs->setToolTip(minutes == 0 ? tr("Passes over the training images")
                                          : tr("Fitted to the time budget once training has timed its first steps"));
    });
    for (QSpinBox* box : {m_epochs, m_batch, m_freezeBlocks, m_budget, m_processes})
        connect(box, &QSpinBox::valueChanged, this, &ModelPage::settingsChanged);
    for (QDoubleSpinBox* box : {m_learningRate, m_weightDecay, m_warmup, m_labelSmoothing, m_dropPath})
        connect(box, &QDoubleSpinBox::valueChanged, this, &ModelPage::settingsChanged);
    m_processes->setRange(1, 1);
    updateProcessLimit();
    connect(m_device, &QComboBox::currentIndexChanged, this, &ModelPage::updateProcessLimit);
    for (QComboBox* box : {m_freeze, m_device, m_precision})
        connect(box, &QComboBox::currentIndexChanged, this, &ModelPage::settingsChanged);
    connect(m_weights, &QLineEdit::textChanged, this, &ModelPage::settingsChanged);
    connect(m_startFrom, &QComboBox::currentIndexChanged, this, [this] {
        m_wantsPretrained = m_startFrom->currentData().toString().startsWith(QLatin1String("hub"));
        updateWeightsState();
        Q_EMIT settingsChanged();
    });
    connect(m_downloadButton, &QPushButton::clicked, this, &ModelPage::downloadPretrained);
    connect(m_cancelDownload, &QPushButton::clicked, &m_download, &PretrainedDownload::cancel);
    connect(&m_download, &PretrainedDownload::progress, this, [this](qint64 received, qint64 total) {
        m_downloadProgress->setValue(total > 0 ? static_cast<int>(1000 * received / total) : 0);
        m_downloadProgress->setFormat(tr("%1 of %2").arg(sizeText(received),
                                                           sizeText(total)));
    });
    const auto downloadEnded = [this](bool ok, const QString& message) {
        fillStartFrom();
        if (!message.isEmpty())
            m_weightsStatus->setText(message);
        Q_EMIT pretrainedDownloadEnded(ok);
        Q_EMIT settingsChanged();
    };
    connect(&m_download, &PretrainedDownload::finished, this,
            [downloadEnded](const QString&, const QString&) { downloadEnded(true, {}); });
    connect(&m_download, &PretrainedDownload::cancelled, this, [this, downloadEnded](const QString&) {
        downloadEnded(false, tr("Download cancelled; the part received is kept and the next download resumes there."));
    });
    connect(&m_download, &PretrainedDownload::failed, this, [downloadEnded](const QString&, const QString& message) {
        downloadEnded(false, QStringLiteral("<span style='color:#b00'>%1</span>").arg(message.toHtmlEscaped()));
    });
    connect(&m_probe, &QFutureWatcher<QString>::finished, this, [this] {
        const bool reachable = m_probe.result().isEmpty();
        // Applied only if the page still shows the provisional suggestion: the user's edits stay.
        const bool untouched = modelName().toStdString() == m_suggested.model && m_startFrom->currentData().toString().isEmpty();
        m_suggested = reachable ? m_suggestedIfReachable : m_suggestedIfUnreachable;
        showSuggestion();
        if (untouched)
            applySuggestion();
    });
    connect(m_tf32, &QCheckBox::toggled, this, &ModelPage::settingsChanged);

    m_suggestion->setText(tr("Open a dataset on the Data page and settings that suit it are proposed here."));
    m_useSuggestion->setEnabled(false);
    fillSizes();
    setModel(QStringLiteral("vit_micro_r5_s4_28"));
}

void ModelPage::fillSizes()
{
    const QString family = m_family->currentText();
    QSignalBlocker block(m_size);
    m_size->clear();
    if (family == kCustomFamily) {
        m_size->addItem(m_customFile.isEmpty() ? tr("(no file)") : QFileInfo(m_customFile).fileName(), m_customFile);
        if (m_customFile.isEmpty()) {
            const QString file = QFileDialog::getOpenFileName(this, tr("Model config"), QString(), tr("JSON (*.json)"));
            if (!file.isEmpty()) {
                m_customFile = file;
                m_size->setItemText(0, QFileInfo(file).fileName());
                m_size->setItemData(0, file);
            }
        }
    } else {
        for (const auto& m : m_models) {
            if (QString::fromStdString(m.architecture) == family)
                m_size->addItem(QString::fromStdString(m.name), QString::fromStdString(m.name));
        }
    }
    block.unblock();
    Q_EMIT m_size->currentIndexChanged(m_size->currentIndex());
}

bool ModelPage::setModel(const QString& name)
{
    for (const auto& m : m_models) {
        if (QString::fromStdString(m.name) != name)
            continue;
        m_family->setCurrentText(QString::fromStdString(m.architecture));
        m_size->setCurrentIndex(m_size->findData(name));
        return true;
    }
    return false;
}

void ModelPage::setCustomModelFile(const QString& path)
{
    m_customFile = path;
    if (m_family->currentText() == kCustomFamily)
        fillSizes();
    else
        m_family->setCurrentText(kCustomFamily);
}

void ModelPage::setImageSize(int pixels)
{
    m_imageSize->setValue(pixels);
}

void ModelPage::setEpochs(int epochs)
{
    m_budget->setValue(0); // a count of epochs, not a time
    m_epochs->setValue(epochs);
}

void ModelPage::setBatchSize(int batch)
{
    m_batch->setValue(batch);
}

QString ModelPage::modelName() const
{
    return m_size->currentData().toString();
}

void ModelPage::updateCost()
{
    const QString model = modelName();
    if (model.isEmpty()) {
        m_cost = {};
        m_error = tr("Choose a model.");
    } else {
        // The counts are analytic (no model is built), so this is instant even for ViT-B.
        m_cost = facade::modelCost(model.toStdString(), m_imageSize->value(), m_classes);
        m_error = QString::fromStdString(m_cost.error);
    }
    if (!m_error.isEmpty()) {
        m_cost_label->setText(tr("<span style='color:#b00'>%1</span>").arg(m_error.toHtmlEscaped()));
    } else {
        m_cost_label->setText(tr("%1 parameters · %2FLOPs per image · %3 input at %4 px, %5 classes")
                                  .arg(countText(static_cast<double>(m_cost.parameters)),
                                       countText(2.0 * static_cast<double>(m_cost.macs)),
                                       m_cost.channels == 1 ? tr("grey") : tr("colour"))
                                  .arg(m_cost.imageSize)
                                  .arg(m_classes));
    }
    Q_EMIT settingsChanged();
}

void ModelPage::setDataset(const ScanReport& report, bool builtin)
{
    m_classes = std::max<std::int64_t>(2, static_cast<std::int64_t>(report.classes.size()));
    const auto cached = facade::cachedPhotoWeights();
    m_suggested = facade::suggestSettings(report, builtin, m_runtime, cached);
    m_suggestedIfReachable = facade::suggestSettings(report, builtin, m_runtime, facade::PretrainedAvailability::Reachable);
    m_suggestedIfUnreachable =
        facade::suggestSettings(report, builtin, m_runtime, facade::PretrainedAvailability::Unreachable);
    m_hasSuggestion = true;
    showSuggestion();
    m_useSuggestion->setEnabled(true);
    m_classWeights->setChecked(report.imbalanceRatio >= 3.0);
    applySuggestion();
    // Photos do far better from pretrained weights: ask the Hub, off the UI thread, whether they can be had.
    if (cached == facade::PretrainedAvailability::Unchecked && !m_suggestedIfReachable.weights.empty())
        probeHubForSuggestion();
}

void ModelPage::probeHubForSuggestion()
{
    if (m_probe.isRunning())
        return;
    const auto weights = facade::photoPretrainedWeights();
    m_probe.setFuture(QtConcurrent::run([weights] { return QString::fromStdString(facade::probePretrained(weights)); }));
}

void ModelPage::showSuggestion()
{
    const QString start = m_suggested.weights.empty()
                            ? tr("from scratch")
                            : tr("from %1").arg(QString::fromStdString(m_suggested.weights.substr(4)));
    const QString length = m_suggested.budgetMinutes > 0 ? tr("%1 minutes").arg(m_suggested.budgetMinutes)
                                                          : tr("%1 epochs").arg(m_suggested.epochs);
    m_suggestion->setText(tr("<b>Suggested for this dataset:</b> %1 at %2 px %3, batch %4, %5, learning rate "
                             "%6 (%7).")
                              .arg(QString::fromStdString(m_suggested.model))
                              .arg(m_suggested.imageSize)
                              .arg(start)
                              .arg(m_suggested.batchSize)
                              .arg(length)
                              .arg(m_suggested.learningRate)
                              .arg(QString::fromStdString(m_suggested.reason).toHtmlEscaped()));
}

void ModelPage::applySuggestion()
{
    if (!m_hasSuggestion)
        return;
    setModel(QString::fromStdString(m_suggested.model));
    m_imageSize->setValue(static_cast<int>(m_suggested.imageSize));
    m_batch->setValue(static_cast<int>(m_suggested.batchSize));
    m_epochs->setValue(m_suggested.epochs);
    m_learningRate->setValue(m_suggested.learningRate);
    m_warmup->setValue(m_suggested.warmupEpochs);
    m_budget->setValue(static_cast<int>(std::lround(m_suggested.budgetMinutes)));
    setStartFrom(QString::fromStdString(m_suggested.weights));
    updateCost();
}

void ModelPage::fillStartFrom()
{
    const QString previous = m_startFrom->currentData().toString();
    m_choices = facade::pretrainedChoices(modelName().toStdString());
    QSignalBlocker block(m_startFrom);
    m_startFrom->clear();
    m_startFrom->addItem(tr("Random weights (train from scratch)"), QString());
    for (const auto& choice : m_choices) {
        const QString size = (choice.bytesExact ? QString() : QStringLiteral("~")) + sizeText(choice.bytes);
        m_startFrom->addItem(tr("%1 weights (%2, %3, %4)")
                                 .arg(QString::fromStdString(choice.title),
                                      QString::fromStdString(choice.repository), size,
                                      choice.cached ? tr("cached") : tr("to download")),
                             QString::fromStdString(choice.weights));
        m_startFrom->setItemData(m_startFrom->count() - 1,
                                 tr("%1; %2 classes; licence %3")
                                     .arg(QString::fromStdString(choice.description))
                                     .arg(choice.classes)
                                     .arg(QString::fromStdString(choice.license)),
                                 Qt::ToolTipRole);
    }
    m_startFrom->addItem(tr("A local timm file (.safetensors)"), QStringLiteral("file"));
    int index = m_startFrom->findData(previous);
    if ((index < 0 || !previous.startsWith(QLatin1String("hub"))) && m_wantsPretrained && !m_choices.empty())
        index = 1; // another model: its default tag
    if (index < 0 && !m_weights->text().trimmed().isEmpty())
        index = m_startFrom->findData(QStringLiteral("file"));
    m_startFrom->setCurrentIndex(std::max(0, index));
    block.unblock();
    updateWeightsState();
}

bool ModelPage::setStartFrom(const QString& weights)
{
    QString data = weights;
    if (weights == QLatin1String("hub"))
        data = m_choices.empty() ? QString() : QString::fromStdString(m_choices.front().weights);
    int index = m_startFrom->findData(data);
    if (index < 0 && !weights.startsWith(QLatin1String("hub"))) {
        m_weights->setText(weights);
        index = m_startFrom->findData(QStringLiteral("file"));
    }
    if (index < 0)
        return false;
    m_startFrom->setCurrentIndex(index);
    updateWeightsState();
    return true;
}

void ModelPage::updateWeightsState()
{
    const QString data = m_startFrom->currentData().toString();
    const bool file = data == QLatin1String("file");
    m_weights->setEnabled(file);
    m_browse->setEnabled(file);
    m_freeze->setEnabled(!data.isEmpty());
    const bool downloading = m_download.isRunning();
    m_downloadProgress->setVisible(downloading);
    m_cancelDownload->setVisible(downloading);
    const facade::PretrainedChoice* chosen = nullptr;
    for (const auto& choice : m_choices) {
        if (QString::fromStdString(choice.weights) == data)
            chosen = &choice;
    }
    m_downloadButton->setVisible(chosen && !chosen->cached && !downloading);
    if (downloading)
        m_weightsStatus->setText(tr("Downloading %1…").arg(m_download.weights().mid(4)));
    else if (chosen && chosen->cached)
        m_weightsStatus->setText(tr("%1. In the Hugging Face cache, ready.").arg(QString::fromStdString(chosen->description)));
    else if (chosen)
        m_weightsStatus->setText(tr("%1. Not downloaded yet: %2 from the Hugging Face Hub, before training starts.")
                                     .arg(QString::fromStdString(chosen->description), sizeText(chosen->bytes)));
    else if (data.isEmpty())
        m_weightsStatus->setText(tr("Every layer starts random: fine with many images, weak with few."));
    else
        m_weightsStatus->clear();
}

bool ModelPage::pretrainedReady() const
{
    const QString data = m_startFrom->currentData().toString();
    for (const auto& choice : m_choices) {
        if (QString::fromStdString(choice.weights) == data)
            return choice.cached;
    }
    return true;
}

bool ModelPage::downloadPretrained()
{
    const QString data = m_startFrom->currentData().toString();
    if (!data.startsWith(QLatin1String("hub:")) || pretrainedReady() || !m_download.start(data))
        return false;
    m_downloadProgress->setValue(0);
    m_downloadProgress->setFormat(tr("starting…"));
    updateWeightsState();
    return true;
}

int ModelPage::processes() const
{
    return m_processes->value();
}

void ModelPage::updateProcessLimit()
{
    const bool cpu = m_device->currentData().toString() == QLatin1String("cpu");
    const int limit = cpu ? std::max(1, m_runtime.usableCores) : facade::maxLocalProcesses(m_runtime);
    m_processes->setMaximum(limit);
    m_processes->setEnabled(limit > 1);
    m_processes->setSuffix(limit > 1 ? tr(" of up to %1").arg(limit) : QString());
}

TrainConfig ModelPage::trainConfig(TrainConfig base) const
{
    base.model = modelName().toStdString();
    base.imageSize = m_imageSize->value();
    base.epochs = m_epochs->value();
    base.budgetMinutes = m_budget->value();
    base.batchSize = m_batch->value();
    base.learningRate = m_learningRate->value();
    base.weightDecay = m_weightDecay->value();
    base.warmupEpochs = m_warmup->value();
    base.labelSmoothing = m_labelSmoothing->value();
    base.dropPath = m_dropPath->value();
    base.horizontalFlip = m_flip->isChecked();
    base.classWeights = m_classWeights->isChecked();
    base.tf32 = m_tf32->isEnabled() && m_tf32->isChecked();
    const QString start = m_startFrom->currentData().toString();
    base.weights = start == QLatin1String("file") ? m_weights->text().trimmed().toStdString() : start.toStdString();
    const QString freeze = m_freeze->currentData().toString();
    base.freeze = base.weights.empty()                ? std::string("none")
                : freeze == QLatin1String("blocks") ? std::to_string(m_freezeBlocks->value())
                                                    : freeze.toStdString();
    base.device = m_device->currentData().toString().toStdString();
    base.precision = parsePrecision(m_precision->currentData().toString().toStdString());
    // The live charts want a point per optimiser step; metrics.csv is written at checkpoints only.
    base.logEvery = 1;
    return base;
}

} // namespace vitlab::ui
