#pragma once

#include <QFutureWatcher>
#include <QObject>
#include <QString>

#include <atomic>
#include <memory>

namespace vitlab::ui {

/// Downloads timm's weights into the Hugging Face cache off the UI thread, reporting progress,
/// cancellable; one download at a time.
class PretrainedDownload : public QObject {
    Q_OBJECT
public:
    explicit PretrainedDownload(QObject* parent = nullptr);
    ~PretrainedDownload() override;

    /// Starts fetching `weights` ("hub:NAME.TAG"); false when a download is already running.
    bool start(const QString& weights);
    /// Asks the running download to stop; it ends with cancelled().
    void cancel();
    bool isRunning() const { return m_watcher.isRunning(); }
    QString weights() const { return m_weights; }

Q_SIGNALS:
    void progress(qint64 received, qint64 total);
    void finished(const QString& weights, const QString& path);
    void failed(const QString& weights, const QString& message);
    void cancelled(const QString& weights);

private:
    struct Outcome {
        QString path;
        QString error;
        bool cancelled = false;
    };
    QFutureWatcher<Outcome> m_watcher;
    std::shared_ptr<std::atomic<bool>> m_cancel;
    QString m_weights;
};

} // namespace vitlab::ui
