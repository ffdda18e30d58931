#include "core/data/inspect.h"

#include "core/data/dataset_location.h"
#include "core/data/idx.h"

#include <algorithm>

namespace vitlab {

ScanReport inspectDataset(const std::string& request, const ScanOptions& options)
{
    const auto location = resolveDatasetLocation(request);
    if (!isIdxFolder(location.directory))
        return scanImageFolder(location.directory, options);

    const auto idx = loadIdxFolder(location.directory, location.builtin && request == kFashionMnistName);
    ScanReport report;
    report.root = location.directory;
    report.explicitSplits = true;
    for (const auto& name : idx.classNames)
        report.classes.push_back({name});
    for (const auto label : idx.trainLabels)
        ++report.classes[label].train;
    for (const auto label : idx.testLabels)
        ++report.classes[label].validation;
    std::int64_t largest = 0, smallest = 0;
    for (const auto& entry : report.classes) {
        const auto total = entry.train + entry.validation;
        if (total == 0) {
            report.emptyClasses.push_back(entry.name);
            continue;
        }
        smallest = largest == 0 ? total : std::min(smallest, total);
        largest = std::max(largest, total);
    }
    report.imbalanceRatio = smallest > 0 ? static_cast<double>(largest) / static_cast<double>(smallest) : 1.0;
    report.minWidth = report.maxWidth = idx.trainImages.cols;
    report.minHeight = report.maxHeight = idx.trainImages.rows;
    report.meanWidth = static_cast<double>(idx.trainImages.cols);
    report.meanHeight = static_cast<double>(idx.trainImages.rows);
    return report;
}

} // namespace vitlab
