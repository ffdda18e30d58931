#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace vitlab::safetensors {

/// Tensors by name, as a checkpoint holds them (timm's state-dict keys).
using TensorMap = std::map<std::string, torch::Tensor>;
/// The free-form string pairs of the header's "__metadata__" entry.
using Metadata = std::map<std::string, std::string>;

struct File {
    TensorMap tensors;
    Metadata metadata;
};

/// Largest header accepted, as in the reference implementation: anything larger is refused
/// before it is read.
inline constexpr std::uint64_t kMaxHeaderBytes = 100u * 1024u * 1024u;

/// Parses a complete .safetensors image held in memory. Tensors keep the file's dtype (F64, F32,
/// F16, BF16, I64, I32, I16, I8, U8, BOOL) and own their memory. Throws vitlab::FormatError with
/// a sentence naming `sourceName` and the problem for any malformed input: a bad header length,
/// JSON that is not an object of tensor entries, unknown dtypes, negative or overflowing
/// dimensions, offsets outside the data or overlapping or leaving holes, byte counts that do not
/// match the shape. Never crashes, whatever the bytes.
File parse(const std::uint8_t* data, std::size_t size, const std::string& sourceName = "input");

/// Reads and parses a file. Throws vitlab::IoError when it cannot be read, FormatError as parse().
File load(const std::filesystem::path& path);

/// A tensor's entry in the header.
struct TensorInfo {
    std::string dtype; ///< as in the file: "F32", "BF16", ...
    std::vector<std::int64_t> shape;
};
/// Reads and validates only the header (names, dtypes, shapes), not the tensor data: enough to
/// learn num_classes from a weights file or to compare key sets. Validates exactly as load() does,
/// with the offsets checked against the file's size; throws the same errors.
std::map<std::string, TensorInfo> readHeader(const std::filesystem::path& path, Metadata* metadata = nullptr);

/// Serialises tensors (any device, made contiguous on the CPU) in their dtype, with `metadata`
/// under "__metadata__" when it is not empty. Tensors are laid out in the reference writer's order
/// (by dtype, 8-byte types first, then by name) and the header is padded to 8 bytes, so the bytes
/// match Python's safetensors and every tensor's data is aligned to its element size. Throws
/// vitlab::FormatError for a dtype the format lacks (complex, quantized), a sparse tensor or the
/// reserved name "__metadata__".
std::vector<std::uint8_t> serialize(const TensorMap& tensors, const Metadata& metadata = {});

/// Writes atomically: to a temporary file beside `path`, flushed, then renamed over it, so an
/// interrupted write leaves the previous file intact. Throws vitlab::IoError naming `path` when it
/// cannot write (no temporary file is left behind), FormatError as serialize().
void save(const std::filesystem::path& path, const TensorMap& tensors, const Metadata& metadata = {});

} // namespace vitlab::safetensors
