// Exceptions thrown by the native core. The bindings translate them into the
// Python classes kquants.KQuantsError (ValueError), kquants.GGUFError
// (KQuantsError) and kquants.KQuantsIOError (OSError). Messages always name
// the file, tensor or argument at fault.
#pragma once
#include <stdexcept>
#include <string>

namespace kq {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// A malformed or unsupported GGUF file.
struct GGUFError : Error {
    using Error::Error;
};
// The operating system refused (open, mmap, write, rename ...).
struct IOError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace kq
