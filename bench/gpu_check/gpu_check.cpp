// vitlab-gpu-check: what a GPU run needs, checked on the device at hand, with only the engine
// library (no Qt, no OpenCV, no data files). bench/gpu_check.sh builds and runs it on a GPU
// machine; the suite runs it with --device cpu --quick so that it keeps working.
//
//   forward     every family's logits on the device equal the CPU's (float32, TF32 off), through
//               the fused attention kernel and through the explicit path that inspection takes
//   train       a few hundred steps on a learnable synthetic task under bfloat16 and float16
//               autocast (the latter with loss scaling): the loss must fall
//   checkpoint  a resume state written on the device loads on the CPU and back, unchanged
//   oom         (CUDA) an allocation too large is recognised as out of memory and the device
//               still trains afterwards
//   group       a training group of one process on the device's backend (NCCL on CUDA, Gloo on the
//               CPU): a collective, and a data-parallel step equal to a plain one
//   throughput  (CUDA, or --throughput) training images/s of the standard models, one JSON
//               line each, for the script to set against timm's
//
// Prints one JSON object per line ({"check": ..., "ok": ...}); exits 1 when a check fails.
#include "core/errors.h"
#include "core/io/safetensors.h"
#include "core/models/registry.h"
#include "core/models/weights.h"
#include "core/runtime.h"
#include "core/torch_compat.h"
#include "core/train/execution.h"
#include "core/train/group_launch.h"
#include "core/train/optimization.h"
#include "core/train/process_group.h"
#include "core/train/step_timing.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

using namespace vitlab;

namespace {

struct Options {
    std::string device = "cuda";
    bool quick = false;
    bool throughput = false;
    int trainSteps = 0;      // 0: 300, or 40 with --quick
    int throughputSteps = 12;
    std::int64_t throughputBatch = 128;
    std::vector<std::string> throughputModels{"vit_tiny_patch16_224", "vit_small_patch16_224", "deit_small_patch16_224",
                                              "swin_tiny_patch4_window7_224"};
};

[[noreturn]] void usage(const std::string& problem)
{
    std::cerr << "vitlab-gpu-check: " << problem
              << "\nusage: vitlab-gpu-check [--device cuda|cuda:N|cpu] [--quick] [--train-steps N]"
                 " [--throughput] [--throughput-steps N] [--throughput-batch N] [--models a,b,...]\n";
    std::exit(2);
}

Options parseOptions(int argc, char** argv)
{
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string argument = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc)
                usage(argument + " needs a value");
            return argv[++i];
        };
        const auto number = [&](long low, long high) {
            const auto text = value();
            char* end = nullptr;
            const long parsed = std::strtol(text.c_str(), &end, 10);
            if (text.empty() || *end != '\0' || parsed < low || parsed > high)
                usage(argument + " takes a whole number from " + std::to_string(low) + " to " + std::to_string(high));
            return parsed;
        };
        if (argument == "--device")
            options.device = value();
        else if (argument == "--quick")
            options.quick = true;
        else if (argument == "--throughput")
            options.throughput = true;
        else if (argument == "--train-steps")
            options.trainSteps = static_cast<int>(number(10, 100000));
        else if (argument == "--throughput-steps")
            options.throughputSteps = static_cast<int>(number(1, 10000));
        else if (argument == "--throughput-batch")
            options.throughputBatch = number(1, 65536);
        else if (argument == "--models") {
            options.throughputModels.clear();
            std::string list = value();
            for (std::size_t start = 0; start <= list.size();) {
                const auto comma = std::min(list.find(',', start), list.size());
                if (comma > start)
                    options.throughputModels.push_back(list.substr(start, comma - start));
                start = comma + 1;
            }
        } else
            usage("unknown argument " + argument);
    }
    return options;
}

bool g_failed = false;

void report(nlohmann::json line, bool ok)
{
    line["ok"] = ok;
    g_failed = g_failed || !ok;
    std::cout << line.dump() << std::endl;
}

double maxAbsDifference(const torch::Tensor& a, const torch::Tensor& b)
{
    return (a.to(torch::kCPU, torch::kFloat64) - b.to(torch::kCPU, torch::kFloat64)).abs().max().item<double>();
}

/// One model per family: the standard ImageNet sizes on a GPU, the small presets with --quick.
std::vector<std::string> familyModels(bool quick)
{
    if (quick)
        return {"vit_micro_patch4_28", "deit_tiny_d6_distilled_patch4_28", "swin_micro_patch2_window4_32",
                "tnt_tiny_d6_patch4_28", "vit_micro_r5_s4_28"};
    return {"vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "swin_tiny_patch4_window7_224",
            "tnt_s_patch16_224", "vit_tiny_r_s16_p8_224"};
}

