#pragma once

// Runs the real vitlab-cli (its path in VITLAB_CLI, set by ctest) and collects what it printed.
#include <QProcess>
#include <QString>
#include <QStringList>

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

} // namespace vitlab::test
