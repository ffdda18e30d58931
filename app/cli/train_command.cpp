#include "app/cli/commands.h"
#include "app/cli/hub_weights.h"
#include "app/cli/process_launcher.h"

#include "core/hub/pretrained_files.h"

#include "core/errors.h"
#include "core/train/execution.h"
#include "core/train/run_folder.h"
#include "core/train/trainer.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>

namespace vitlab::cli {

namespace {

struct TrainOptions {
    TrainConfig config;
    std::string precision = "auto";
    std::string resume;
    /// --config: every training setting from this JSON file.
    std::string configFile;
    std::string out;
    bool quiet = false;
    int processes = 1;
    double groupTimeoutSeconds = 300.0;
};

std::string clockText(double seconds)
{
    if (!(seconds >= 0.0))
        return "--:--";
    const auto total = static_cast<long long>(std::llround(seconds));
    char text[32];
    if (total >= 3600)
        std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, (total / 60) % 60, total % 60);
    else
        std::snprintf(text, sizeof text, "%02lld:%02lld", total / 60, total % 60);
    return text;
}

/// Ctrl-C (or SIGTERM) asks the run to stop at the next batch and save a checkpoint; a second
/// one ends the program at once. A handler, whichever thread the signal lands on (LibTorch, Gloo
/// and the store start threads of their own), only writes to a pipe; a thread of ours reads it and
/// asks the run to stop, since that locks a mutex, which a signal handler may not.
class InterruptWatcher {
public:
    explicit InterruptWatcher(TrainControl& control)
    {
        if (::pipe(s_pipe) != 0)
            return; // no stop on signals: they keep their default action
        struct sigaction action {};
        action.sa_handler = onSignal;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGINT, &action, &m_previousInt);
        ::sigaction(SIGTERM, &action, &m_previousTerm);
        // Taken from here on in every thread (the launch blocked them until now).
        sigset_t signals;
        sigemptyset(&signals);
        sigaddset(&signals, SIGINT);
        sigaddset(&signals, SIGTERM);
        pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
        m_thread = std::thread([&control] {
            char byte = 0;
            while (::read(s_pipe[0], &byte, 1) < 0 && errno == EINTR) {
            }
            if (byte != 's')
                return; // the watcher's end
            std::fprintf(stderr, "\nstopping after this batch (press Ctrl-C again to quit at once)\n");
            control.requestStop();
        });
    }
    ~InterruptWatcher()
    {
        if (!m_thread.joinable())
            return;
        ::sigaction(SIGINT, &m_previousInt, nullptr);
        ::sigaction(SIGTERM, &m_previousTerm, nullptr);
        const char end = 'e';
        [[maybe_unused]] const auto written = ::write(s_pipe[1], &end, 1);
        m_thread.join();
        ::close(s_pipe[0]);
        ::close(s_pipe[1]);
    }

private:
    static void onSignal(int)
    {
        if (s_signalled.exchange(true))
            _exit(130); // the second: at once
        const char stop = 's';
        [[maybe_unused]] const auto written = ::write(s_pipe[1], &stop, 1);
    }

    static inline int s_pipe[2] = {-1, -1};
    static inline std::atomic<bool> s_signalled{false};
    struct sigaction m_previousInt {}, m_previousTerm {};
    std::thread m_thread;
};

