#pragma once

#include "core/errors.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace vitlab {

/// Reads a family's constructor arguments (timm's keyword arguments) from a JSON object, with
/// defaults, and refuses keys nobody read, so a typo in a config is an error, not a silent default.
class ModelArgs {
public:
    ModelArgs(const nlohmann::json& args, std::string family);

    template <typename T>
    T get(const std::string& key, const T& fallback)
    {
        m_read.insert(key);
        const auto it = m_args.find(key);
        if (it == m_args.end() || it->is_null())
            return fallback;
        try {
            return it->get<T>();
        } catch (const nlohmann::json::exception&) {
            throw ConfigError(m_family + " argument \"" + key + "\" has the wrong type: " + it->dump());
        }
    }

    /// An integer that must lie in [min, max].
    std::int64_t getInt(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max);
    double getDouble(const std::string& key, double fallback, double min, double max);
    /// A size given as one integer or as [height, width], as timm's img_size.
    std::array<std::int64_t, 2> getSize(const std::string& key, std::int64_t fallback);
    /// A list of positive integers, as Swin's depths.
    std::vector<std::int64_t> getIntList(const std::string& key, const std::vector<std::int64_t>& fallback);
    /// Optional boolean: absent or null gives nullopt (timm's "None").
    std::optional<bool> getOptionalBool(const std::string& key);
    /// Marks keys that a caller accepts but ignores (such as "timm_class").
    void ignore(const std::string& key) { m_read.insert(key); }

    /// Throws ConfigError naming every key that was never read.
    void rejectUnknown() const;

private:
    const nlohmann::json& m_args;
    std::string m_family;
    std::set<std::string> m_read;
};

} // namespace vitlab
