#pragma once

// The torch-free face of the engine for the desktop front end. ui/ includes only this header
// (and the plain structs it brings); it never sees a tensor.
#include "core/data/dataset_location.h"
#include "core/runtime.h"

namespace vitlab::facade {

/// Starts the engine for the app: threads and device, as `initRuntime` does.
RuntimeInfo startEngine();

/// Resolves a dataset request without throwing; `error` receives the reason on failure.
bool tryResolveDataset(const std::string& request, DatasetLocation& location, std::string& error);

} // namespace vitlab::facade
