#include "core/models/model_args.h"

namespace vitlab {

ModelArgs::ModelArgs(const nlohmann::json& args, std::string family)
    : m_args(args)
    , m_family(std::move(family))
{
    if (!m_args.is_object())
        throw ConfigError(m_family + " arguments must be a JSON object, not " + m_args.dump());
    m_read.insert("family");
    m_read.insert("timm_class");
}

std::int64_t ModelArgs::getInt(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max)
{
    const auto value = get<std::int64_t>(key, fallback);
    if (value < min || value > max)
        throw ConfigError(m_family + " argument \"" + key + "\" is " + std::to_string(value) + "; it must be between "
                          + std::to_string(min) + " and " + std::to_string(max));
    return value;
}

double ModelArgs::getDouble(const std::string& key, double fallback, double min, double max)
{
    const auto value = get<double>(key, fallback);
    if (!(value >= min && value <= max))
        throw ConfigError(m_family + " argument \"" + key + "\" is " + std::to_string(value) + "; it must be between "
                          + std::to_string(min) + " and " + std::to_string(max));
    return value;
}

std::array<std::int64_t, 2> ModelArgs::getSize(const std::string& key, std::int64_t fallback)
{
    m_read.insert(key);
    const auto it = m_args.find(key);
    std::array<std::int64_t, 2> size{fallback, fallback};
    if (it != m_args.end() && !it->is_null()) {
        if (it->is_number_integer()) {
            size = {it->get<std::int64_t>(), it->get<std::int64_t>()};
        } else if (it->is_array() && it->size() == 2 && (*it)[0].is_number_integer() && (*it)[1].is_number_integer()) {
            size = {(*it)[0].get<std::int64_t>(), (*it)[1].get<std::int64_t>()};
        } else {
            throw ConfigError(m_family + " argument \"" + key + "\" must be an integer or [height, width], not "
                              + it->dump());
        }
    }
    for (const auto side : size) {
        if (side < 1 || side > 8192)
            throw ConfigError(m_family + " argument \"" + key + "\" must be between 1 and 8192 pixels");
    }
    return size;
}

std::vector<std::int64_t> ModelArgs::getIntList(const std::string& key, const std::vector<std::int64_t>& fallback)
{
    const auto values = get<std::vector<std::int64_t>>(key, fallback);
    if (values.empty())
        throw ConfigError(m_family + " argument \"" + key + "\" must not be empty");
    for (const auto value : values) {
        if (value < 1 || value > 4096)
            throw ConfigError(m_family + " argument \"" + key + "\" must hold positive integers");
    }
    return values;
}

std::optional<bool> ModelArgs::getOptionalBool(const std::string& key)
{
    m_read.insert(key);
    const auto it = m_args.find(key);
    if (it == m_args.end() || it->is_null())
        return std::nullopt;
    if (!it->is_boolean())
        throw ConfigError(m_family + " argument \"" + key + "\" must be true, false or null");
    return it->get<bool>();
}

void ModelArgs::rejectUnknown() const
{
    std::string unknown;
    for (const auto& [key, value] : m_args.items()) {
        if (m_read.count(key) == 0)
            unknown += (unknown.empty() ? "\"" : ", \"") + key + "\"";
    }
    if (!unknown.empty())
        throw ConfigError("unknown " + m_family + " argument(s): " + unknown);
}

} // namespace vitlab