TrainCallbacks terminalCallbacks(bool quiet)
{
    const bool terminal = ::isatty(STDOUT_FILENO) != 0;
    TrainCallbacks callbacks;
    callbacks.onPreparing = [terminal, quiet, last = std::string()](const std::string& stage, std::size_t done,
                                                                      std::size_t total) mutable {
        if (quiet || !terminal || total == 0)
            return;
        if (stage != last || done == total || done % 1000 == 0) {
            std::printf("\r%s: %zu/%zu", stage.c_str(), done, total);
            if (done == total)
                std::printf("\n");
            std::fflush(stdout);
            last = stage;
        }
    };
    callbacks.onStart = [quiet](const RunStarted& run) {
        if (quiet)
            return;
        std::printf("run %s\n", run.runDirectory.c_str());
        std::printf("%s on %s (%s), %lld parameters (%lld trainable); %lld training and %lld validation images, "
                    "%zu classes; %d epochs of %lld steps\n",
                    run.modelName.c_str(), run.device.c_str(), run.precision.c_str(),
                    static_cast<long long>(run.parameters), static_cast<long long>(run.trainableParameters),
                    static_cast<long long>(run.trainImages), static_cast<long long>(run.validationImages),
                    run.classNames.size(), run.epochs, static_cast<long long>(run.stepsPerEpoch));
        std::fflush(stdout);
    };
    callbacks.onStep = [terminal, quiet](const StepReport& step) {
        if (quiet)
            return;
        const double share = static_cast<double>(step.step) / static_cast<double>(std::max<std::int64_t>(1, step.totalSteps));
        if (terminal) {
            constexpr int kWidth = 24;
            const int filled = static_cast<int>(share * kWidth);
            std::string bar(static_cast<std::size_t>(filled), '=');
            bar.resize(kWidth, ' ');
            std::printf("\repoch %d [%s] step %lld/%lld  loss %.4f  lr %.2e  %.0f img/s  ETA %s   ", step.epoch,
                        bar.c_str(), static_cast<long long>(step.step), static_cast<long long>(step.totalSteps),
                        step.loss, step.learningRate, step.imagesPerSecond, clockText(step.etaSeconds).c_str());
        } else {
            std::printf("epoch %d step %lld/%lld loss %.4f lr %.3e images/s %.0f eta %s\n", step.epoch,
                        static_cast<long long>(step.step), static_cast<long long>(step.totalSteps), step.loss,
                        step.learningRate, step.imagesPerSecond, clockText(step.etaSeconds).c_str());
        }
        std::fflush(stdout);
    };
    callbacks.onEpoch = [terminal, quiet](const EpochReport& epoch) {
        if (quiet)
            return;
        std::printf("%sepoch %d: train loss %.4f acc %.2f%% | validation loss %.4f top-1 %.2f%% top-5 %.2f%% | %s%s\n",
                    terminal ? "\r\033[K" : "", epoch.epoch, epoch.trainLoss, 100.0 * epoch.trainAccuracy,
                    epoch.validationLoss, 100.0 * epoch.validationTop1, 100.0 * epoch.validationTop5,
                    clockText(epoch.elapsedSeconds).c_str(), epoch.best ? " (best)" : "");
        std::fflush(stdout);
    };
    callbacks.onMessage = [terminal, quiet](const std::string& text) {
        if (!quiet)
            std::printf("%s%s\n", terminal ? "\r\033[K" : "", text.c_str());
    };
    return callbacks;
}

int exitCodeFor(RunOutcome outcome)
{
    switch (outcome) {
    case RunOutcome::Finished:
    case RunOutcome::TimeLimit:
        return 0;
    case RunOutcome::Stopped:
        return 130;
    case RunOutcome::Diverged:
    case RunOutcome::OutOfMemory:
    case RunOutcome::Failed:
        break;
    }
    return 1;
}

/// The group a launcher (torchrun, Slurm, Open MPI, --nproc) started this process in, if any.
std::optional<GroupOptions> launchedGroup(const TrainOptions& options)
{
    const auto launch = groupLaunchFromEnvironment(processEnvironment());
    if (!launch || !launch->distributed())
        return std::nullopt;
    return GroupOptions{*launch, options.groupTimeoutSeconds};
}

/// --config FILE: the training settings from the file; beside it, only where the run goes and how
/// it reports may be given.
TrainConfig configFromFile(const TrainOptions& options, const CLI::App& app)
{
    static const std::set<std::string> besides{"--config", "--name", "--out", "--quiet", "--nproc", "--group-timeout"};
    for (const auto* option : app.get_options()) {
        if (option->count() > 0 && besides.count(option->get_name()) == 0)
            throw ConfigError("--config takes every training setting from " + options.configFile + ": leave out "
                              + option->get_name() + " (or change it in the file)");
    }
    auto config = TrainConfig::fromFile(options.configFile);
    if (app.count("--name") > 0)
        config.runName = options.config.runName;
    return config;
}

