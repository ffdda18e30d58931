#include "core/runtime.h"
#include "core/torch_compat.h"
#include "core/version.h"

#include <QtTest>

#include <thread>

using namespace vitlab;

class TestRuntime : public QObject {
    Q_OBJECT

private Q_SLOTS:
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
