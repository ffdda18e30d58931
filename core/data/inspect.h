#pragma once

#include "core/data/image_folder.h"

#include <string>

namespace vitlab {

/// The scan report of any dataset the app or the CLI accepts: an image folder, a folder in the
/// IDX layout, or "fashion-mnist". For IDX sets the report has the classes and counts (the
/// t10k files are the validation split) and the image size, and no file list.
ScanReport inspectDataset(const std::string& request, const ScanOptions& options = {});

} // namespace vitlab
