// libFuzzer target for the IDX reader (MNIST's format, plain or gzipped): any input must either
// read as images or labels consistent with its header, or throw one of our typed errors. A crash,
// a sanitizer report or running out of memory on a short input is a finding.
#include "core/data/idx.h"
#include "core/errors.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace {

/// The reader takes a path: the input lives in an in-memory file, reached through /proc.
class MemoryFile {
public:
    MemoryFile(const std::uint8_t* data, std::size_t size)
        : m_fd(memfd_create("fuzz-idx", 0))
    {
        if (m_fd < 0)
            __builtin_trap();
        for (std::size_t written = 0; written < size;) {
            const auto n = ::write(m_fd, data + written, size - written);
            if (n <= 0)
                __builtin_trap();
            written += static_cast<std::size_t>(n);
        }
    }
    ~MemoryFile() { ::close(m_fd); }
    std::string path() const { return "/proc/self/fd/" + std::to_string(m_fd); }

private:
    int m_fd;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const MemoryFile file(data, size);
    try {
        const auto images = vitlab::readIdxImages(file.path());
        if (images.rows < 1 || images.cols < 1
            || images.pixels.size() != static_cast<std::size_t>(images.count * images.rows * images.cols))
            __builtin_trap();
    } catch (const vitlab::Error&) {
    }
    try {
        const auto labels = vitlab::readIdxLabels(file.path());
        (void)labels;
    } catch (const vitlab::Error&) {
    }
    return 0;
}