int runTrain(TrainOptions& options, CLI::App& app)
{
    const auto group = launchedGroup(options);
    if (!options.configFile.empty())
        options.config = configFromFile(options, app);
    if (options.processes > 1) {
        if (group)
            throw ConfigError("--nproc starts a group of its own; this process is already rank " + std::to_string(group->launch.rank)
                              + " of " + std::to_string(group->launch.worldSize) + " (" + group->launch.launcher
                              + "): leave --nproc out");
        LaunchPlan plan;
        plan.processes = options.processes;
        plan.arguments = commandLineWithout("--nproc");
        plan.graceSeconds = options.groupTimeoutSeconds + 10.0;
        return launchLocalGroup(plan);
    }
    if (group && group->launch.restartCount > 0 && options.resume.empty() && !options.config.runName.empty()) {
        // torchrun restarted the group after a failure: the named run continues from its checkpoint.
        const std::filesystem::path runs = options.out.empty() ? defaultRunsDirectory() : std::filesystem::path(options.out);
        const RunFolder earlier(runs / options.config.runName);
        std::error_code ignored;
        if (std::filesystem::exists(earlier.resumeStatePath(), ignored)) {
            options.resume = earlier.directory().string();
            if (group->launch.rank == 0)
                std::printf("restart %d of the group: resuming %s\n", group->launch.restartCount, options.resume.c_str());
        }
    }
    TrainControl control;
    // Rank 0 speaks for the group; the others only report errors.
    const auto callbacks = terminalCallbacks(options.quiet || (group && group->launch.rank != 0));
    InterruptWatcher interrupts(control);
    RunFinished finished;
    if (!options.resume.empty()) {
        ResumeOptions resume;
        if (app.count("--max-minutes") > 0)
            resume.maxMinutes = options.config.maxMinutes;
        if (app.count("--batch") > 0)
            resume.batchSize = options.config.batchSize;
        if (app.count("--accumulate") > 0)
            resume.accumulation = options.config.accumulation;
        resume.group = group;
        finished = resumeRun(options.resume, callbacks, control, resume);
    } else if (options.configFile.empty()) {
        options.config.precision = parsePrecision(options.precision);
        if (app.count("--model") == 0 && options.config.weights.empty()) {
            // The machine's Fashion-MNIST recipe; a batch size or rate given on the command line stays.
            const auto recipe = fashionMnistRecipeFor(options.config);
            options.config.model = recipe.model;
            if (app.count("--batch") == 0)
                options.config.batchSize = recipe.batchSize;
            if (app.count("--lr") == 0)
                options.config.learningRate = recipe.learningRate;
        }
    }
    if (options.resume.empty()) {
        if (hub::isHubWeights(options.config.weights)) {
            // Downloaded (or found in the cache) before the run starts; the run records which.
            std::string model = app.count("--model") > 0 || !options.configFile.empty() ? options.config.model : std::string{};
            const auto weights = resolveWeights(options.config.weights, model);
            options.config.model = model;
            options.config.weights = "hub:" + weights.pretrained->name();
        }
        if (!options.out.empty())
            options.config.runsDirectory = options.out;
        finished = trainRun(options.config, callbacks, control, group);
    }
    if (finished.outcome == RunOutcome::Diverged || finished.outcome == RunOutcome::OutOfMemory)
        std::cerr << "error: " << finished.message << "\n";
    return exitCodeFor(finished.outcome);
}

/// "model, batch B, lr R": a recipe as --help names it.
std::string recipeHelp(const TrainConfig& recipe)
{
    std::ostringstream text;
    text << recipe.model << ", batch " << recipe.batchSize << ", lr " << recipe.learningRate;
    return text.str();
}

} // namespace

