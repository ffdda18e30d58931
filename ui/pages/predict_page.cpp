#include "ui/pages/predict_page.h"

#include "ui/widgets/attention_inspector.h"
#include "ui/widgets/dropped_paths.h"
#include "ui/widgets/image_grid.h"
#include "ui/widgets/probability_bars.h"
#include "ui/widgets/run_choice.h"

#include <QComboBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QSaveFile>
#include <QSplitter>
#include <QTextStream>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

namespace vitlab::ui {

namespace {

QString csvField(QString text)
{
    if (text.contains(QLatin1Char(',')) || text.contains(QLatin1Char('"')) || text.contains(QLatin1Char('\n')))
        return QLatin1Char('"') + text.replace(QLatin1Char('"'), QStringLiteral("\"\"")) + QLatin1Char('"');
    return text;
}

} // namespace

PredictPage::PredictPage(QWidget* parent)
    : QWidget(parent)
    , m_runs(new QComboBox(this))
    , m_addImages(new QPushButton(tr("Add images…"), this))
    , m_addFolder(new QPushButton(tr("Add folder…"), this))
    , m_clear(new QPushButton(tr("Clear"), this))
    , m_export(new QPushButton(tr("Export CSV…"), this))
    , m_hint(new QLabel(this))
    , m_progress(new QProgressBar(this))
    , m_images(new ImageGrid(this, 88))
    , m_previewCaption(new QLabel(this))
    , m_inspector(new AttentionInspector(this))
    , m_bars(new ProbabilityBars(this))
{
    setAcceptDrops(true);
    m_runs->setObjectName(QStringLiteral("predictRunBox"));
    m_images->setObjectName(QStringLiteral("predictImages"));
    m_bars->setObjectName(QStringLiteral("probabilityBars"));
    m_export->setObjectName(QStringLiteral("exportCsvButton"));
    m_hint->setObjectName(QStringLiteral("predictHint"));
    m_runs->setToolTip(tr("The trained run whose model classifies the images (its best weights)"));
    m_runs->setMinimumContentsLength(18);
    m_runs->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_export->setToolTip(tr("Save every image's top-5 classes and probabilities as a CSV file (Ctrl+E)"));
    m_export->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
    m_export->setEnabled(false);
    m_hint->setWordWrap(true);
    m_hint->setText(tr("Drop images or folders anywhere on this page to classify them."));
    m_progress->setVisible(false);
    m_previewCaption->setWordWrap(true);
    m_previewCaption->setTextInteractionFlags(Qt::TextSelectableByMouse);

    auto* top = new QHBoxLayout;
    top->addWidget(new QLabel(tr("Model:"), this));
    top->addWidget(m_runs, 1);
    top->addWidget(m_addImages);
    top->addWidget(m_addFolder);
    top->addWidget(m_clear);
    top->addWidget(m_export);

    auto* detail = new QWidget(this);
    auto* detailLayout = new QVBoxLayout(detail);
    detailLayout->addWidget(m_previewCaption);
    detailLayout->addWidget(m_bars);
    detailLayout->addWidget(m_inspector, 1);

    auto* body = new QSplitter(Qt::Horizontal, this);
    body->addWidget(m_images);
    body->addWidget(detail);
    body->setStretchFactor(0, 1);
    body->setStretchFactor(1, 1);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(top);
    layout->addWidget(m_hint);
    layout->addWidget(m_progress);
    layout->addWidget(body, 1);

    connect(m_addImages, &QPushButton::clicked, this, [this] {
        const QStringList files = QFileDialog::getOpenFileNames(
            this, tr("Images to classify"), QString(), tr("Images (*.png *.jpg *.jpeg *.bmp *.webp *.tif *.tiff)"));
        if (!files.isEmpty())
            addPaths(files);
    });
    connect(m_addFolder, &QPushButton::clicked, this, [this] {
        const QString folder = QFileDialog::getExistingDirectory(this, tr("Folder of images to classify"));
        if (!folder.isEmpty())
            addPaths({folder});
    });
    connect(m_clear, &QPushButton::clicked, this, &PredictPage::clearImages);
    connect(m_export, &QPushButton::clicked, this, [this] {
        const QString file = QFileDialog::getSaveFileName(this, tr("Export predictions"), QStringLiteral("predictions.csv"),
                                                          tr("CSV (*.csv)"));
        QString error;
        if (!file.isEmpty() && !exportCsv(file, &error))
            Q_EMIT failed(error);
    });
    connect(m_images, &ImageGrid::currentSourceChanged, this, &PredictPage::showSelected);
    connect(m_runs, &QComboBox::currentIndexChanged, this, [this] {
        // Another model: classify what is on the page again.
        if (!m_order.isEmpty() && runDirectory() != m_predictorRun) {
            const QStringList again = m_order;
            clearImages();
            addPaths(again);
        }
    });
    connect(m_inspector, &AttentionInspector::failed, this, &PredictPage::failed);
    connect(&m_watcher, &QFutureWatcher<Job>::finished, this, &PredictPage::onJobFinished);
    refreshRuns();
}

PredictPage::~PredictPage()
{
    if (m_cancel)
        *m_cancel = true;
    m_watcher.waitForFinished();
}

void PredictPage::refreshRuns(const QString& runDirectory)
{
    const QString keep = runDirectory.isEmpty() ? this->runDirectory() : runDirectory;
    fillRunChoices(m_runs, keep);
    const int index = m_runs->findData(keep);
    if (m_runs->count() == 0)
        m_hint->setText(tr("No trained model yet: train one on the Train page, then drop images here."));
    else
        m_hint->setText(tr("Drop images or folders anywhere on this page to classify them."));
    if (index >= 0 && !m_order.isEmpty() && keep != m_predictorRun)
        Q_EMIT m_runs->currentIndexChanged(m_runs->currentIndex());
}

QString PredictPage::runDirectory() const
{
    return m_runs->currentData().toString();
}

const Prediction* PredictPage::prediction(const QString& source) const
{
    const auto it = m_predictions.constFind(source);
    return it == m_predictions.constEnd() ? nullptr : &it.value();
}

void PredictPage::addPaths(const QStringList& paths)
{
    if (runDirectory().isEmpty()) {
        Q_EMIT failed(tr("There is no trained model to classify with yet. Train one on the Train page first, or "
                         "open a finished run on the Runs page."));
        return;
    }
    m_queued << paths;
    if (!m_watcher.isRunning())
        startNext();
}

void PredictPage::clearImages()
{
    if (m_cancel)
        *m_cancel = true;
    m_watcher.waitForFinished();
    m_queued.clear();
    m_order.clear();
    m_predictions.clear();
    m_images->clear();
    m_bars->setBars({});
    m_previewCaption->clear();
    m_inspector->clear();
    m_export->setEnabled(false);
}

void PredictPage::startNext()
{
    if (m_queued.isEmpty())
        return;
    std::vector<std::string> paths;
    for (const QString& p : m_queued)
        paths.push_back(p.toStdString());
    m_queued.clear();
    const QString run = runDirectory();
    auto predictor = run == m_predictorRun ? m_predictor : nullptr;
    m_cancel = std::make_shared<std::atomic<bool>>(false);
    auto cancel = m_cancel;
    m_progress->setRange(0, 0);
    m_progress->setFormat(tr("Classifying…"));
    m_progress->setVisible(true);
    QPointer<QProgressBar> bar = m_progress;
    m_watcher.setFuture(QtConcurrent::run([this, paths, run, predictor, cancel, bar]() mutable {
        Job job;
        try {
            if (!predictor)
                predictor = std::make_shared<Predictor>(run.toStdString(), "auto");
            job.predictor = predictor;
            const auto sources = expandImagePaths(paths);
            job.predictions = predictor->predict(sources, 5, [this, cancel, bar](std::size_t done, std::size_t total) {
                QMetaObject::invokeMethod(this, [bar, done, total] {
                    if (bar) {
                        bar->setRange(0, static_cast<int>(total));
                        bar->setValue(static_cast<int>(done));
                    }
                }, Qt::QueuedConnection);
                return !*cancel;
            });
        } catch (const std::exception& e) {
            job.error = QString::fromStdString(e.what());
        }
        return job;
    }));
    m_predictorRun = run;
}

void PredictPage::onJobFinished()
{
    m_progress->setVisible(false);
    Job job = m_watcher.result();
    if (!job.error.isEmpty()) {
        m_predictor.reset();
        m_predictorRun.clear();
        Q_EMIT failed(tr("Could not classify the images: %1").arg(job.error));
        startNext();
        return;
    }
    m_predictor = job.predictor;
    std::vector<GridItem> added;
    for (Prediction& p : job.predictions) {
        const QString source = QString::fromStdString(p.source);
        if (!m_predictions.contains(source)) {
            m_order << source;
            added.push_back({source, QFileInfo(source).fileName(), source, false});
        }
        m_predictions.insert(source, std::move(p));
    }
    if (!added.empty())
        m_images->appendItems(std::move(added));
    updateCaptions();
    m_export->setEnabled(!m_predictions.isEmpty());
    if (job.predictions.empty())
        Q_EMIT failed(tr("No images were found in what was dropped (jpg, png, bmp, webp or tif)."));
    else if (m_images->currentIndex().row() < 0)
        m_images->setCurrentIndex(m_images->model()->index(m_images->count() - static_cast<int>(job.predictions.size()), 0));
    m_hint->setText(tr("%1 image(s) classified with %2. Select one to see its top-5 classes.")
                        .arg(m_predictions.size())
                        .arg(QFileInfo(m_predictorRun).fileName()));
    Q_EMIT predictionsReady(static_cast<int>(job.predictions.size()));
    startNext();
}

void PredictPage::updateCaptions()
{
    QStringList captions;
    QVector<bool> flagged;
    for (const QString& source : m_order) {
        const Prediction& p = m_predictions[source];
        if (!p.error.empty() || p.top.empty()) {
            captions << tr("unreadable");
            flagged << true;
        } else {
            captions << QStringLiteral("%1 %2 %").arg(QString::fromStdString(p.top.front().name))
                            .arg(100.0 * p.top.front().probability, 0, 'f', 0);
            flagged << false;
        }
    }
    m_images->gridModel()->setCaptions(captions, flagged);
}

void PredictPage::showSelected(const QString& source)
{
    const Prediction* p = prediction(source);
    m_previewCaption->setText(source);
    m_inspector->setRun(m_predictorRun);
    m_inspector->setSource(source);
    if (!p) {
        m_bars->setBars({});
        return;
    }
    QVector<ProbabilityBars::Bar> bars;
    for (const ClassScore& score : p->top)
        bars.push_back({QString::fromStdString(score.name), score.probability});
    m_bars->setBars(bars, QString::fromStdString(p->error));
}

bool PredictPage::exportCsv(const QString& path, QString* error) const
{
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Text)) {
        if (error)
            *error = tr("Cannot write %1: %2").arg(path, file.errorString());
        return false;
    }
    QTextStream out(&file);
    out << "image";
    for (int k = 1; k <= 5; ++k)
        out << ",class_" << k << ",probability_" << k;
    out << ",error\n";
    for (const QString& source : m_order) {
        const Prediction& p = m_predictions[source];
        out << csvField(source);
        for (std::size_t k = 0; k < 5; ++k) {
            if (k < p.top.size())
                out << ',' << csvField(QString::fromStdString(p.top[k].name)) << ',' << QString::number(p.top[k].probability, 'f', 6);
            else
                out << ",,";
        }
        out << ',' << csvField(QString::fromStdString(p.error)) << '\n';
    }
    out.flush();
    if (!file.commit()) {
        if (error)
            *error = tr("Cannot write %1: %2").arg(path, file.errorString());
        return false;
    }
    return true;
}

void PredictPage::dragEnterEvent(QDragEnterEvent* event)
{
    if (event->mimeData()->hasUrls())
        event->acceptProposedAction();
}

void PredictPage::dropEvent(QDropEvent* event)
{
    const QStringList paths = droppedLocalPaths(event->mimeData());
    if (paths.isEmpty())
        return;
    event->acceptProposedAction();
    addPaths(paths);
}

} // namespace vitlab::ui
