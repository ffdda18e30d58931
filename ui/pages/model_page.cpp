#include "ui/pages/model_page.h"

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
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QVBoxLayout>

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
    , m_batch(new QSpinBox(this))
    , m_learningRate(doubleBox(this, 1e-6, 1.0, 1e-4, 6, kDefaults.learningRate))
    , m_weightDecay(doubleBox(this, 0.0, 1.0, 0.01, 3, kDefaults.weightDecay))
    , m_warmup(doubleBox(this, 0.0, 100.0, 0.5, 1, kDefaults.warmupEpochs))
    , m_labelSmoothing(doubleBox(this, 0.0, 0.5, 0.05, 2, kDefaults.labelSmoothing))
    , m_dropPath(doubleBox(this, 0.0, 0.5, 0.05, 2, kDefaults.dropPath))
    , m_flip(new QCheckBox(tr("Mirror images at random"), this))
    , m_classWeights(new QCheckBox(tr("Weigh rare classes up"), this))
    , m_weights(new QLineEdit(this))
    , m_freeze(new QComboBox(this))
    , m_freezeBlocks(new QSpinBox(this))
    , m_device(new QComboBox(this))
    , m_precision(new QComboBox(this))
    , m_tf32(new QCheckBox(tr("TF32 for 32-bit products on the GPU"), this))
{
    m_family->setObjectName(QStringLiteral("familyBox"));
    m_size->setObjectName(QStringLiteral("modelBox"));
    m_imageSize->setObjectName(QStringLiteral("imageSizeBox"));
    m_cost_label->setObjectName(QStringLiteral("costLabel"));
    m_suggestion->setObjectName(QStringLiteral("suggestionLabel"));
    m_epochs->setObjectName(QStringLiteral("epochsBox"));
    m_batch->setObjectName(QStringLiteral("batchBox"));
    m_learningRate->setObjectName(QStringLiteral("learningRateBox"));
    m_weights->setObjectName(QStringLiteral("weightsEdit"));
    m_freeze->setObjectName(QStringLiteral("freezeBox"));
    m_device->setObjectName(QStringLiteral("deviceBox"));
    m_precision->setObjectName(QStringLiteral("precisionBox"));
    m_tf32->setObjectName(QStringLiteral("tf32Box"));
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

    m_weights->setPlaceholderText(tr("none: train from scratch"));
    m_weights->setToolTip(tr("A timm .safetensors file to start from (e.g. vit_tiny_patch16_224). Position "
                             "embeddings are resized and a new head is put on when the classes differ."));
    auto* browse = new QPushButton(tr("Browse…"), this);
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
    trainingForm->addRow(tr("Epochs:"), m_epochs);
    trainingForm->addRow(tr("Batch size:"), m_batch);
    trainingForm->addRow(tr("Learning rate:"), m_learningRate);
    trainingForm->addRow(tr("Weight decay:"), m_weightDecay);
    trainingForm->addRow(tr("Warm-up epochs:"), m_warmup);
    trainingForm->addRow(tr("Label smoothing:"), m_labelSmoothing);
    trainingForm->addRow(tr("Drop path:"), m_dropPath);
    trainingForm->addRow(QString(), m_flip);
    trainingForm->addRow(QString(), m_classWeights);

    auto* weightsBox = new QGroupBox(tr("Start from timm weights (optional)"), this);
    auto* weightsForm = new QFormLayout(weightsBox);
    auto* weightsRow = new QHBoxLayout;
    weightsRow->addWidget(m_weights, 1);
    weightsRow->addWidget(browse);
    weightsForm->addRow(tr("Weights file:"), weightsRow);
    auto* freezeRow = new QHBoxLayout;
    freezeRow->addWidget(m_freeze, 1);
    freezeRow->addWidget(m_freezeBlocks);
    weightsForm->addRow(tr("Freezing:"), freezeRow);

    auto* runBox = new QGroupBox(tr("Where it runs"), this);
    auto* runForm = new QFormLayout(runBox);
    runForm->addRow(tr("Device:"), m_device);
    runForm->addRow(tr("Precision:"), m_precision);
    runForm->addRow(QString(), m_tf32);
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
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString file = QFileDialog::getOpenFileName(this, tr("timm weights"), QString(),
                                                          tr("safetensors (*.safetensors)"));
        if (!file.isEmpty())
            m_weights->setText(file);
    });
    connect(m_freeze, &QComboBox::currentIndexChanged, this,
            [this] { m_freezeBlocks->setEnabled(m_freeze->currentData().toString() == QLatin1String("blocks")); });
    for (QSpinBox* box : {m_epochs, m_batch, m_freezeBlocks})
        connect(box, &QSpinBox::valueChanged, this, &ModelPage::settingsChanged);
    for (QDoubleSpinBox* box : {m_learningRate, m_weightDecay, m_warmup, m_labelSmoothing, m_dropPath})
        connect(box, &QDoubleSpinBox::valueChanged, this, &ModelPage::settingsChanged);
    for (QComboBox* box : {m_freeze, m_device, m_precision})
        connect(box, &QComboBox::currentIndexChanged, this, &ModelPage::settingsChanged);
    connect(m_weights, &QLineEdit::textChanged, this, &ModelPage::settingsChanged);
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
    m_suggested = facade::suggestSettings(report, builtin);
    m_hasSuggestion = true;
    m_suggestion->setText(tr("<b>Suggested for this dataset:</b> %1 at %2 px, batch %3, %4 epochs (%5).")
                              .arg(QString::fromStdString(m_suggested.model))
                              .arg(m_suggested.imageSize)
                              .arg(m_suggested.batchSize)
                              .arg(m_suggested.epochs)
                              .arg(QString::fromStdString(m_suggested.reason).toHtmlEscaped()));
    m_useSuggestion->setEnabled(true);
    m_classWeights->setChecked(report.imbalanceRatio >= 3.0);
    applySuggestion();
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
    updateCost();
}

TrainConfig ModelPage::trainConfig(TrainConfig base) const
{
    base.model = modelName().toStdString();
    base.imageSize = m_imageSize->value();
    base.epochs = m_epochs->value();
    base.batchSize = m_batch->value();
    base.learningRate = m_learningRate->value();
    base.weightDecay = m_weightDecay->value();
    base.warmupEpochs = m_warmup->value();
    base.labelSmoothing = m_labelSmoothing->value();
    base.dropPath = m_dropPath->value();
    base.horizontalFlip = m_flip->isChecked();
    base.classWeights = m_classWeights->isChecked();
    base.tf32 = m_tf32->isEnabled() && m_tf32->isChecked();
    base.weights = m_weights->text().trimmed().toStdString();
    const QString freeze = m_freeze->currentData().toString();
    base.freeze = freeze == QLatin1String("blocks") ? std::to_string(m_freezeBlocks->value()) : freeze.toStdString();
    base.device = m_device->currentData().toString().toStdString();
    base.precision = parsePrecision(m_precision->currentData().toString().toStdString());
    // The live charts want a point per optimiser step; metrics.csv is written at checkpoints only.
    base.logEvery = 1;
    return base;
}

} // namespace vitlab::ui
