#include "ui/pretrained_download.h"

#include "core/facade/engine.h"

#include <QPointer>
#include <QtConcurrent/QtConcurrentRun>

#include <chrono>

namespace vitlab::ui {

PretrainedDownload::PretrainedDownload(QObject* parent) : QObject(parent)
{
    connect(&m_watcher, &QFutureWatcher<Outcome>::finished, this, [this] {
        const auto outcome = m_watcher.result();
        if (outcome.cancelled)
            Q_EMIT cancelled(m_weights);
        else if (!outcome.error.isEmpty())
            Q_EMIT failed(m_weights, outcome.error);
        else
            Q_EMIT finished(m_weights, outcome.path);
    });
}

PretrainedDownload::~PretrainedDownload()
{
    // The download stops at its next progress report; the window closing does not wait long.
    cancel();
    m_watcher.waitForFinished();
}

bool PretrainedDownload::start(const QString& weights)
{
    if (m_watcher.isRunning())
        return false;
    m_weights = weights;
    m_cancel = std::make_shared<std::atomic<bool>>(false);
    QPointer<PretrainedDownload> self(this);
    const auto cancelFlag = m_cancel;
    const auto name = weights.toStdString();
    m_watcher.setFuture(QtConcurrent::run([self, cancelFlag, name] {
        Outcome outcome;
        auto lastReport = std::chrono::steady_clock::time_point{};
        const auto report = [&](std::int64_t received, std::int64_t total) {
            if (cancelFlag->load())
                return false;
            // At most 20 reports a second reach the UI thread.
            const auto now = std::chrono::steady_clock::now();
            if (now - lastReport >= std::chrono::milliseconds(50) || received == total) {
                lastReport = now;
                QMetaObject::invokeMethod(
                    self.data(), [self, received, total] {
                        if (self)
                            Q_EMIT self->progress(received, total);
                    },
                    Qt::QueuedConnection);
            }
            return true;
        };
        try {
            outcome.path = QString::fromStdString(facade::fetchPretrained(name, report));
        } catch (const hub::HubError& error) {
            outcome.cancelled = error.kind() == hub::HubError::Kind::Cancelled;
            outcome.error = QString::fromStdString(error.what());
        } catch (const std::exception& error) {
            outcome.error = QString::fromStdString(error.what());
        }
        return outcome;
    }));
    return true;
}

void PretrainedDownload::cancel()
{
    if (m_cancel)
        m_cancel->store(true);
}

} // namespace vitlab::ui
