#pragma once

#include <filesystem>
#include <string>

namespace vitlab {

/// The name that stands for the Fashion-MNIST set of Debian's dataset-fashion-mnist package.
inline constexpr const char* kFashionMnistName = "fashion-mnist";

/// Where a dataset named on the command line or picked in the app lives.
struct DatasetLocation {
    /// What the user gave: a folder path, or a built-in name such as "fashion-mnist".
    std::string request;
    std::filesystem::path directory;
    /// "Fashion-MNIST" for the built-in set, else the folder's own name.
    std::string displayName;
    bool builtin = false;
};

/// The folder of the packaged Fashion-MNIST IDX files: $VITLAB_FASHION_MNIST_DIR if set, else
/// /usr/share/datasets/fashion-mnist.
std::filesystem::path fashionMnistDirectory();

/// Resolves a built-in name or a folder path. Throws IoError when the folder does not exist,
/// naming the package to install for a built-in set.
DatasetLocation resolveDatasetLocation(const std::string& request);

} // namespace vitlab
