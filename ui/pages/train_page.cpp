#include "ui/pages/train_page.h"

#include "ui/training_worker.h"
#include "ui/widgets/training_charts.h"

#include <QDateTime>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QStyle>
#include <QVBoxLayout>

#include <cmath>

namespace vitlab::ui {

namespace {

QString clockText(double seconds)
{
    if (!(seconds >= 0.0))
        return QStringLiteral("--:--");
    const auto total = static_cast<qint64>(std::llround(seconds));
    if (total >= 3600)
        return QStringLiteral("%1:%2:%3").arg(total / 3600).arg((total / 60) % 60, 2, 10, QLatin1Char('0')).arg(total % 60, 2, 10, QLatin1Char('0'));
    return QStringLiteral("%1:%2").arg(total / 60, 2, 10, QLatin1Char('0')).arg(total % 60, 2, 10, QLatin1Char('0'));
}

QString outcomeText(RunOutcome outcome)
{
    switch (outcome) {
    case RunOutcome::Finished: return TrainPage::tr("Finished");
    case RunOutcome::Stopped: return TrainPage::tr("Stopped; the last checkpoint is kept and the run can be resumed");
    case RunOutcome::TimeLimit: return TrainPage::tr("Time limit reached; the run can be resumed");
    case RunOutcome::Diverged: return TrainPage::tr("Stopped: the loss became infinite or NaN. Try a lower learning rate.");
    case RunOutcome::OutOfMemory: return TrainPage::tr("Out of memory; the run can be resumed with a smaller batch");
    case RunOutcome::Failed: return TrainPage::tr("Failed");
    }
    return {};
}

} // namespace

TrainPage::TrainPage(TrainingWorker* worker, QWidget* parent)
    : QWidget(parent)
    , m_worker(worker)
    , m_plan(new QLabel(this))
    , m_runInfo(new QLabel(this))
    , m_start(new QPushButton(style()->standardIcon(QStyle::SP_MediaPlay), tr("Start"), this))
    , m_pause(new QPushButton(style()->standardIcon(QStyle::SP_MediaPause), tr("Pause"), this))
    , m_stop(new QPushButton(style()->standardIcon(QStyle::SP_MediaStop), tr("Stop"), this))
    , m_progress(new QProgressBar(this))
    , m_speed(new QLabel(this))
    , m_eta(new QLabel(this))
    , m_state(new QLabel(this))
    , m_charts(new TrainingCharts(this))
    , m_log(new QPlainTextEdit(this))
{
    m_plan->setObjectName(QStringLiteral("trainPlan"));
    m_runInfo->setObjectName(QStringLiteral("runInfo"));
    m_start->setObjectName(QStringLiteral("startButton"));
    m_pause->setObjectName(QStringLiteral("pauseButton"));
    m_stop->setObjectName(QStringLiteral("stopButton"));
    m_progress->setObjectName(QStringLiteral("trainProgress"));
    m_speed->setObjectName(QStringLiteral("speedLabel"));
    m_eta->setObjectName(QStringLiteral("etaLabel"));
    m_state->setObjectName(QStringLiteral("trainState"));
    m_log->setObjectName(QStringLiteral("eventLog"));

    QFont planFont = m_plan->font();
    planFont.setBold(true);
    planFont.setPointSizeF(planFont.pointSizeF() * 1.15);
    m_plan->setFont(planFont);
    m_plan->setWordWrap(true);
    m_runInfo->setWordWrap(true);
    m_runInfo->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_start->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Return));
    m_start->setToolTip(tr("Train the model chosen on the Model page on the data of the Data page (Ctrl+Enter)"));
    m_pause->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_P));
    m_stop->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Period));
    m_stop->setToolTip(tr("Stop after this batch and save a checkpoint; resume it later from the Runs page (Ctrl+.)"));
    m_progress->setRange(0, 1);
    m_progress->setValue(0);
    m_progress->setFormat(tr("step %v of %m"));
    m_log->setReadOnly(true);
    m_log->setMaximumBlockCount(2000);
    m_log->setPlaceholderText(tr("Events of the run appear here."));

    auto* buttons = new QHBoxLayout;
    buttons->addWidget(m_start);
    buttons->addWidget(m_pause);
    buttons->addWidget(m_stop);
    buttons->addSpacing(12);
    buttons->addWidget(m_progress, 1);
    buttons->addWidget(m_speed);
    buttons->addWidget(m_eta);

    auto* splitter = new QSplitter(Qt::Vertical, this);
    splitter->addWidget(m_charts);
    splitter->addWidget(m_log);
    splitter->setStretchFactor(0, 5);
    splitter->setStretchFactor(1, 1);
    splitter->setChildrenCollapsible(false);

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(m_plan);
    layout->addWidget(m_runInfo);
    layout->addLayout(buttons);
    layout->addWidget(m_state);
    layout->addWidget(splitter, 1);

    connect(m_start, &QPushButton::clicked, this, &TrainPage::startRequested);
    connect(m_pause, &QPushButton::clicked, this, [this] {
        if (m_worker->isPaused())
            m_worker->resumeTraining();
        else
            m_worker->pause();
    });
    connect(m_stop, &QPushButton::clicked, this, [this] {
        m_worker->requestStop();
        m_state->setText(tr("Stopping after this batch and saving a checkpoint…"));
        updateButtons();
    });

    connect(m_worker, &TrainingWorker::preparing, this, [this](const QString& stage, qint64 done, qint64 total) {
        m_state->setText(tr("Preparing the data: %1 %2 of %3").arg(stage).arg(done).arg(total));
        m_progress->setRange(0, static_cast<int>(std::max<qint64>(1, total)));
        m_progress->setFormat(tr("%1 %v of %m").arg(stage));
        m_progress->setValue(static_cast<int>(done));
    });
    connect(m_worker, &TrainingWorker::runStarted, this, &TrainPage::onRunStarted);
    connect(m_worker, &TrainingWorker::stepsReported, this, &TrainPage::onSteps);
    connect(m_worker, &TrainingWorker::epochReported, this, &TrainPage::onEpoch);
    connect(m_worker, &TrainingWorker::message, this, &TrainPage::appendLog);
    connect(m_worker, &TrainingWorker::finished, this, &TrainPage::onFinished);
    connect(m_worker, &TrainingWorker::failed, this, &TrainPage::onFailed);
    connect(m_worker, &TrainingWorker::runningChanged, this, [this](bool running) {
        if (running) {
            m_state->setText(m_worker->processes() > 1
                                 ? tr("Starting %1 processes and forming their group…").arg(m_worker->processes())
                                 : tr("Preparing the data…"));
            m_speed->clear();
            m_eta->clear();
        }
        updateButtons();
    });
    connect(m_worker, &TrainingWorker::pausedChanged, this, [this](bool paused) {
        appendLog(paused ? tr("paused") : tr("resumed"));
        m_state->setText(paused ? tr("Paused. Resume continues where it left off.") : tr("Training…"));
        updateButtons();
    });

    setPlan(tr("Choose data and a model, then start training. Loss and accuracy appear here as it runs."), false);
}

