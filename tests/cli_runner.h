#pragma once

// Runs the real vitlab-cli (its path in VITLAB_CLI, set by ctest) and collects what it printed,
// and the tiny run the CLI tests train.
#include "synthetic_images.h"

#include <QDir>
#include <QProcess>
#include <QString>
#include <QStringList>

#include <fstream>

namespace vitlab::test {

struct CliResult {
    int exitCode = -1;
    QString out;
    QString err;
};

inline CliResult runCli(const QStringList& arguments, int timeoutMs = 240000)
{
    QProcess process;
    process.start(qEnvironmentVariable("VITLAB_CLI"), arguments);
    process.waitForFinished(timeoutMs);
    return {process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1,
            QString::fromUtf8(process.readAllStandardOutput()), QString::fromUtf8(process.readAllStandardError())};
}

/// What the CLI tests train: a 3-class pattern folder (16 images of 16 px each, no split) and a
/// 2-block ViT config for it.
struct TinyTraining {
    QString data;
    QString model;

    /// Writes both under `directory`.
    bool write(const QString& directory)
    {
        data = QDir(directory).filePath(QStringLiteral("patterns"));
        model = QDir(directory).filePath(QStringLiteral("tiny.json"));
        std::ofstream(model.toStdString())
            << R"({"family": "vit", "img_size": 16, "patch_size": 4, "embed_dim": 32, "depth": 2, "num_heads": 2})";
        return writePatternFolder(data.toStdString(), 3, 16, 16);
    }

    /// `vitlab-cli train` of the model on the folder into `runs`/`name`: float32 on the CPU at batch
    /// 8, one data worker, no drop path, no crops.
    QStringList arguments(const QString& runs, const QString& name, int epochs) const
    {
        return {QStringLiteral("train"),       QStringLiteral("--data"),        data,
                QStringLiteral("--model"),     model,                           QStringLiteral("--epochs"),
                QString::number(epochs),       QStringLiteral("--batch"),       QStringLiteral("8"),
                QStringLiteral("--lr"),        QStringLiteral("3e-3"),          QStringLiteral("--drop-path"),
                QStringLiteral("0"),           QStringLiteral("--crop-scale"),  QStringLiteral("1"),
                QStringLiteral("--precision"), QStringLiteral("fp32"),          QStringLiteral("--device"),
                QStringLiteral("cpu"),         QStringLiteral("--workers"),     QStringLiteral("1"),
                QStringLiteral("--out"),       runs,                            QStringLiteral("--name"),
                name};
    }
};

} // namespace vitlab::test