Command addTrainCommand(CLI::App& parent)
{
    auto options = std::make_shared<TrainOptions>();
    auto& c = options->config;
    auto* app = parent.add_subcommand("train", "Train a model; every run is saved in its own run folder");
    app->add_option("--data", c.data, "An image folder (one sub-folder per class), an IDX folder or fashion-mnist");
    app->add_option("--model", c.model,
                    "A registry name (vitlab-cli models) or a JSON model config (default: the Fashion-MNIST "
                    "recipe for this machine: "
                        + recipeHelp(fashionMnistRecipe(true)) + " where it trains in float32 on a CPU, else "
                        + recipeHelp(fashionMnistRecipe(false)) + ")");
    app->add_option("--img-size", c.imageSize, "Training image size (default: the model's)")->check(CLI::Range(8, 1024));
    app->add_option("--epochs", c.epochs, "Epochs")->capture_default_str()->check(CLI::Range(1, 100000));
    app->add_option("--batch", c.batchSize, "Batch size (default: 128, or the recipe's without --model)")
        ->check(CLI::Range(1, 65536));
    app->add_option("--accumulate", c.accumulation, "Batches whose gradients are summed per optimiser step")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    app->add_option("--lr", c.learningRate, "Peak learning rate of AdamW (default: 2e-3, or the recipe's without --model)");
    app->add_option("--min-lr", c.minLearningRate, "Learning rate at the end of the cosine schedule")->capture_default_str();
    app->add_option("--warmup-epochs", c.warmupEpochs, "Linear warm-up length")->capture_default_str();
    app->add_option("--weight-decay", c.weightDecay, "AdamW weight decay")->capture_default_str();
    app->add_option("--label-smoothing", c.labelSmoothing, "Label smoothing")->capture_default_str();
    app->add_option("--clip-grad", c.clipGradNorm, "Largest gradient norm (0: no clipping)")->capture_default_str();
    app->add_option("--drop-path", c.dropPath, "Stochastic depth rate")->capture_default_str();
    app->add_option("--ema", c.emaDecay, "Moving average of the weights, e.g. 0.999 (0: off)")->capture_default_str();
    app->add_option("--mixup", c.mixup, "Mixup alpha (0: off)")->capture_default_str();
    app->add_option("--cutmix", c.cutmix, "CutMix alpha (0: off)")->capture_default_str();
    app->add_option("--randaugment", c.randAugmentOps, "RandAugment operations per image (0: off)")->capture_default_str();
    app->add_option("--crop-scale", c.cropScaleMin, "Smallest area share of random crops (0: automatic)");
    app->add_flag("--class-weights", c.classWeights, "Weigh classes by inverse frequency");
    app->add_option("--teacher", c.teacherRun, "Run folder of a teacher for DeiT hard distillation");
    app->add_option("--val-split", c.validationFraction, "Share of each class held out when the folder has no split")
        ->capture_default_str();
    app->add_option("--precision", options->precision, "auto, fp32, bf16 or fp16 (fp16 scales the loss)")->capture_default_str();
    app->add_flag("--tf32", c.tf32, "TF32 for float32 matrix products on CUDA (faster, less exact)");
    app->add_option("--device", c.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
    app->add_option("--weights", c.weights, std::string(kWeightsHelp) + ", to start from");
    app->add_option("--freeze", c.freeze, "With --weights: head (train the head only), or N (freeze N blocks)")
        ->capture_default_str();
    app->add_option("--out", options->out, "Folder that receives the run folder (default: the shared runs folder)");
    app->add_option("--name", c.runName, "Name of the run folder (default: time and model)");
    app->add_option("--config", options->configFile,
                    "Train with the settings in this JSON file: a run's config.json (to train it again) or a training "
                    "configuration (the app writes one for its worker processes); only --name, --out, --quiet, "
                    "--nproc and --group-timeout go beside it")
        ->check(CLI::ExistingFile);
    app->add_option("--resume", options->resume, "Continue the run in this folder from its last checkpoint (with --batch and --accumulate: at another batch size of the same effective batch)");
    app->add_option("--minutes", c.budgetMinutes,
                    "A time budget: the first steps are timed and the epochs and learning-rate schedule fitted to "
                    "end within it, decay complete (replaces --epochs)")
        ->check(CLI::Range(0.0, 1e6));
    app->add_option("--max-minutes", c.maxMinutes, "Stop (resumably) after this many minutes, wherever the schedule is")->check(CLI::Range(0.0, 1e7));
    app->add_option("--seed", c.seed, "Seed of shuffling, augmentation and initialisation")->capture_default_str();
    app->add_option("--workers", c.workers, "Data worker threads (0: every core)")->capture_default_str();
    app->add_option("--log-every", c.logEvery, "A metrics row every N steps")->capture_default_str();
    app->add_flag("--quiet", options->quiet, "Print nothing but errors");
    app->add_option("--nproc", options->processes,
                    "Train data-parallel in N processes on this machine (c10d on Gloo), each with its share of every "
                    "--batch and of the cores; under torchrun, Slurm or mpirun leave it out: their environment is read")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    app->add_option("--group-timeout", options->groupTimeoutSeconds,
                    "Seconds a process of a group waits on the others (to form, and at each exchange) before the run "
                    "fails, naming the rank at fault")
        ->capture_default_str()
        ->check(CLI::Range(1.0, 86400.0));
    return {app, [options, app](const RuntimeInfo&) { return runTrain(*options, *app); }};
}

} // namespace vitlab::cli
