#include "core/facade/engine.h"

#include "core/data/idx.h"
#include "core/errors.h"

namespace vitlab::facade {

RuntimeInfo startEngine()
{
    return initRuntime();
}

bool tryResolveDataset(const std::string& request, DatasetLocation& location, std::string& error)
{
    try {
        location = resolveDatasetLocation(request);
        return true;
    } catch (const Error& e) {
        error = e.what();
        return false;
    }
}

std::vector<std::string> classSamples(const ScanReport& report, std::int64_t label, std::size_t limit)
{
    std::vector<std::string> sources;
    if (!report.files.empty()) {
        for (const auto& file : report.files) {
            if (file.label == label && sources.size() < limit)
                sources.push_back(file.path.string());
        }
        return sources;
    }
    if (!isIdxFolder(report.root))
        return sources;
    for (const char* name : {"train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte"}) {
        const auto path = report.root / name;
        std::error_code error;
        if (!std::filesystem::exists(path, error))
            continue;
        const auto labels = readIdxLabels(path);
        for (std::size_t i = 0; i < labels.size() && sources.size() < limit; ++i) {
            if (labels[i] == label)
                sources.push_back(report.root.string() + "#train:" + std::to_string(i));
        }
        break;
    }
    return sources;
}

} // namespace vitlab::facade
