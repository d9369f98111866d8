#include "gguf/mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "gguf/format.h"

namespace kq::gguf {

std::string os_error(const std::string& path, const std::string& what, int err) {
    return path + ": " + what + ": " + std::strerror(err);
}

std::shared_ptr<const Mapping> Mapping::open(const std::string& path) {
    // open() would silently stop at an embedded NUL and read another file.
    if (path.find('\0') != std::string::npos) throw IOError("path contains a NUL byte: " + quote(path));
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw IOError(os_error(path, "cannot open", errno));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw IOError(os_error(path, "cannot stat", err));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw IOError(path + ": not a regular file" + (S_ISDIR(st.st_mode) ? " (it is a directory)" : ""));
    }
    std::shared_ptr<Mapping> m(new Mapping());
    m->path_ = path;
    m->size_ = static_cast<uint64_t>(st.st_size);
    m->dev_ = static_cast<uint64_t>(st.st_dev);
    m->ino_ = static_cast<uint64_t>(st.st_ino);
    if (m->size_ > 0) {
        void* p = ::mmap(nullptr, static_cast<size_t>(m->size_), PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            const int err = errno;
            ::close(fd);
            throw IOError(os_error(path, "cannot mmap " + std::to_string(m->size_) + " bytes", err));
        }
        m->data_ = static_cast<const uint8_t*>(p);
    }
    // The mapping keeps the file's pages referenced; the descriptor is not needed.
    ::close(fd);
    return m;
}

void Mapping::release(uint64_t offset, uint64_t n) const noexcept {
    if (!data_ || offset >= size_) return;
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t start = offset / page * page;  // data_ is page-aligned (mmap)
    const uint64_t end = n > size_ - offset ? size_ : offset + n;
    if (end > start)
        ::madvise(const_cast<uint8_t*>(data_) + start, static_cast<size_t>(end - start), MADV_DONTNEED);
}

Mapping::~Mapping() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), static_cast<size_t>(size_));
}

}  // namespace kq::gguf
