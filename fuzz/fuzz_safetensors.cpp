// libFuzzer target for the .safetensors parser: any input must either parse or throw one of our
// typed errors. Every other exception, crash or sanitizer report is a finding.
#include "core/errors.h"
#include "core/io/safetensors.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

bool sameBytes(const torch::Tensor& a, const torch::Tensor& b)
{
    if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes())
        return false;
    const std::size_t bytes = a.numel() * a.element_size();
    return bytes == 0 || std::memcmp(a.data_ptr(), b.data_ptr(), bytes) == 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    vitlab::safetensors::File file;
    try {
        file = vitlab::safetensors::parse(data, size, "fuzz input");
    } catch (const vitlab::Error&) {
        return 0;
    }
    // Whatever parses must serialise and parse back unchanged; no error is expected here.
    const std::vector<std::uint8_t> bytes = vitlab::safetensors::serialize(file.tensors, file.metadata);
    const vitlab::safetensors::File again = vitlab::safetensors::parse(bytes.data(), bytes.size(), "re-serialised");
    if (again.metadata != file.metadata || again.tensors.size() != file.tensors.size())
        __builtin_trap();
    for (const auto& [name, tensor] : file.tensors) {
        const auto found = again.tensors.find(name);
        if (found == again.tensors.end() || !sameBytes(found->second, tensor))
            __builtin_trap();
    }
    return 0;
}
