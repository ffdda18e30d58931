#include "core/io/text_file.h"

#include "core/errors.h"

#include <fstream>
#include <sstream>

namespace vitlab {

std::string readTextFile(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw IoError("cannot read " + path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

nlohmann::json readJsonFile(const std::filesystem::path& path)
{
    try {
        return nlohmann::json::parse(readTextFile(path));
    } catch (const nlohmann::json::exception& error) {
        throw FormatError(path.string() + " is not valid JSON: " + error.what());
    }
}

} // namespace vitlab