void TrainPage::setPlan(const QString& plan, bool ready)
{
    m_plan->setText(plan);
    m_ready = ready;
    updateButtons();
}

void TrainPage::updateButtons()
{
    const bool running = m_worker->isRunning();
    const bool stopping = m_worker->isStopping();
    m_start->setEnabled(!running && m_ready);
    m_pause->setEnabled(running && !stopping && m_worker->canPause());
    // Said once here, for every state: a group's run cannot pause.
    m_pause->setToolTip(running && !m_worker->canPause()
                            ? tr("A run of %1 processes cannot pause: Stop saves a checkpoint, and Resume on the Runs page "
                                 "continues it")
                                  .arg(m_worker->processes())
                            : tr("Pause after this batch; Resume continues exactly where it left off (Ctrl+P)"));
    m_pause->setText(m_worker->isPaused() ? tr("Resume") : tr("Pause"));
    m_pause->setIcon(style()->standardIcon(m_worker->isPaused() ? QStyle::SP_MediaPlay : QStyle::SP_MediaPause));
    m_stop->setEnabled(running && !stopping);
}

void TrainPage::appendLog(const QString& text)
{
    m_log->appendPlainText(QStringLiteral("%1  %2").arg(QTime::currentTime().toString(QStringLiteral("HH:mm:ss")), text));
}

