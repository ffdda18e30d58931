#include "core/runtime.h"
#include "core/torch_compat.h"
#include "core/train/execution.h"
#include "core/version.h"

#include <QDir>
#include <QFile>
#include <QRegularExpression>
#include <QtTest>

#include <thread>

using namespace vitlab;

class TestRuntime : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void initTestCase()
    {
        // The tests set the thread count themselves; one from the caller's environment would skew them.
        qunsetenv("VITLAB_THREADS");
    }

    void cleanup()
    {
        qunsetenv("VITLAB_THREADS");
        initRuntime();
    }

    void usesEveryUsableCore()
    {
        const RuntimeInfo info = initRuntime();
        QVERIFY(info.usableCores >= 1);
        QCOMPARE(info.intraOpThreads, info.usableCores);
        QCOMPARE(at::get_num_threads(), info.usableCores);
    }

    void ownKernelsUseEveryThread()
    {
        // The fused bf16 and max pool kernels split their work with at::parallel_for, which runs
        // serially unless core is compiled with OpenMP.
        if (usableCoreCount() < 2)
            QSKIP("one usable core: nothing to split");
        QCOMPARE(initRuntime({2}).kernelThreads, 2);
        QCOMPARE(initRuntime({1}).kernelThreads, 1);
    }

    void describingTheRuntimeLeavesNoThreadsBehind()
    {
        // A team of OpenMP workers left on the caller (the app's UI thread) made libgomp count more
        // threads than cores, and the training team then slept between kernels: 0.6x the CLI's speed.
        const auto threadsNow = [] { return QDir(QStringLiteral("/proc/self/task")).entryList(QDir::Dirs | QDir::NoDotAndDotDot).size(); };
        // On a thread of its own, as the UI thread is to the training one; workers exit shortly
        // after their team's thread does.
        qsizetype before = 0, after = 0;
        int kernelThreads = 0;
        std::thread caller([&] {
            before = threadsNow();
            kernelThreads = vitlab::currentRuntime().kernelThreads;
            for (int wait = 0; wait < 300 && (after = threadsNow()) != before; ++wait)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
        });
        caller.join();
        QVERIFY(kernelThreads >= 1);
        QCOMPARE(after, before);
    }

    void threadCountReachesWorkerThreads()
    {
        // Training runs on a worker thread; LibTorch's OpenMP pool is configured per thread, so
        // the count set on the main thread must hold there too.
        initRuntime({1});
        initRuntime();
        int seenOnWorker = 0;
        std::thread worker([&seenOnWorker] {
            // A parallel operation first, so that LibTorch initialises this thread's pool.
            (void)torch::ones({256, 256}).sum();
            seenOnWorker = at::get_num_threads();
        });
        worker.join();
        QCOMPARE(seenOnWorker, usableCoreCount());
    }

    void explicitThreadCount()
    {
        QCOMPARE(initRuntime({1}).intraOpThreads, 1);
        QCOMPARE(at::get_num_threads(), 1);
    }

    void environmentOverridesThreads()
    {
        qputenv("VITLAB_THREADS", "1");
        QCOMPARE(initRuntime({3}).intraOpThreads, 1);
        qputenv("VITLAB_THREADS", "lots");
        QCOMPARE(initRuntime().intraOpThreads, usableCoreCount());
        qputenv("VITLAB_THREADS", "-4");
        QCOMPARE(initRuntime().intraOpThreads, usableCoreCount());
    }

    void reportsVersions()
    {
        const RuntimeInfo info = currentRuntime();
        QCOMPARE(QString::fromStdString(info.vitlabVersion), QStringLiteral(VITLAB_VERSION_STRING));
        QCOMPARE(QString::fromStdString(info.torchVersion),
                 QStringLiteral("%1.%2.%3").arg(TORCH_VERSION_MAJOR).arg(TORCH_VERSION_MINOR).arg(TORCH_VERSION_PATCH));
        QVERIFY(QString::fromStdString(info.opencvVersion).contains(QRegularExpression(QStringLiteral("^\\d+\\.\\d+"))));
    }

    void picksCudaOnlyWhenAvailable()
    {
        const RuntimeInfo info = currentRuntime();
        QCOMPARE(info.cudaAvailable, torch::cuda::is_available());
        if (info.cudaAvailable) {
            QCOMPARE(QString::fromStdString(info.defaultDevice), QStringLiteral("cuda"));
            QVERIFY(info.cudaUnavailableReason.empty());
        } else {
            QCOMPARE(QString::fromStdString(info.defaultDevice), QStringLiteral("cpu"));
            QVERIFY(!info.cudaUnavailableReason.empty());
            QCOMPARE(info.cudaUnavailableReason.find("CUDA") != std::string::npos, true);
        }
        // A CUDA build says so, with its versions, even where no device is visible: the reason
        // is then the device, not the build.
        QCOMPARE(compat::builtWithCuda(), !info.cudaBuiltWith.empty());
        if (compat::builtWithCuda()) {
            QVERIFY2(QString::fromStdString(info.cudaBuiltWith).contains(QRegularExpression(QStringLiteral("^[0-9]+\\.[0-9]+$"))),
                     info.cudaBuiltWith.c_str());
            QVERIFY(info.cudaAvailable || info.cudaUnavailableReason.find("no CUDA device visible") == 0);
        } else {
            QVERIFY(info.cudnnBuiltWith.empty());
            QCOMPARE(info.cudaUnavailableReason, std::string("this LibTorch was built without CUDA"));
        }
    }

    void bfloat16IsNativeOnlyWithAmxOrAvx512Bf16()
    {
        // Read the flags independently of the engine: "auto" precision rests on this answer.
        QFile cpuinfo(QStringLiteral("/proc/cpuinfo"));
        QVERIFY(cpuinfo.open(QIODevice::ReadOnly));
        QString flags;
        for (const auto& line : QString::fromLatin1(cpuinfo.readAll()).split(QLatin1Char('\n'))) {
            if (line.startsWith(QStringLiteral("flags"))) {
                flags = line.section(QLatin1Char(':'), 1) + QLatin1Char(' ');
                break;
            }
        }
        const bool native = flags.contains(QStringLiteral(" avx512_bf16 ")) || flags.contains(QStringLiteral(" amx_bf16 "));
        qunsetenv("ONEDNN_MAX_CPU_ISA");
        qunsetenv("DNNL_MAX_CPU_ISA");
        const auto here = bfloat16OnCpu();
        QCOMPARE(here.native, native);
        QCOMPARE(resolvePrecision(Precision::Auto, torch::kCPU).dtype, native ? at::kBFloat16 : at::kFloat);
        QVERIFY2(QString::fromStdString(here.reason).contains(native ? QStringLiteral("natively") : QStringLiteral("emulated")),
                 here.reason.c_str());
        const auto info = currentRuntime();
        QCOMPARE(info.cpuBfloat16Native, native);
        QVERIFY(info.cpuDescription.find("family") != std::string::npos);

        // oneDNN kept to AVX2: emulated whatever the CPU, and the reason names the setting.
        qputenv("ONEDNN_MAX_CPU_ISA", "avx2");
        const auto capped = bfloat16OnCpu();
        QVERIFY(!capped.native);
        QVERIFY2(capped.reason.find(native ? "ONEDNN_MAX_CPU_ISA=AVX2" : "neither AMX nor AVX-512 BF16") != std::string::npos,
                 capped.reason.c_str());
        // --precision auto follows it; an explicit bf16 is the user's choice.
        QCOMPARE(resolvePrecision(Precision::Auto, torch::kCPU).name(), std::string("fp32"));
        QCOMPARE(resolvePrecision(Precision::BFloat16, torch::kCPU).name(), std::string("bf16"));
        // A run that names no model trains the recipe for where it computes: float32 on a CPU the
        // 2-block preset at batch 64; an explicit bf16 the 4-block one at TrainConfig's batch and rate.
        TrainConfig onCpu;
        onCpu.device = "cpu";
        const auto float32Recipe = fashionMnistRecipeFor(onCpu);
        QCOMPARE(float32Recipe.model, std::string("vit_micro_d2_r5_s4_28"));
        QCOMPARE(float32Recipe.batchSize, std::int64_t(64));
        QCOMPARE(float32Recipe.learningRate, 1.5e-3);
        onCpu.precision = Precision::BFloat16;
        const auto bfloat16Recipe = fashionMnistRecipeFor(onCpu);
        QCOMPARE(bfloat16Recipe.model, TrainConfig{}.model);
        QCOMPARE(bfloat16Recipe.batchSize, TrainConfig{}.batchSize);
        QCOMPARE(bfloat16Recipe.learningRate, TrainConfig{}.learningRate);
        qputenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX");
        QCOMPARE(bfloat16OnCpu().native, native);
        qunsetenv("ONEDNN_MAX_CPU_ISA");
    }

    void runsDirectoryFollowsEnvironment()
    {
        const QByteArray oldRuns = qgetenv("VITLAB_RUNS_DIR");
        const QByteArray oldXdg = qgetenv("XDG_DATA_HOME");
        const QByteArray oldHome = qgetenv("HOME");

        qputenv("VITLAB_RUNS_DIR", "/tmp/explicit-runs");
        QCOMPARE(defaultRunsDirectory().string(), std::string("/tmp/explicit-runs"));
        qunsetenv("VITLAB_RUNS_DIR");
        qputenv("XDG_DATA_HOME", "/tmp/xdg");
        QCOMPARE(defaultRunsDirectory().string(), std::string("/tmp/xdg/vitlab/runs"));
        qunsetenv("XDG_DATA_HOME");
        qputenv("HOME", "/home/someone");
        QCOMPARE(defaultRunsDirectory().string(), std::string("/home/someone/.local/share/vitlab/runs"));

        auto restore = [](const char* name, const QByteArray& value) {
            if (value.isNull())
                qunsetenv(name);
            else
                qputenv(name, value);
        };
        restore("VITLAB_RUNS_DIR", oldRuns);
        restore("XDG_DATA_HOME", oldXdg);
        restore("HOME", oldHome);
    }
};

QTEST_GUILESS_MAIN(TestRuntime)
#include "tst_runtime.moc"