torch::Tensor randomImages(const ModelSpec& spec, std::int64_t batch)
{
    return torch::randn({batch, spec.input.channels, spec.input.size[0], spec.input.size[1]});
}

void checkForward(const Options& options, const torch::Device& device)
{
    allowTf32(false);
    for (const auto& name : familyModels(options.quick)) {
        const auto spec = ModelRegistry::instance().model(name);
        torch::manual_seed(0);
        auto reference = createModel(spec);
        reference->eval();
        auto onDevice = createModel(spec);
        onDevice->eval();
        {
            torch::NoGradGuard noGrad;
            const auto source = stateDictOf(*reference);
            for (auto& [key, tensor] : stateDictOf(*onDevice))
                tensor.copy_(source.at(key));
        }
        onDevice->to(device);
        const auto images = randomImages(spec, 2);
        torch::NoGradGuard noGrad;
        reference->setAttentionCapture(true); // the CPU's explicit softmax: the plainest reference
        const auto expected = reference->forward(images);
        const double tolerance = 1e-4 * std::max(1.0, expected.abs().max().item<double>());
        for (const bool capturing : {false, true}) {
            onDevice->setAttentionCapture(capturing);
            const auto logits = onDevice->forward(images.to(device));
            const double difference = maxAbsDifference(logits, expected);
            report({{"check", "forward"},
                    {"model", name},
                    {"attention", capturing ? "explicit" : (compat::kHasFusedAttention ? "fused" : "uncaptured")},
                    {"max_abs_diff", difference},
                    {"tolerance", tolerance}},
                   difference <= tolerance);
        }
    }
}

/// A learnable task without data files: each class is a fixed random image, seen through noise.
struct SyntheticTask {
    torch::Tensor prototypes; // (classes, C, H, W)
    std::int64_t classes;

    SyntheticTask(const ModelSpec& spec, std::int64_t classCount)
        : classes(classCount)
    {
        torch::manual_seed(11);
        prototypes = torch::randn({classCount, spec.input.channels, spec.input.size[0], spec.input.size[1]});
    }
    std::pair<torch::Tensor, torch::Tensor> batch(std::int64_t size) const
    {
        const auto labels = torch::randint(classes, {size}, torch::kInt64);
        const auto images = prototypes.index_select(0, labels) + 0.8 * torch::randn_like(prototypes.index_select(0, labels));
        return {images, labels};
    }
};

