#pragma once

// Helpers shared by the tests: where the timm reference vectors are, and tensor comparisons.
#include <torch/torch.h>

#include <QByteArray>
#include <QString>
#include <QtGlobal>

#include <filesystem>

namespace vitlab::test {

/// shared/fixtures beside the repository; ctest passes its path in VITLAB_FIXTURES_DIR.
inline std::filesystem::path fixturesDir()
{
    const QByteArray dir = qgetenv("VITLAB_FIXTURES_DIR");
    return dir.isEmpty() ? std::filesystem::path("../shared/fixtures") : std::filesystem::path(dir.toStdString());
}

inline std::filesystem::path timmFixturesDir()
{
    return fixturesDir() / "timm";
}

inline double maxAbsDifference(const torch::Tensor& a, const torch::Tensor& b)
{
    return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

inline QString shapeString(const torch::Tensor& t)
{
    QString text = QStringLiteral("(");
    for (int64_t d = 0; d < t.dim(); ++d)
        text += (d ? QStringLiteral(", ") : QString()) + QString::number(t.size(d));
    return text + QStringLiteral(")");
}

/// LibTorch's intra-op threads for a scope.
class ThreadsGuard {
public:
    explicit ThreadsGuard(int threads)
        : m_previous(at::get_num_threads())
    {
        at::set_num_threads(threads);
    }
    ~ThreadsGuard() { at::set_num_threads(m_previous); }
    ThreadsGuard(const ThreadsGuard&) = delete;
    ThreadsGuard& operator=(const ThreadsGuard&) = delete;

private:
    int m_previous;
};

/// oneDNN on or off for a scope. Off, bf16 matrix products and convolutions take ATen's own
/// kernels: the path of every CPU without AVX-512 (where bf16 is emulated), on any machine.
class OneDnnGuard {
public:
    explicit OneDnnGuard(bool enabled)
        : m_previous(at::globalContext().userEnabledMkldnn())
    {
        at::globalContext().setUserEnabledMkldnn(enabled);
    }
    ~OneDnnGuard() { at::globalContext().setUserEnabledMkldnn(m_previous); }
    OneDnnGuard(const OneDnnGuard&) = delete;
    OneDnnGuard& operator=(const OneDnnGuard&) = delete;

private:
    bool m_previous;
};

} // namespace vitlab::test
