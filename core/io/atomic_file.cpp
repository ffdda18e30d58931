#include "core/io/atomic_file.h"

#include "core/errors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <sstream>
#include <system_error>
#include <utility>

namespace vitlab {

namespace {

namespace fs = std::filesystem;

// Keeps a temporary file until commit() renames it over its target; removes it on any failure.
class TemporaryFile {
public:
    explicit TemporaryFile(const fs::path& target) : m_target(target)
    {
        std::random_device random;
        std::ostringstream name;
        name << target.string() << ".tmp-" << ::getpid() << '-' << std::hex << random() << random();
        m_path = name.str();
        m_fd = ::open(m_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (m_fd < 0)
            throw failure("cannot create a temporary file beside it");
    }
    TemporaryFile(const TemporaryFile&) = delete;
    TemporaryFile& operator=(const TemporaryFile&) = delete;
    ~TemporaryFile()
    {
        if (m_fd >= 0)
            ::close(m_fd);
        if (!m_committed)
            ::unlink(m_path.c_str());
    }

    void write(const std::uint8_t* data, std::size_t size)
    {
        while (size > 0) {
            const ::ssize_t written = ::write(m_fd, data, size);
            if (written < 0 && errno == EINTR)
                continue;
            if (written <= 0)
                throw failure("writing failed");
            data += written;
            size -= static_cast<std::size_t>(written);
        }
    }

    void commit()
    {
        if (::fsync(m_fd) != 0)
            throw failure("flushing to disk failed");
        const int fd = std::exchange(m_fd, -1);
        if (::close(fd) != 0)
            throw failure("closing the temporary file failed");
        if (::rename(m_path.c_str(), m_target.c_str()) != 0)
            throw failure("replacing it failed");
        m_committed = true;
        // Makes the rename itself durable; some file systems refuse to sync folders, which is harmless.
        const fs::path folder = m_target.has_parent_path() ? m_target.parent_path() : fs::path(".");
        const int folderFd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (folderFd >= 0) {
            ::fsync(folderFd);
            ::close(folderFd);
        }
    }

private:
    IoError failure(const std::string& what) const
    {
        const int error = errno;
        return IoError("cannot save " + m_target.string() + ": " + what + " (" + systemMessage(error) + ")");
    }

    fs::path m_target;
    std::string m_path;
    int m_fd = -1;
    bool m_committed = false;
};

} // namespace

std::string systemMessage(int error)
{
    return error != 0 ? std::generic_category().message(error) : std::string("unknown error");
}

void writeFileAtomically(const std::filesystem::path& path, const void* data, std::size_t size)
{
    if (!path.has_filename())
        throw IoError("cannot save " + path.string() + ": the path names a folder, not a file");
    TemporaryFile file(path);
    file.write(static_cast<const std::uint8_t*>(data), size);
    file.commit();
}

void writeFileAtomically(const std::filesystem::path& path, const std::string& text)
{
    writeFileAtomically(path, text.data(), text.size());
}

} // namespace vitlab
