#include "core/train/trainer.h"

#include "core/data/dataset.h"
#include "core/data/loader.h"
#include "core/errors.h"
#include "core/hub/pretrained_files.h"
#include "core/models/weights.h"
#include "core/runtime.h"
#include "core/torch_compat.h"
#include "core/train/evaluator.h"
#include "core/train/execution.h"
#include "core/train/optimization.h"
#include "core/train/process_group.h"
#include "core/train/run_folder.h"
#include "core/train/run_model.h"
#include "core/train/run_position.h"
#include "core/train/time_budget.h"
#include "core/version.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <cstdio>
#include <limits>

namespace vitlab {

namespace {

using Clock = std::chrono::steady_clock;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

class Run {
public:
    Run(TrainConfig config, RunFolder folder, const TrainCallbacks& callbacks, TrainControl& control,
        TrainingGroup* group)
        : m_config(std::move(config))
        , m_folder(std::move(folder))
        , m_callbacks(callbacks)
        , m_control(control)
        , m_group(group)
        , m_device(resolveDevice(m_config.device))
        , m_precision(resolvePrecision(m_config.precision, m_device))
    {
        if (m_device.is_cuda())
            allowTf32(m_config.tf32);
        if (m_group)
            m_device = m_group->device(); // each rank's own GPU, or the CPU
        if (m_group && m_config.batchSize < m_group->size())
            throw ConfigError("a batch of " + std::to_string(m_config.batchSize) + " images cannot be shared by "
                              + std::to_string(m_group->size()) + " processes: choose --batch of at least "
                              + std::to_string(m_group->size()));
    }

    /// Data, model and optimiser for a fresh run (no resume state).
    void prepareNew();
    /// The same from the run folder's config and checkpoint, which was written at micro-batches
    /// of `previousBatchSize` images (the config's may differ, keeping the effective batch).
    void prepareResumed(std::int64_t previousBatchSize);
    RunFinished train();

private:
    /// Rank 0 of a group, or a single process: whoever writes the run folder.
    bool leads() const { return !m_group || m_group->leads(); }
    /// Joins the group once the optimiser is built (and loaded): rank 0's weights go everywhere.
    void joinGroup();
    /// The group's sums of `values` (a single process's own).
    std::vector<double> groupSum(std::vector<double> values) const;
    void message(const std::string& text) const
    {
        if (m_callbacks.onMessage)
            m_callbacks.onMessage(text);
    }
    void openData(std::int64_t channels, std::int64_t imageSize);
    void buildOptimization(Classifier model);
    void writeConfig();
    void loadTeacher();
    torch::Tensor classWeights() const;
    void reportStart() const;
    bool trainEpoch(RunFinished& finished);
    /// Ends the run after the device ran out of memory, with a checkpoint at the last completed
    /// step unless the optimiser step itself failed (its weights may be half-updated).
    RunFinished outOfMemory(const std::exception& error, bool duringStep);
    torch::Tensor teacherPredictions(const torch::Tensor& images) const;
    void endEpoch();
    void saveCheckpoint();
    void saveModelWeights(const std::filesystem::path& file) const;
    void saveStatus(const std::string& state, const std::string& text = {}) const;
    RunFinished finish(RunOutcome outcome, const std::string& text);
    double sessionSeconds() const;
    /// Seconds of the time budget left; only for a run with one.
    double budgetSecondsLeft() const;
    /// Whether this session fits a time budget: a new run with one (a resume keeps the fitted plan).
    bool fitsABudget() const { return m_config.budgetMinutes > 0.0 && m_startStep == 0; }
    /// Fits the epochs and the schedule to the time budget from the steps timed so far. The plan
    /// is recorded (config.json) and told only at the first fit and at epoch ends: between them
    /// a plan near an epoch's edge may swing by that epoch at every step.
    void fitToBudget(bool atEpochEnd);
    /// The learning-rate schedule over `totalSteps` steps.
    void setSchedule(std::int64_t totalSteps);

    TrainConfig m_config;
    RunFolder m_folder;
    const TrainCallbacks& m_callbacks;
    TrainControl& m_control;
    TrainingGroup* m_group = nullptr;
    torch::Device m_device;
    ComputePrecision m_precision;

    ModelSpec m_spec;
    std::unique_ptr<Dataset> m_data;
    std::unique_ptr<Optimization> m_optimization;
    std::unique_ptr<BatchLoader> m_trainLoader;
    LoaderOptions m_loaderOptions;
    Classifier m_teacher;
    LearningRateSchedule m_schedule;
    std::int64_t m_stepsPerEpoch = 0;
    Position m_position;
    std::vector<MetricsRow> m_metrics;

