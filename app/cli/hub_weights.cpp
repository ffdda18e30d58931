#include "app/cli/hub_weights.h"

#include "core/hub/pretrained_files.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace vitlab::cli {

hub::DownloadProgress downloadProgressBar(const std::string& what)
{
    const bool terminal = ::isatty(STDERR_FILENO) != 0;
    return [what, terminal, lastTenth = -1, lastDraw = std::chrono::steady_clock::time_point{}](
               std::int64_t received, std::int64_t total) mutable {
        const double share = total > 0 ? static_cast<double>(received) / static_cast<double>(total) : 0.0;
        if (terminal) {
            const auto now = std::chrono::steady_clock::now();
            if (now - lastDraw < std::chrono::milliseconds(100) && received != total)
                return true;
            lastDraw = now;
            constexpr int kWidth = 30;
            std::string bar(static_cast<std::size_t>(share * kWidth), '=');
            bar.resize(kWidth, ' ');
            std::fprintf(stderr, "\r%s [%s] %s of %s ", what.c_str(), bar.c_str(), hub::formatBytes(received).c_str(),
                         hub::formatBytes(total).c_str());
            if (received == total)
                std::fprintf(stderr, "\n");
        } else if (const int tenth = static_cast<int>(share * 10); tenth != lastTenth && total > 0) {
            lastTenth = tenth;
            std::fprintf(stderr, "%s: %d%% of %s\n", what.c_str(), tenth * 10, hub::formatBytes(total).c_str());
        }
        std::fflush(stderr);
        return true;
    };
}

ResolvedWeights resolveWeights(const std::string& weights, std::string& model)
{
    ResolvedWeights resolved;
    if (!hub::isHubWeights(weights)) {
        resolved.file = weights;
        return resolved;
    }
    const auto pretrained = hub::pretrainedWeightsFor(weights, model);
    if (model.empty())
        model = pretrained.model;
    const hub::HubClient client;
    auto files = hub::fetchPretrainedFiles(client, pretrained, downloadProgressBar(pretrained.repository()));
    resolved.file = files.weights;
    resolved.pretrained = files.described;
    return resolved;
}

} // namespace vitlab::cli
