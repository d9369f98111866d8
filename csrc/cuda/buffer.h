// Scratch device memory owned for the duration of one call.
#pragma once
#include <cstddef>

namespace kq::cuda {

class Buffer {
public:
    explicit Buffer(size_t bytes);  // 0 bytes: no allocation; throws kq::Error when out of memory
    ~Buffer();
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    template <class T>
    T* as() const { return static_cast<T*>(p_); }

private:
    void* p_;
};

}  // namespace kq::cuda
