// A read-only memory mapping of a whole file (POSIX mmap).
//
// Shared by pointer: the reader holds one, and every zero-copy view handed
// out (NumPy arrays over tensor data) holds another, so the pages stay mapped
// until the last user lets go, whatever order they are released in.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace kq::gguf {

class Mapping {
public:
    // Maps `path` read-only. Throws kq::IOError naming the file when it cannot
    // be opened, is not a regular file, or cannot be mapped. An empty file
    // gives an empty mapping (data() == nullptr, size() == 0).
    static std::shared_ptr<const Mapping> open(const std::string& path);

    ~Mapping();
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    const std::string& path() const { return path_; }
    // Identity of the mapped file (st_dev, st_ino), to tell whether a writer's
    // destination is one of its inputs.
    uint64_t device() const { return dev_; }
    uint64_t inode() const { return ino_; }
    // Drops the pages of [offset, offset + n) from this process's resident set
    // (madvise MADV_DONTNEED on the whole pages it touches). The bytes stay
    // readable: a later access maps them again from the page cache. Streaming
    // a model through the mapping calls it after each tensor so that the
    // resident set does not grow to the file's size. Out-of-range parts are
    // ignored; it never fails (it is only a hint).
    void release(uint64_t offset, uint64_t n) const noexcept;

private:
    Mapping() = default;
    std::string path_;
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
    uint64_t dev_ = 0, ino_ = 0;
};

// "<path>: <what>: <strerror(err)>", the message of every kq::IOError here.
std::string os_error(const std::string& path, const std::string& what, int err);

}  // namespace kq::gguf