void checkTraining(const Options& options, const torch::Device& device)
{
    // --quick (the suite, on CPUs where float16 is emulated and slow) takes the smallest preset.
    const auto spec = withNumClasses(ModelRegistry::instance().model(options.quick ? "vit_micro_patch4_28" : "vit_tiny_d6_patch4_32"), 8);
    const int steps = options.trainSteps > 0 ? options.trainSteps : (options.quick ? 30 : 300);
    const std::int64_t batch = options.quick ? 16 : 64;
    const SyntheticTask task(spec, 8);
    for (const auto dtype : {at::kBFloat16, at::kHalf}) {
        const char* name = dtype == at::kBFloat16 ? "bf16" : "fp16";
        ComputePrecision precision{dtype};
        if (!device.is_cuda() && dtype == at::kHalf && !compat::kCpuAutocastsToHalf) {
            report({{"check", "train"}, {"precision", name}, {"skipped", "CPU autocast to float16 needs LibTorch 2.x"}}, true);
            continue;
        }
        if (!device.is_cuda() && dtype == at::kBFloat16 && !cpuHasNativeBfloat16()) {
            // About 90x slower than float32 on AVX2-only CPUs: the check would take minutes there.
            report({{"check", "train"}, {"precision", name}, {"skipped", "bfloat16 is emulated on this CPU"}}, true);
            continue;
        }
        torch::manual_seed(1);
        auto model = createModel(spec);
        model->to(device);
        OptimizationOptions optimizationOptions;
        optimizationOptions.precision = precision;
        optimizationOptions.device = device;
        optimizationOptions.clipGradNorm = 1.0;
        Optimization optimization(model, optimizationOptions);
        const int window = std::max(3, steps / 10);
        double firstLoss = 0.0, lastLoss = 0.0;
        std::int64_t skipped = 0;
        const auto start = std::chrono::steady_clock::now();
        for (int step = 0; step < steps; ++step) {
            auto [images, labels] = task.batch(batch);
            images = images.to(device);
            labels = labels.to(device);
            const auto targets = torch::one_hot(labels, task.classes).to(torch::kFloat32);
            const auto outcome = optimization.accumulate(images, targets, labels);
            if (step < window)
                firstLoss += outcome.loss / window;
            if (step >= steps - window)
                lastLoss += outcome.loss / window;
            skipped += optimization.step(options.quick ? 3e-3 : 1e-3).skipped ? 1 : 0;
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        nlohmann::json line = {{"check", "train"},        {"precision", name},     {"model", spec.name},
                               {"steps", steps},          {"batch", batch},        {"first_loss", firstLoss},
                               {"last_loss", lastLoss},   {"skipped_steps", skipped}, {"seconds", seconds}};
        if (const auto scale = optimization.lossScale())
            line["loss_scale"] = *scale;
        // The loss must fall well below where it started, with few steps skipped (float16's first
        // steps may overflow while the scale settles).
        report(line, std::isfinite(lastLoss) && lastLoss < 0.7 * firstLoss && skipped <= steps / 10);
    }
}

void checkCheckpoint(const torch::Device& device)
{
    const auto spec = withNumClasses(ModelRegistry::instance().model("vit_micro_patch4_28"), 5);
    const SyntheticTask task(spec, 5);
    const auto build = [&](const torch::Device& on) {
        torch::manual_seed(2);
        auto model = createModel(spec);
        model->to(on);
        OptimizationOptions optimizationOptions;
        optimizationOptions.device = on;
        optimizationOptions.emaDecay = 0.99;
        return std::make_unique<Optimization>(model, optimizationOptions, [&] { return createModel(spec); });
    };
    const auto train = [&](Optimization& optimization, const torch::Device& on, int steps) {
        torch::manual_seed(3);
        for (int i = 0; i < steps; ++i) {
            auto [images, labels] = task.batch(8);
            optimization.accumulate(images.to(on), torch::one_hot(labels, 5).to(torch::kFloat32).to(on), labels.to(on));
            optimization.step(1e-3);
        }
    };
    const auto file = std::filesystem::temp_directory_path() / ("vitlab-gpu-check-" + std::to_string(::getpid()) + ".safetensors");
    const auto roundTrip = [&](const torch::Device& from, const torch::Device& to) {
        auto source = build(from);
        train(*source, from, 3);
        safetensors::save(file, source->state());
        auto target = build(to);
        target->loadState(safetensors::load(file).tensors, source->stepsDone());
        double difference = 0.0;
        const auto saved = source->state();
        for (const auto& [key, tensor] : target->state())
            difference = std::max(difference, maxAbsDifference(tensor, saved.at(key)));
        // Both continue by a step on the same batch: AdamW's moments came along too.
        train(*source, from, 1);
        train(*target, to, 1);
        double afterStep = 0.0;
        const auto continued = source->state();
        for (const auto& [key, tensor] : target->state())
            afterStep = std::max(afterStep, maxAbsDifference(tensor, continued.at(key)));
        report({{"check", "checkpoint"},
                {"from", from.str()},
                {"to", to.str()},
                {"max_abs_diff_loaded", difference},
                {"max_abs_diff_after_step", afterStep}},
               difference == 0.0 && afterStep <= 1e-4);
    };
    roundTrip(device, torch::kCPU);
    roundTrip(torch::kCPU, device);
    std::filesystem::remove(file);
}

void checkOutOfMemory(const torch::Device& device)
{
    bool recognised = false;
    std::string message;
    try {
        // Far beyond any GPU of today: 4 TiB of float32.
        const auto huge = torch::empty({std::int64_t(1) << 40}, torch::TensorOptions(torch::kFloat32).device(device));
        message = "allocated " + std::to_string(huge.numel()) + " floats";
    } catch (const std::exception& error) {
        recognised = isOutOfMemory(error);
        message = error.what();
        message = message.substr(0, message.find('\n'));
    }
    releaseCachedDeviceMemory();
    // The device still trains after the failure.
    bool trainsAfter = false;
    try {
        const auto spec = withNumClasses(ModelRegistry::instance().model("vit_micro_patch4_28"), 5);
        auto model = createModel(spec);
        model->to(device);
        OptimizationOptions optimizationOptions;
        optimizationOptions.device = device;
        Optimization optimization(model, optimizationOptions);
        const auto labels = torch::randint(5, {4}, torch::kInt64).to(device);
        optimization.accumulate(randomImages(spec, 4).to(device), torch::one_hot(labels, 5).to(torch::kFloat32), labels);
        trainsAfter = !optimization.step(1e-3).skipped;
    } catch (const std::exception& error) {
        message += std::string("; then: ") + error.what();
    }
    report({{"check", "oom"}, {"recognised", recognised}, {"trains_after", trainsAfter}, {"message", message}},
           recognised && trainsAfter);
}

void checkGroup(const torch::Device& device)
{
    GroupLaunch launch;
    launch.launcher = "vitlab-gpu-check";
    launch.masterPort = freeLoopbackPort();
    std::unique_ptr<TrainingGroup> group;
    try {
        group = TrainingGroup::join(launch, std::chrono::seconds(60), device);
    } catch (const ConfigError& error) {
        report({{"check", "group"}, {"skipped", error.what()}}, true); // this build lacks the backend
        return;
    }
    auto sum = torch::full({1024}, 2.0f, torch::TensorOptions().device(device));
    group->allreduceSum(sum);
    const bool collective = sum.eq(2.0f).all().item<bool>();
    // One step through the gradient buckets (hooks, flat buffers, the exchange) against a plain one.
    const auto spec = withNumClasses(ModelRegistry::instance().model("vit_micro_patch4_28"), 5);
    auto plain = createModel(spec);
    auto grouped = createModel(spec);
    {
        torch::NoGradGuard noGrad;
        auto source = plain->parameters();
        auto target = grouped->parameters();
        for (std::size_t k = 0; k < source.size(); ++k)
            target[k].copy_(source[k]);
    }
    plain->to(device);
    grouped->to(device);
    OptimizationOptions optimizationOptions;
    optimizationOptions.device = device;
    Optimization alone(plain, optimizationOptions), together(grouped, optimizationOptions);
    together.joinGroup(*group);
    const auto images = randomImages(spec, 8).to(device);
    const auto labels = torch::randint(5, {8}, torch::kInt64).to(device);
    const auto targets = torch::one_hot(labels, 5).to(torch::kFloat32);
    for (auto* optimization : {&alone, &together}) {
        optimization->accumulate(images, targets, labels);
        optimization->step(1e-3);
    }
    double difference = 0.0;
    const auto expected = plain->parameters();
    const auto actual = grouped->parameters();
    for (std::size_t k = 0; k < expected.size(); ++k)
        difference = std::max(difference, maxAbsDifference(actual[k], expected[k]));
    report({{"check", "group"},
            {"backend", device.is_cuda() ? "nccl" : "gloo"},
            {"collective", collective},
            {"step_difference", difference}},
           collective && difference < 1e-6);
}

void measureThroughput(const Options& options, const torch::Device& device)
{
    const auto precision = resolvePrecision(Precision::Auto, device);
    for (const auto& name : options.throughputModels) {
        const double seconds = secondsOfTrainingSteps(ModelRegistry::instance().model(name), options.throughputBatch,
                                                      options.throughputSteps, precision, device);
        report({{"check", "throughput"},
                {"model", name},
                {"batch", options.throughputBatch},
                {"precision", precision.name()},
                {"steps", options.throughputSteps},
                {"images_per_s", static_cast<double>(options.throughputBatch * options.throughputSteps) / seconds}},
               true);
    }
}

} // namespace

