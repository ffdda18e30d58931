#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace vitlab {

/// The whole file; throws IoError naming it when it cannot be read.
std::string readTextFile(const std::filesystem::path& path);
/// The file parsed as JSON; throws IoError when it cannot be read, FormatError when it is not JSON.
nlohmann::json readJsonFile(const std::filesystem::path& path);

} // namespace vitlab
