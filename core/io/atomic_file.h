#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace vitlab {

/// Writes `size` bytes to `path` atomically: into a temporary file beside it, flushed to disk,
/// then renamed over it, so a crash or kill at any moment leaves either the previous file or the
/// new one, never a mix. Throws IoError naming `path` when it cannot write; no temporary file is
/// left behind.
void writeFileAtomically(const std::filesystem::path& path, const void* data, std::size_t size);
void writeFileAtomically(const std::filesystem::path& path, const std::string& text);

/// The operating system's sentence for an errno value.
std::string systemMessage(int error);

} // namespace vitlab