int main(int argc, char** argv)
{
    const auto options = parseOptions(argc, argv);
    const auto runtime = initRuntime();
    torch::Device device = torch::kCPU;
    try {
        device = resolveDevice(options.device);
    } catch (const std::exception& error) {
        std::cerr << "vitlab-gpu-check: " << error.what() << "\n";
        return 2;
    }
    nlohmann::json devices = nlohmann::json::array();
    for (const auto& cuda : runtime.cudaDevices)
        devices.push_back(describeCudaDevice(cuda));
    std::cout << nlohmann::json{{"check", "runtime"},
                                {"torch", runtime.torchVersion},
                                {"cuda_built_with", runtime.cudaBuiltWith},
                                {"cudnn_built_with", runtime.cudnnBuiltWith},
                                {"device", device.str()},
                                {"cuda_devices", devices},
                                {"cpu", runtime.cpuDescription},
                                {"threads", runtime.intraOpThreads}}
                     .dump()
              << std::endl;
    try {
        checkForward(options, device);
        checkTraining(options, device);
        checkCheckpoint(device);
        checkGroup(device);
        if (device.is_cuda())
            checkOutOfMemory(device);
        if (device.is_cuda() || options.throughput)
            measureThroughput(options, device);
    } catch (const std::exception& error) {
        report({{"check", "error"}, {"message", error.what()}}, false);
    }
    return g_failed ? 1 : 0;
}