    Clock::time_point m_sessionStart = Clock::now();
    /// When the run began, data preparation included: what a time budget counts from.
    Clock::time_point m_runStart = Clock::now();
    double m_pausedSeconds = 0.0;
    /// Time budget: the recent steps' pace (timed from the first step's end, past its
    /// allocations), whether a plan has been fitted, and what config.json last recorded.
    StepPace m_pace;
    bool m_budgetFitted = false;
    int m_toldEpochs = 0;
    std::int64_t m_recordedTotalSteps = -1;
    /// Epoch ends (evaluation, checkpoint, reports): the last one's seconds, and this session's sum,
    /// which the step pace leaves out.
    double m_lastEpochEndSeconds = 0.0;
    /// The slowest of the last few epoch ends: what a plan reserves for each (one slow checkpoint
    /// write after a quick estimate cut the plan short at its last epoch end).
    std::deque<double> m_recentEpochEnds;
    double m_sessionEpochEndSeconds = 0.0;
    double m_startTrainSeconds = 0.0;
    std::int64_t m_startStep = 0;
};

double Run::sessionSeconds() const
{
    return std::chrono::duration<double>(Clock::now() - m_sessionStart).count() - m_pausedSeconds;
}

double Run::budgetSecondsLeft() const
{
    const double spent = std::chrono::duration<double>(Clock::now() - m_runStart).count() - m_pausedSeconds;
    return m_config.budgetMinutes * 60.0 - spent;
}

void Run::fitToBudget(bool atEpochEnd)
{
    double perStep = m_pace.secondsPerStep();
    // Until an epoch has ended: its forward passes cost about a third of a training step each,
    // plus the checkpoint.
    const double imagesPerStep = static_cast<double>(m_config.batchSize * m_config.accumulation);
    double epochEnd = !m_recentEpochEnds.empty()
                        ? *std::max_element(m_recentEpochEnds.begin(), m_recentEpochEnds.end())
                        : static_cast<double>(m_data->validationSamples().size()) * perStep / imagesPerStep / 3.0 + 0.5;
    double secondsLeft = budgetSecondsLeft();
    if (m_group) {
        // Every rank must fit the same plan: rank 0's clock decides.
        const bool leader = m_group->leads();
        const auto agreed = groupSum({leader ? perStep : 0.0, leader ? epochEnd : 0.0, leader ? secondsLeft : 0.0});
        perStep = agreed[0];
        epochEnd = agreed[1];
        secondsLeft = agreed[2];
    }
    if (perStep <= 0.0)
        return;
    if (m_budgetFitted && m_position.step >= m_schedule.totalSteps)
        return; // the decay has ended: the run ends with this epoch's end, not with a rate rising again
    // 3% of what is left is kept for noise; every step refits, so a slower machine shortens the
    // plan at once and the decay still ends with the run.
    const auto plan = planWithinBudget(m_position.step, m_position.epoch - 1, m_stepsPerEpoch, perStep, epochEnd,
                                       0.97 * secondsLeft);
    const bool first = !m_budgetFitted;
    m_budgetFitted = true;
    if (first || plan.totalSteps != m_schedule.totalSteps) {
        m_config.epochs = plan.epochs;
        m_config.totalSteps = plan.totalSteps;
        setSchedule(plan.totalSteps);
    }
    if (!first && (!atEpochEnd || plan.epochs == m_toldEpochs))
        return; // config.json follows with the next checkpoint
    m_toldEpochs = plan.epochs;
    writeConfig(); // a resume continues the fitted schedule
    const auto lastSteps = lastEpochSteps(plan.totalSteps, plan.epochs, m_stepsPerEpoch);
    char text[256];
    std::snprintf(text, sizeof text,
                  "time budget of %s minutes: %d epochs fit, %lld steps%s (%.0f ms per step, %.1f s per evaluation)",
                  exact(m_config.budgetMinutes).c_str(), plan.epochs, static_cast<long long>(plan.totalSteps),
                  lastSteps < m_stepsPerEpoch ? (", the last epoch " + std::to_string(lastSteps) + " of "
                                                      + std::to_string(m_stepsPerEpoch) + " steps").c_str()
                                                   : "",
                  1e3 * perStep, epochEnd);
    message(text);
}

void Run::setSchedule(std::int64_t totalSteps)
{
    m_schedule.totalSteps = totalSteps;
    m_schedule.warmupSteps = std::min<std::int64_t>(
        totalSteps / 2, std::llround(m_config.warmupEpochs * static_cast<double>(m_stepsPerEpoch)));
}

void Run::openData(std::int64_t channels, std::int64_t imageSize)
{
    DatasetOptions options;
    options.storageSide = storageSideFor(imageSize);
    options.channels = channels;
    options.validationFraction = m_config.validationFraction;
    options.splitSeed = m_config.splitSeed;
    options.progress = [this](const std::string& stage, std::size_t done, std::size_t total) {
        if (m_callbacks.onPreparing)
            m_callbacks.onPreparing(stage, done, total);
        return !m_control.stopRequested();
    };
    m_data = std::make_unique<Dataset>(Dataset::open(m_config.data, options));
    if (m_data->cancelled())
        throw Error("stopped while the data was being prepared");
    for (const auto& skipped : m_data->report().skipped)
        message("skipped " + skipped.path + ": " + skipped.reason);
    if (m_data->trainSamples().empty())
        throw ConfigError("the dataset has no training images");
}

torch::Tensor Run::classWeights() const
{
    if (!m_config.classWeights)
        return {};
    const auto counts = m_data->trainClassCounts();
    std::int64_t total = 0;
    for (const auto count : counts)
        total += count;
    std::vector<float> weights;
    for (const auto count : counts)
        weights.push_back(count > 0 ? static_cast<float>(total) / static_cast<float>(counts.size() * count) : 0.0f);
    return torch::tensor(weights).to(m_device);
}

void Run::buildOptimization(Classifier model)
{
    applyFreeze(*model, parseFreezeSpec(m_config.freeze));
    model->to(m_device);
    OptimizationOptions options;
    options.weightDecay = m_config.weightDecay;
    options.clipGradNorm = m_config.clipGradNorm;
    options.accumulation = m_config.accumulation;
    options.emaDecay = m_config.emaDecay;
    options.precision = m_precision;
    options.device = m_device;
    options.classWeights = classWeights();
    m_optimization = std::make_unique<Optimization>(model, options, [this] { return createModel(m_spec); });

    m_loaderOptions.batchSize = m_config.batchSize;
    m_loaderOptions.shuffle = true;
    m_loaderOptions.dropLast = m_data->trainSamples().size() > static_cast<std::size_t>(m_config.batchSize);
    m_loaderOptions.training = true;
    m_loaderOptions.workers = m_config.workers;
    m_loaderOptions.seed = m_config.seed;
    m_loaderOptions.pinMemory = m_device.is_cuda();
    m_loaderOptions.augment = trainingView(m_config, m_spec);
    if (m_group) {
        m_loaderOptions.shardIndex = m_group->rank();
        m_loaderOptions.shardCount = m_group->size();
    }
    m_trainLoader = std::make_unique<BatchLoader>(m_data->images(), m_data->labels(), m_data->trainSamples(),
                                                  m_loaderOptions);
    const auto batches = static_cast<std::int64_t>(m_trainLoader->batchesPerEpoch());
    m_stepsPerEpoch = std::max<std::int64_t>(1, batches / m_config.accumulation);
    m_schedule.peak = m_config.learningRate;
    m_schedule.minimum = m_config.minLearningRate;
    setSchedule(m_config.totalSteps > 0 ? m_config.totalSteps : m_stepsPerEpoch * m_config.epochs);
    loadTeacher();
}

void Run::loadTeacher()
{
    if (m_config.teacherRun.empty())
        return;
    auto teacher = loadRun(m_config.teacherRun, m_device);
    if (teacher.classNames != m_data->classNames())
        throw ConfigError("the teacher run " + m_config.teacherRun + " was trained on other classes");
    if (teacher.spec.input.channels != m_spec.input.channels)
        throw ConfigError("the teacher reads " + std::to_string(teacher.spec.input.channels)
                          + "-channel images, the student " + std::to_string(m_spec.input.channels));
    if (m_config.classWeights)
        message("class weights apply to the label loss only; hard distillation uses plain cross-entropy");
    for (auto& parameter : teacher.model->parameters())
        parameter.set_requires_grad(false);
    m_teacher = teacher.model;
}

void Run::writeConfig()
{
    m_recordedTotalSteps = m_config.totalSteps;
    if (!leads())
        return;
    const nlohmann::json data = {{"request", m_config.data},
                                 {"directory", m_data->location().directory.string()},
                                 {"display_name", m_data->location().displayName},
                                 {"train_images", m_data->trainSamples().size()},
                                 {"validation_images", m_data->validationSamples().size()}};
    m_folder.writeConfig({{"vitlab_version", VITLAB_VERSION_STRING},
                          {"train", m_config.toJson()},
                          {"model", specToConfig(m_spec)},
                          {"classes", m_data->classNames()},
                          {"data", data}});
    m_folder.writeClasses(m_data->classNames());
}

void Run::prepareNew()
{
    auto spec = runModelSpec(m_config, 2); // the class count is set once the data is read
    const auto imageSize = spec.input.size[0];
    if (spec.input.size[0] != spec.input.size[1])
        throw ConfigError("training takes square images; the model is built for "
                          + std::to_string(spec.input.size[0]) + "x" + std::to_string(spec.input.size[1]));
    openData(spec.input.channels, imageSize);
    m_spec = runModelSpec(m_config, static_cast<std::int64_t>(m_data->classNames().size()));
    torch::manual_seed(static_cast<std::uint64_t>(m_config.seed));
    Classifier model;
    if (!m_config.weights.empty()) {
        WeightsReport report;
        const auto file = hub::isHubWeights(m_config.weights)
                            ? hub::requireCachedPretrainedFiles(m_config.weights, m_spec.name).weights
                            : std::filesystem::path(m_config.weights);
        model = createModelWithWeights(m_spec, file, {}, &report);
        message("loaded " + m_config.weights + ": " + report.summary());
    } else {
        model = createModel(m_spec);
    }
    buildOptimization(model);
    joinGroup();
    writeConfig();
    m_metrics.clear();
    saveStatus("running");
}

void Run::joinGroup()
{
    if (!m_group)
        return;
    m_optimization->joinGroup(*m_group);
    if (leads())
        message("training in a group of " + std::to_string(m_group->size()) + " processes ("
                + m_group->launch().launcher + "), each with " + std::to_string(m_config.batchSize / m_group->size())
                + (m_config.batchSize % m_group->size() ? "-" + std::to_string(m_config.batchSize / m_group->size() + 1)
                                                        : std::string())
                + " of every batch's " + std::to_string(m_config.batchSize) + " images");
}

std::vector<double> Run::groupSum(std::vector<double> values) const
{
    if (!m_group)
        return values;
    auto tensor = torch::tensor(values, torch::kFloat64);
    m_group->allreduceSum(tensor);
    const auto* sums = tensor.data_ptr<double>();
    return {sums, sums + values.size()};
}

void Run::prepareResumed(std::int64_t previousBatchSize)
{
    const auto stored = m_folder.readConfig();
    if (!stored.contains("model") || !stored.contains("train"))
        throw FormatError(m_folder.configPath().string() + " does not describe a training run");
    m_spec = specFromConfig(stored["model"]);
    openData(m_spec.input.channels, m_spec.input.size[0]);
    const auto classes = stored.value("classes", std::vector<std::string>{});
    if (classes != m_data->classNames())
        throw ConfigError("the data in " + m_config.data + " no longer has the classes this run was trained on");
    buildOptimization(createModel(m_spec));
    const auto state = safetensors::load(m_folder.resumeStatePath());
    m_position = positionFromMetadata(state.metadata, m_folder.resumeStatePath().string());
    if (previousBatchSize != m_config.batchSize) {
        // Checkpoints fall on optimiser steps, so the images consumed divide into new batches;
        // the epoch's order does not depend on the batch size.
        m_position.batch = m_position.batch * static_cast<std::size_t>(previousBatchSize)
            / static_cast<std::size_t>(m_config.batchSize);
        auto updated = stored;
        updated["train"] = m_config.toJson();
        if (leads())
            m_folder.writeConfig(updated);
        message("resuming at batches of " + std::to_string(m_config.batchSize) + " x "
                + std::to_string(m_config.accumulation) + " (was " + std::to_string(previousBatchSize) + ")");
    }
    m_optimization->loadState(state.tensors, m_position.step, m_position.skippedSteps);
    // Rows logged after the checkpoint are replayed by this session.
    for (const auto& row : m_folder.readMetrics()) {
        if (row.step <= m_position.step && (row.kind == "step" || row.epoch < m_position.epoch))
            m_metrics.push_back(row);
    }
    m_startTrainSeconds = m_position.trainSeconds;
    joinGroup();
    message("resumed at epoch " + std::to_string(m_position.epoch) + ", step " + std::to_string(m_position.step));
    saveStatus("running");
}

void Run::reportStart() const
{
    if (!m_callbacks.onStart)
        return;
    RunStarted started;
    started.runDirectory = m_folder.directory().string();
    started.modelName = m_spec.name.empty() ? m_config.model : m_spec.name;
    started.classNames = m_data->classNames();
    started.trainImages = static_cast<std::int64_t>(m_data->trainSamples().size());
    started.validationImages = static_cast<std::int64_t>(m_data->validationSamples().size());
    started.parameters = countParameters(*m_optimization->model());
    started.trainableParameters = countParameters(*m_optimization->model(), /*trainableOnly=*/true);
    started.totalSteps = m_schedule.totalSteps;
    started.firstStep = m_position.step;
    started.epochs = m_config.epochs;
    started.stepsPerEpoch = m_stepsPerEpoch;
    started.device = m_device.str();
    started.precision = m_precision.name();
    m_callbacks.onStart(started);
}

void Run::saveStatus(const std::string& state, const std::string& text) const
{
    if (!leads())
        return;
    RunStatus status;
    status.state = state;
    status.message = text;
    status.epoch = m_position.batch == 0 ? m_position.epoch - 1 : m_position.epoch;
    status.step = m_position.step;
    status.epochs = m_config.epochs;
    status.bestTop1 = std::max(0.0, m_position.bestTop1);
    status.pid = static_cast<int>(::getpid());
    m_folder.writeStatus(status);
}

void Run::saveCheckpoint()
{
    // Order matters for a kill at any moment: metrics first (a resume drops rows past its
    // checkpoint), then the resume state, then the weights people use.
    m_position.trainSeconds = m_startTrainSeconds + sessionSeconds();
    if (!leads())
        return;
    if (m_config.totalSteps != m_recordedTotalSteps)
        writeConfig(); // a budget's refit since the last record
    m_folder.writeMetrics(m_metrics);
    safetensors::save(m_folder.resumeStatePath(), m_optimization->state(), positionMetadata(m_position));
    saveModelWeights(m_folder.lastWeightsPath());
}

void Run::saveModelWeights(const std::filesystem::path& file) const
{
    if (!leads())
        return;
    // Only timm's keys as tensors, so timm loads the file as it is; our facts ride in the header.
    const nlohmann::json classes = m_data->classNames();
    saveWeights(*m_optimization->evaluationModel(), file,
                {{"format", "pt"},
                 {"vitlab_version", VITLAB_VERSION_STRING},
                 {"vitlab_model", specToConfig(m_spec).dump()},
                 {"vitlab_classes", classes.dump()},
                 {"vitlab_step", std::to_string(m_position.step)}});
}

RunFinished Run::finish(RunOutcome outcome, const std::string& text)
{
    RunFinished finished;
    finished.outcome = outcome;
    finished.message = text;
    finished.runDirectory = m_folder.directory().string();
    finished.epochsDone = m_position.epoch - 1;
    finished.stepsDone = m_position.step;
    finished.bestTop1 = std::max(0.0, m_position.bestTop1);
    saveStatus(outcomeName(outcome), text);
    message(text);
    if (m_group && leads() && m_position.step > m_startStep) {
        // What the group costs rank 0: its time blocked on the others (exchanges not hidden by backward).
        const double waited = m_group->takeWaitSeconds();
        const auto steps = static_cast<double>(m_position.step - m_startStep);
        char figures[160];
        std::snprintf(figures, sizeof figures, "rank 0 waited on the group %.1f ms per step (%.1f%% of the session)",
                      1e3 * waited / steps, 100.0 * waited / std::max(1e-9, sessionSeconds()));
        message(figures);
    }
    return finished;
}

torch::Tensor Run::teacherPredictions(const torch::Tensor& images) const
{
    c10::InferenceMode inference;
    compat::AutocastGuard autocast(m_device.type(), m_precision.dtype, m_precision.autocasts());
    auto teacherImages = images;
    const auto teacherSize = m_teacher->imageSize();
    if (teacherSize[0] != images.size(2) || teacherSize[1] != images.size(3))
        teacherImages = torch::nn::functional::interpolate(
            images, torch::nn::functional::InterpolateFuncOptions()
                        .size(std::vector<std::int64_t>{teacherSize[0], teacherSize[1]})
                        .mode(torch::kBilinear)
                        .align_corners(false));
    return m_teacher->forward(teacherImages).to(torch::kFloat32).clone();
}

RunFinished Run::outOfMemory(const std::exception& error, bool duringStep)
{
    m_optimization->discardGradients();
    releaseCachedDeviceMemory();
    if (!duringStep)
        saveCheckpoint();
    const auto batch = m_config.batchSize;
    const auto smaller = std::max<std::int64_t>(1, batch / 2);
    std::error_code ignored;
    const bool resumable = std::filesystem::exists(m_folder.resumeStatePath(), ignored);
    std::string advice = resumable ? "resume with a smaller batch: vitlab-cli train --resume " + m_folder.directory().string()
                                         + " --batch " + std::to_string(smaller)
                                   : "there is no checkpoint yet: train again with --batch " + std::to_string(smaller);
    if (smaller * 2 == batch)
        advice += " --accumulate " + std::to_string(m_config.accumulation * 2) + " (the same effective batch of "
            + std::to_string(batch * m_config.accumulation) + ")";
    std::string what = error.what();
    what = what.substr(0, what.find('\n'));
    return finish(RunOutcome::OutOfMemory,
                  "out of memory on " + m_device.str() + " at batch size " + std::to_string(batch) + " (step "
                      + std::to_string(m_position.step) + "): " + what + ". "
                      + (!resumable ? "" : duringStep ? "The checkpoint before this step is kept; " : "The run is saved; ")
                      + advice);
}

bool Run::trainEpoch(RunFinished& finished)
{
    const int epoch = m_position.epoch;
    const auto batchesUsed = static_cast<std::size_t>(m_stepsPerEpoch * m_config.accumulation);
    const auto classes = static_cast<std::int64_t>(m_data->classNames().size());
    m_trainLoader->startEpoch(epoch, m_position.batch);
    auto lastReport = Clock::now();
    double reportLossSum = 0.0;
    std::int64_t reportBatches = 0, reportImages = 0;
    const double limitSeconds = m_config.maxMinutes * 60.0;
    Position groupStartPosition = m_position;

    for (std::size_t batchIndex = m_position.batch; batchIndex < batchesUsed; ++batchIndex) {
        const bool groupStart = batchIndex % static_cast<std::size_t>(m_config.accumulation) == 0;
        if (groupStart) {
            if (m_group && m_control.paused()) {
                // The others would wait on this rank past the group's timeout.
                m_control.resume();
                message("a run of several processes cannot pause: stop it and resume later instead");
            }
            if (m_control.paused()) {
                saveStatus("paused");
                message("paused");
                const auto pauseStart = Clock::now();
                m_control.waitWhilePaused();
                m_pausedSeconds += std::chrono::duration<double>(Clock::now() - pauseStart).count();
                lastReport = Clock::now();
                if (!m_control.stopRequested()) {
                    saveStatus("running");
                    message("resumed");
                }
            }
            // In a group, any rank's stop stops all, and rank 0's clock ends the session for all.
            const bool timeUp = limitSeconds > 0.0 && sessionSeconds() >= limitSeconds && leads();
            const auto agreed = groupSum({m_control.stopRequested() ? 1.0 : 0.0, timeUp ? 1.0 : 0.0});
            if (m_group)
                m_group->setProgress(m_position.step);
            if (agreed[0] > 0.0) {
                saveCheckpoint();
                finished = finish(RunOutcome::Stopped, "stopped at epoch " + std::to_string(epoch) + ", step "
                                      + std::to_string(m_position.step) + "; resume to continue");
                return false;
            }
            if (agreed[1] > 0.0) {
                saveCheckpoint();
                finished = finish(RunOutcome::TimeLimit, "time limit of " + exact(m_config.maxMinutes)
                                      + " minutes reached at step " + std::to_string(m_position.step)
                                      + "; resume to continue");
                return false;
            }
            groupStartPosition = m_position;
        }
        bool stepping = false;
        double learningRate = 0.0;
        try {
            // Inside: the loader's workers allocate the batch, and may run out of memory too.
            const auto batch = m_trainLoader->next();
            if (!batch)
                break;
            const auto seed = batchSeed(m_config.seed, epoch, batchIndex);
            torch::manual_seed(seed);
            std::mt19937_64 mixing(seed);
            auto images = batch->images.to(m_device, /*non_blocking=*/true);
            const auto labels = batch->labels.to(m_device, /*non_blocking=*/true);
            const auto targets = mixBatch(images, labels, classes, m_config.mixup, m_config.cutmix, 0.5,
                                          m_config.labelSmoothing, mixing);
            const auto teacherLogits = m_teacher ? teacherPredictions(images) : torch::Tensor();
            const auto shareImages = static_cast<double>(batch->samples.size());
            // The group's mean gradient must be the whole batch's: shares may differ by an image.
            const double lossWeight = m_group ? shareImages * m_group->size() / static_cast<double>(batch->groupImages) : 1.0;
            auto outcome = m_optimization->accumulate(images, targets, labels, teacherLogits, lossWeight);
            // The batch's figures over the group: loss summed per image, correct, images.
            double lossSum = outcome.loss * shareImages;
            auto batchImages = static_cast<std::int64_t>(batch->samples.size());
            if (m_group) {
                const auto sums = groupSum({outcome.finite ? lossSum : kNaN, static_cast<double>(outcome.correct), shareImages});
                lossSum = sums[0];
                batchImages = std::llround(sums[2]);
                outcome.loss = lossSum / sums[2];
                outcome.correct = std::llround(sums[1]);
                outcome.finite = std::isfinite(outcome.loss);
            }
            if (!outcome.finite) {
                m_optimization->discardGradients();
                finished = finish(RunOutcome::Diverged,
                                  "the training loss became " + exact(outcome.loss) + " at epoch " + std::to_string(epoch)
                                      + ", step " + std::to_string(m_position.step)
                                      + "; the run stopped and its last checkpoint is kept. Try a lower learning rate.");
                return false;
            }
            m_position.epochLossSum += lossSum;
            m_position.epochCorrect += outcome.correct;
            m_position.epochSeen += batchImages;
            ++m_position.epochBatches;
            reportLossSum += outcome.loss;
            ++reportBatches;
            reportImages += batchImages;
            if ((batchIndex + 1) % static_cast<std::size_t>(m_config.accumulation) != 0)
                continue;

            // Until a budget's plan is fitted the rate holds after its warm-up: the decay waits
            // for the plan (with epochs of a few steps, the one epoch asked for would decay in full).
            learningRate = m_schedule.at(fitsABudget() && !m_budgetFitted
                                             ? std::min(m_position.step, m_schedule.warmupSteps)
                                             : m_position.step);
            stepping = true;
            if (m_optimization->step(learningRate).skipped)
                ++m_position.skippedSteps;
        } catch (const std::exception& error) {
            if (!isOutOfMemory(error))
                throw;
            // The group's batches are done again on resume: their sums go with them.
            m_position = groupStartPosition;
            finished = outOfMemory(error, stepping);
            return false;
        }
        ++m_position.step;
        m_position.batch = batchIndex + 1;
        if (fitsABudget()) {
            // A new run's plan is fitted after 20 timed steps, then refitted at every step.
            m_pace.record(m_position.step, sessionSeconds() - m_sessionEpochEndSeconds);
            if (m_budgetFitted || m_pace.stepsTimed() >= 20)
                fitToBudget(/*atEpochEnd=*/false);
        }
        const bool lastStep = m_position.step >= m_schedule.totalSteps;
        if (m_position.step % m_config.logEvery == 0 || m_position.batch == batchesUsed || lastStep) {
            const double sinceReport = std::chrono::duration<double>(Clock::now() - lastReport).count();
            lastReport = Clock::now();
            StepReport report;
            report.epoch = epoch;
            report.step = m_position.step;
            report.totalSteps = m_schedule.totalSteps;
            report.loss = reportLossSum / static_cast<double>(std::max<std::int64_t>(1, reportBatches));
            report.learningRate = learningRate;
            report.imagesPerSecond = sinceReport > 0.0 ? static_cast<double>(reportImages) / sinceReport : 0.0;
            report.elapsedSeconds = m_startTrainSeconds + sessionSeconds();
            const auto stepsThisSession = m_position.step - m_startStep;
            if (stepsThisSession > 0) {
                // A budget's plan goes by the recent pace, as its fit does.
                const double perStep = m_budgetFitted ? m_pace.secondsPerStep()
                                                      : (sessionSeconds() - m_sessionEpochEndSeconds)
                                                            / static_cast<double>(stepsThisSession);
                const auto remainingSteps = m_schedule.totalSteps - m_position.step;
                const auto remainingEpochs = m_config.epochs - epoch + 1;
                report.etaSeconds = perStep * static_cast<double>(remainingSteps)
                    + m_lastEpochEndSeconds * static_cast<double>(remainingEpochs);
            }
            if (fitsABudget() && !m_budgetFitted)
                report.etaSeconds = std::max(0.0, budgetSecondsLeft()); // the budget is the plan until fitted
            MetricsRow row{"step", epoch, m_position.step, report.elapsedSeconds, learningRate, report.loss,
                           report.imagesPerSecond, kNaN, kNaN, kNaN, kNaN};
            row.skippedSteps = m_position.skippedSteps;
            row.lossScale = m_optimization->lossScale().value_or(kNaN);
            m_metrics.push_back(row);
            reportLossSum = 0.0;
            reportBatches = reportImages = 0;
            if (m_callbacks.onStep)
                m_callbacks.onStep(report);
        }
        if (lastStep)
            break; // a budget's last epoch may end early
    }
    return true;
}

void Run::endEpoch()
{
    const int epoch = m_position.epoch;
    EvaluateOptions options;
    options.batchSize = std::max<std::int64_t>(m_config.batchSize, 64);
    options.precision = m_precision;
    options.device = m_device;
    options.workers = m_config.workers;
    options.group = m_group;
    const auto& samples = m_data->validationSamples().empty() ? m_data->trainSamples() : m_data->validationSamples();
    auto model = m_optimization->evaluationModel();
    auto evaluation = evaluateModel(*model, *m_data, samples, evaluationView(m_spec), options);

    EpochReport report;
    report.epoch = epoch;
    report.step = m_position.step;
    report.trainLoss = m_position.epochLossSum / static_cast<double>(std::max<std::int64_t>(1, m_position.epochSeen));
    report.trainAccuracy = static_cast<double>(m_position.epochCorrect)
        / static_cast<double>(std::max<std::int64_t>(1, m_position.epochSeen));
    report.validationLoss = evaluation.loss;
    report.validationTop1 = evaluation.top1;
    report.validationTop5 = evaluation.top5;
    report.learningRate = m_schedule.at(std::max<std::int64_t>(0, m_position.step - 1));
    report.elapsedSeconds = m_startTrainSeconds + sessionSeconds();
    report.best = evaluation.top1 > m_position.bestTop1;
    MetricsRow row{"epoch", epoch, m_position.step, report.elapsedSeconds, report.learningRate, report.trainLoss,
                   kNaN, report.trainAccuracy, report.validationLoss, report.validationTop1, report.validationTop5};
    row.skippedSteps = m_position.skippedSteps;
    row.lossScale = m_optimization->lossScale().value_or(kNaN);
    m_metrics.push_back(row);

    m_position.epoch = epoch + 1;
    m_position.batch = 0;
    m_position.epochLossSum = 0.0;
    m_position.epochCorrect = m_position.epochSeen = m_position.epochBatches = 0;
    if (report.best)
        m_position.bestTop1 = evaluation.top1;
    saveCheckpoint();
    if (report.best) {
        saveModelWeights(m_folder.bestWeightsPath());
        if (leads())
            m_folder.writeEvaluation(evaluation);
    }
    saveStatus("running");
    if (m_callbacks.onEpoch)
        m_callbacks.onEpoch(report);
    if (m_callbacks.onEvaluation)
        m_callbacks.onEvaluation(evaluation);
}

RunFinished Run::train()
{
    m_startStep = m_position.step;
    m_sessionStart = Clock::now();
    reportStart();
    RunFinished finished;
    while (m_position.epoch <= m_config.epochs) {
        if (!trainEpoch(finished))
            return finished;
        const double endStart = sessionSeconds();
        endEpoch();
        m_lastEpochEndSeconds = sessionSeconds() - endStart;
        m_sessionEpochEndSeconds += m_lastEpochEndSeconds;
        m_recentEpochEnds.push_back(m_lastEpochEndSeconds);
        if (m_recentEpochEnds.size() > 3)
            m_recentEpochEnds.pop_front();
        if (fitsABudget())
            fitToBudget(/*atEpochEnd=*/true); // with this epoch end timed (and fitted here first when an epoch is under 20 steps)
    }
    char best[32];
    std::snprintf(best, sizeof best, "%.2f%%", 100.0 * std::max(0.0, m_position.bestTop1));
    const auto partial = lastEpochSteps(m_schedule.totalSteps, m_config.epochs, m_stepsPerEpoch);
    const auto partialText = partial < m_stepsPerEpoch ? " (the last " + std::to_string(partial) + " of "
                                                             + std::to_string(m_stepsPerEpoch) + " steps)"
                                                       : std::string();
    return finish(RunOutcome::Finished, "finished " + std::to_string(m_config.epochs) + " epochs" + partialText
                                            + "; best validation top-1 " + best);
}

/// Joins the group, if any: on the CPU, or with CUDA one GPU per process of this node (its local rank).
std::unique_ptr<TrainingGroup> joinGroup(const std::optional<GroupOptions>& group, const std::string& deviceName,
                                         const TrainControl& control)
{
    if (!group || !group->launch.distributed())
        return nullptr;
    auto device = resolveDevice(deviceName);
    if (device.is_cuda()) {
        const auto gpus = static_cast<int>(torch::cuda::device_count());
        if (group->launch.localRank >= gpus)
            throw ConfigError("rank " + std::to_string(group->launch.rank) + " is process " + std::to_string(group->launch.localRank)
                              + " of its node, which has " + std::to_string(gpus)
                              + " GPUs: start one process per GPU (or train with --device cpu)");
        device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(group->launch.localRank));
    }
    const auto timeout = std::chrono::milliseconds(std::llround(group->timeoutSeconds * 1000.0));
    const auto abandon = [&]() -> std::string {
        if (control.stopRequested())
            return "stopped before the group of " + std::to_string(group->launch.worldSize)
                   + " processes formed: nothing was trained or saved";
        return group->abandon ? group->abandon() : std::string();
    };
    return TrainingGroup::join(group->launch, timeout, device, abandon);
}

/// Runs `body`, recording any error in the run's status before passing it on (rank 0's only).
template <typename Body>
RunFinished recordingFailures(const RunFolder& folder, bool leads, Body&& body)
{
    try {
        return body();
    } catch (const std::exception& error) {
        if (!leads)
            throw;
        try {
            RunStatus status = folder.readStatus();
            status.state = "failed";
            status.message = error.what();
            folder.writeStatus(status);
        } catch (const std::exception&) {
            // The original error matters more than a status that could not be written.
        }
        throw;
    }
}

} // namespace