QString TrainPage::logText() const
{
    return m_log->toPlainText();
}

void TrainPage::showHistory(const QString& runName, const std::vector<MetricsRow>& rows)
{
    if (m_worker->isRunning())
        return; // the live run keeps the charts
    m_charts->showHistory(rows);
    m_runInfo->setText(tr("Showing the stored run %1").arg(runName));
}

void TrainPage::onRunStarted(const RunStarted& run)
{
    m_charts->clear();
    m_charts->setEpochs(run.epochs);
    m_totalSteps = run.totalSteps;
    m_plan->setText(tr("Training %1").arg(QString::fromStdString(run.modelName)));
    m_runInfo->setText(tr("%1 on %2 (%3) · %4 M parameters (%5 M trainable) · %6 training and %7 validation "
                          "images in %8 classes · %9 of %10 steps\nRun folder: %11")
                           .arg(QString::fromStdString(run.modelName), QString::fromStdString(run.device),
                                QString::fromStdString(run.precision))
                           .arg(run.parameters / 1e6, 0, 'f', 2)
                           .arg(run.trainableParameters / 1e6, 0, 'f', 2)
                           .arg(run.trainImages)
                           .arg(run.validationImages)
                           .arg(run.classNames.size())
                           .arg(run.epochs == 1 ? tr("1 epoch") : tr("%1 epochs").arg(run.epochs))
                           .arg(run.stepsPerEpoch)
                           .arg(QString::fromStdString(run.runDirectory)));
    m_progress->setRange(0, static_cast<int>(std::max<std::int64_t>(1, run.totalSteps)));
    m_progress->setFormat(tr("step %v of %m"));
    m_progress->setValue(static_cast<int>(run.firstStep));
    m_state->setText(tr("Training…"));
    appendLog(run.firstStep > 0 ? tr("resumed %1 at step %2").arg(QString::fromStdString(run.runDirectory)).arg(run.firstStep)
                                : tr("started %1").arg(QString::fromStdString(run.runDirectory)));
    updateButtons();
}

void TrainPage::onSteps(const QVector<StepReport>& steps)
{
    m_charts->addSteps(steps);
    const StepReport& last = steps.back();
    m_progress->setValue(static_cast<int>(last.step));
    m_speed->setText(tr("%1 img/s").arg(last.imagesPerSecond, 0, 'f', 0));
    m_eta->setText(tr("ETA %1").arg(clockText(last.etaSeconds)));
    if (!m_worker->isPaused() && !m_worker->isStopping())
        m_state->setText(tr("Epoch %1 · step %2 · loss %3").arg(last.epoch).arg(last.step).arg(last.loss, 0, 'f', 4));
}

void TrainPage::onEpoch(const EpochReport& e)
{
    m_charts->addEpoch(e);
    appendLog(tr("epoch %1: train loss %2, accuracy %3% · validation loss %4, top-1 %5%, top-5 %6%%7")
                  .arg(e.epoch)
                  .arg(e.trainLoss, 0, 'f', 4)
                  .arg(100 * e.trainAccuracy, 0, 'f', 1)
                  .arg(e.validationLoss, 0, 'f', 4)
                  .arg(100 * e.validationTop1, 0, 'f', 2)
                  .arg(100 * e.validationTop5, 0, 'f', 2)
                  .arg(e.best ? tr(" (best so far)") : QString()));
}

void TrainPage::onFinished(const RunFinished& result)
{
    const QString text = outcomeText(result.outcome);
    m_state->setText(tr("%1 after %2 epochs, %3 steps; best validation top-1 %4%.")
                         .arg(text)
                         .arg(result.epochsDone)
                         .arg(result.stepsDone)
                         .arg(100 * result.bestTop1, 0, 'f', 2));
    appendLog(text); // the engine's own closing message came through onMessage already
    m_eta->clear();
    m_charts->replotNow();
    updateButtons();
}

void TrainPage::onFailed(const QString& reason)
{
    m_state->setText(tr("Training could not continue: %1").arg(reason));
    appendLog(tr("error: %1").arg(reason));
    updateButtons();
}

} // namespace vitlab::ui
