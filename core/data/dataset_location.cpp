#include "core/data/dataset_location.h"

#include "core/errors.h"

#include <cstdlib>
#include <system_error>

namespace vitlab {

std::filesystem::path fashionMnistDirectory()
{
    if (const char* dir = std::getenv("VITLAB_FASHION_MNIST_DIR"); dir && *dir)
        return dir;
    return "/usr/share/datasets/fashion-mnist";
}

DatasetLocation resolveDatasetLocation(const std::string& request)
{
    DatasetLocation location;
    location.request = request;
    std::error_code error;
    if (request == kFashionMnistName) {
        location.directory = fashionMnistDirectory();
        location.displayName = "Fashion-MNIST";
        location.builtin = true;
        if (!std::filesystem::is_directory(location.directory, error))
            throw IoError("the Fashion-MNIST demo data is not installed (expected in "
                          + location.directory.string()
                          + "); install the Debian package dataset-fashion-mnist");
        return location;
    }
    if (request.empty())
        throw IoError("no dataset folder was given");
    location.directory = std::filesystem::absolute(request, error);
    if (error)
        location.directory = request;
    if (!std::filesystem::is_directory(location.directory, error))
        throw IoError("the dataset folder " + location.directory.string() + " does not exist or is not a folder");
    location.displayName = location.directory.lexically_normal().filename().string();
    if (location.displayName.empty())
        location.displayName = location.directory.parent_path().filename().string();
    return location;
}

} // namespace vitlab