RunFinished trainRun(const TrainConfig& config, const TrainCallbacks& callbacks, TrainControl& control,
                     const std::optional<GroupOptions>& groupOptions)
{
    config.validate();
    // Checked before a run folder is made: an unknown model or device leaves nothing behind.
    resolveModelSpec(config.model);
    resolveDevice(config.device);
    resolveDatasetLocation(config.data);
    parseFreezeSpec(config.freeze);
    const auto runsDirectory = config.runsDirectory.empty() ? defaultRunsDirectory()
                                                            : std::filesystem::path(config.runsDirectory);
    const auto group = joinGroup(groupOptions, config.device, control);
    const bool leads = !group || group->leads();
    // Rank 0 makes the folder; the others only learn its name.
    auto folder = leads ? RunFolder::create(runsDirectory, config.runName, config.model) : RunFolder(runsDirectory);
    if (group)
        folder = RunFolder(runsDirectory / group->broadcastText(folder.name()));
    TrainConfig stored = config;
    stored.runName = folder.name();
    stored.runsDirectory = runsDirectory.string();
    return recordingFailures(folder, leads, [&] {
        Run run(stored, folder, callbacks, control, group.get());
        run.prepareNew();
        return run.train();
    });
}

RunFinished resumeRun(const std::filesystem::path& runDirectory, const TrainCallbacks& callbacks,
                      TrainControl& control, const ResumeOptions& options)
{
    // Every rank reads the run folder; rank 0 alone writes it.
    auto folder = RunFolder::open(runDirectory);
    std::error_code error;
    if (!std::filesystem::exists(folder.resumeStatePath(), error))
        throw IoError("the run " + folder.name() + " has no checkpoint to resume from (it stopped before its first)");
    auto config = TrainConfig::fromJson(folder.readConfig().value("train", nlohmann::json::object()));
    if (options.maxMinutes)
        config.maxMinutes = *options.maxMinutes;
    const auto previousBatchSize = config.batchSize;
    if (options.batchSize || options.accumulation) {
        const auto effective = config.batchSize * config.accumulation;
        const auto batch = options.batchSize.value_or(config.batchSize);
        const auto accumulation = options.accumulation.value_or(
            static_cast<int>(batch > 0 && effective % batch == 0 ? effective / batch : 0));
        if (batch < 1 || accumulation < 1 || batch * accumulation != effective)
            throw ConfigError("the run steps on batches of " + std::to_string(effective) + " images ("
                              + std::to_string(config.batchSize) + " x " + std::to_string(config.accumulation)
                              + "); a resumed run keeps that: choose --batch and --accumulate whose product is "
                              + std::to_string(effective));
        config.batchSize = batch;
        config.accumulation = accumulation;
    }
    config.validate();
    const auto group = joinGroup(options.group, config.device, control);
    const bool leads = !group || group->leads();
    if (leads)
        folder.removeStaleTemporaryFiles();
    return recordingFailures(folder, leads, [&] {
        Run run(config, folder, callbacks, control, group.get());
        run.prepareResumed(previousBatchSize);
        return run.train();
    });
}

} // namespace vitlab
