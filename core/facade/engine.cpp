#include "core/facade/engine.h"

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

} // namespace vitlab::facade
