#include "gguf/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "gguf/mapping.h"
#include "gguf/reader.h"

namespace kq::gguf {

namespace {

// Output buffer: large enough that writes are few, small next to a model.
constexpr size_t kBufferSize = size_t(1) << 20;

template <class T>
void append(std::string& out, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
}

void append_string(std::string& out, std::string_view s) {
    append<uint64_t>(out, s.size());
    out.append(s.data(), s.size());
}

std::string dir_of(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string upper(std::string s) {
    for (auto& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return s;
}

// Permission bits a plain open(O_CREAT, 0666) would give (mkstemp uses 0600).
mode_t default_mode() {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    return static_cast<mode_t>(0666 & ~mask);
}

}  // namespace

Writer::Writer(const std::string& path, const std::vector<std::string>& inputs, bool sync)
    : path_(path), sync_(sync) {
    if (path.empty()) throw Error("GGUF writer: empty destination path");
    if (path.find('\0') != std::string::npos) throw IOError("path contains a NUL byte: " + quote(path));
    struct stat dst;
    if (::stat(path.c_str(), &dst) == 0) {
        if (S_ISDIR(dst.st_mode)) throw IOError(path + ": destination is a directory");
        for (const std::string& in : inputs) {
            struct stat src;
            if (::stat(in.c_str(), &src) == 0 && src.st_dev == dst.st_dev && src.st_ino == dst.st_ino)
                throw Error(path + ": the destination is the input file " + in + "; write to another path");
        }
    }
    std::string tmpl = dir_of(path) + "/." + base_of(path) + ".kqtmp.XXXXXX";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    fd_ = ::mkstemp(name.data());
    if (fd_ < 0) throw IOError(os_error(path, "cannot create a temporary file in " + dir_of(path), errno));
    tmp_path_ = name.data();
    buf_.reserve(kBufferSize);
}

Writer::~Writer() {
    if (state_ != State::Finished) abort();
}

void Writer::abort() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    if (state_ != State::Finished && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
    if (state_ != State::Finished) state_ = State::Aborted;
    buf_.clear();
    buf_.shrink_to_fit();
}

void Writer::fail_io(const std::string& what, int err) {
    abort();
    throw IOError(os_error(path_, what, err));
}

void Writer::require_declaring(const char* op) const {
    if (state_ == State::Declaring) return;
    if (state_ == State::Writing)
        throw Error(path_ + ": " + op + ": all metadata and tensor infos must be declared before tensor data");
    throw Error(path_ + ": " + op + ": the writer is " + (state_ == State::Finished ? "finished" : "aborted"));
}

void Writer::require_writing(const char* op) const {
    if (state_ == State::Declaring || state_ == State::Writing) return;
    throw Error(path_ + ": " + op + ": the writer is " + (state_ == State::Finished ? "finished" : "aborted"));
}

void Writer::add_key(const std::string& key) {
    if (!is_valid_utf8(key)) throw Error(path_ + ": metadata key " + quote(key) + " is not valid UTF-8");
    if (!keys_.insert(key).second) throw Error(path_ + ": duplicate metadata key " + quote(key));
}

void Writer::encode(std::string& out, const WriteValue& v, const std::string& key, int depth) const {
    const ValueTypeInfo& info = value_type_info(v.type);
    auto bad = [&](const std::string& msg) { return Error(path_ + ": metadata " + quote(key) + ": " + msg); };
    if (is_scalar(v.type)) {
        if (v.bytes.size() != info.size)
            throw bad(std::string(info.name) + " takes " + std::to_string(info.size) + " bytes, got " +
                      std::to_string(v.bytes.size()));
        out += v.bytes;
        return;
    }
    if (v.type == ValueType::STRING) {
        append_string(out, v.bytes);
        return;
    }
    if (depth >= kMaxArrayDepth)
        throw bad("arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
    const ValueTypeInfo& elem = value_type_info(v.elem_type);
    append<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
    append<uint64_t>(out, v.count);
    if (is_scalar(v.elem_type)) {
        if (v.bytes.size() != v.count * elem.size)
            throw bad("array of " + std::to_string(v.count) + " " + elem.name + " needs " +
                      std::to_string(v.count * elem.size) + " bytes, got " + std::to_string(v.bytes.size()));
        out += v.bytes;
        return;
    }
    if (v.items.size() != v.count)
        throw bad("array count " + std::to_string(v.count) + " but " + std::to_string(v.items.size()) + " items");
    for (const WriteValue& item : v.items) {
        if (item.type != v.elem_type)
            throw bad(std::string("array of ") + elem.name + " holds a " + value_type_info(item.type).name);
        encode(out, item, key, depth + 1);
    }
}

void Writer::add_kv(const std::string& key, const WriteValue& value) {
    require_declaring("add_kv");
    if (key == kAlignmentKey) {
        uint32_t a = 0;
        if (value.type != ValueType::UINT32 || value.bytes.size() != 4)
            throw Error(path_ + ": " + kAlignmentKey + " must be a UINT32");
        std::memcpy(&a, value.bytes.data(), 4);
        if (!is_power_of_two(a))
            throw Error(path_ + ": " + kAlignmentKey + " is " + std::to_string(a) + ", not a power of two");
        if (keys_.count(key)) throw Error(path_ + ": duplicate metadata key " + quote(key));
        alignment_ = a;
    }
    std::string enc;
    append_string(enc, key);
    append<uint32_t>(enc, static_cast<uint32_t>(value.type));
    encode(enc, value, key, 0);
    add_key(key);
    kv_bytes_ += enc;
    ++n_kv_;
}

void Writer::copy_kv(const Reader& src, const std::string& key, const std::string& as) {
    require_declaring("copy_kv");
    const KeyValue* kv = src.find(key);
    if (!kv) throw Error(src.path() + ": no metadata key " + quote(key));
    const std::string& name = as.empty() ? key : as;
    auto map = src.mapping();
    if (name == kAlignmentKey) {
        // The reader checked: UINT32 and a power of two.
        if (kv->value.type != ValueType::UINT32) throw Error(path_ + ": " + kAlignmentKey + " must be a UINT32");
        if (keys_.count(name)) throw Error(path_ + ": duplicate metadata key " + quote(name));
        std::memcpy(&alignment_, map->data() + kv->value.data, 4);
    }
    add_key(name);
    append_string(kv_bytes_, name);
    append<uint32_t>(kv_bytes_, static_cast<uint32_t>(kv->value.type));
    kv_bytes_.append(reinterpret_cast<const char*>(map->data() + kv->value.begin),
                     static_cast<size_t>(kv->value.end - kv->value.begin));
    ++n_kv_;
}

uint64_t Writer::add_tensor_info(const std::string& name, const std::vector<int64_t>& ne, const TypeTraits& type) {
    require_declaring("add_tensor_info");
    const std::string q = quote(name);
    if (!is_valid_utf8(name)) throw Error(path_ + ": tensor name " + q + " is not valid UTF-8");
    if (ne.size() > kMaxDims)
        throw Error(path_ + ": tensor " + q + ": " + std::to_string(ne.size()) + " dimensions, at most " +
                    std::to_string(kMaxDims) + " are allowed");
    Tensor t{name, static_cast<uint32_t>(ne.size()), {1, 1, 1, 1}, &type, 0, 0};
    int64_t n = 1;
    for (size_t j = 0; j < ne.size(); ++j) {
        if (ne[j] < 0) throw Error(path_ + ": tensor " + q + ": negative dimension " + std::to_string(ne[j]));
        t.ne[j] = ne[j];
        if (!checked_mul(n, ne[j], &n)) throw Error(path_ + ": tensor " + q + ": element count overflows int64");
    }
    if (t.ne[0] % type.block_size != 0)
        throw Error(path_ + ": tensor " + q + ": row length " + std::to_string(t.ne[0]) +
                    " is not a multiple of the block size " + std::to_string(type.block_size) + " of type " +
                    upper(type.name));
    const uint64_t row = static_cast<uint64_t>(t.ne[0] / type.block_size) * type.type_size;
    const uint64_t rows = t.ne[0] == 0 ? 0 : static_cast<uint64_t>(n / t.ne[0]);
    if (!checked_mul(row, rows, &t.nbytes)) throw Error(path_ + ": tensor " + q + ": byte size overflows");
    if (!names_.emplace(name, tensors_.size()).second) throw Error(path_ + ": duplicate tensor name " + q);
    tensors_.push_back(std::move(t));
    return tensors_.back().nbytes;
}

void Writer::put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    file_pos_ += n;
    if (buf_.size() + n > kBufferSize) flush();
    if (n >= kBufferSize) {
        // Large pieces go straight to the file.
        while (n > 0) {
            const ssize_t w = ::write(fd_, b, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                fail_io("write failed", errno);
            }
            b += w;
            n -= static_cast<size_t>(w);
        }
        return;
    }
    buf_.insert(buf_.end(), b, b + n);
}

void Writer::flush() {
    const uint8_t* b = buf_.data();
    size_t n = buf_.size();
    while (n > 0) {
        const ssize_t w = ::write(fd_, b, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            fail_io("write failed", errno);
        }
        b += w;
        n -= static_cast<size_t>(w);
    }
    buf_.clear();
}

void Writer::pad_to_alignment() {
    static const uint8_t zeros[256] = {};  // alignment may exceed 256: loop
    uint64_t target;
    checked_align_up(file_pos_, alignment_, &target);  // cannot overflow: file_pos_ is a real size
    while (file_pos_ < target) put(zeros, static_cast<size_t>(std::min<uint64_t>(target - file_pos_, sizeof zeros)));
}

// Tensor offsets follow from the declared sizes and the final alignment
// (a "general.alignment" may come after some tensor infos).
void Writer::write_header() {
    uint64_t offset = 0;
    for (Tensor& t : tensors_) {
        t.offset = offset;
        uint64_t end;
        if (!checked_add(offset, t.nbytes, &end) || !checked_align_up(end, alignment_, &offset))
            throw Error(path_ + ": tensor data size overflows");
    }
    std::string h;
    append<uint32_t>(h, kMagic);
    append<uint32_t>(h, kVersion);
    append<uint64_t>(h, tensors_.size());
    append<uint64_t>(h, n_kv_);
    put(h.data(), h.size());
    put(kv_bytes_.data(), kv_bytes_.size());
    std::string().swap(kv_bytes_);
    std::string ti;
    for (const Tensor& t : tensors_) {
        append_string(ti, t.name);
        append<uint32_t>(ti, t.n_dims);
        for (uint32_t j = 0; j < t.n_dims; ++j) append<uint64_t>(ti, static_cast<uint64_t>(t.ne[j]));
        append<uint32_t>(ti, static_cast<uint32_t>(t.type->id));
        append<uint64_t>(ti, t.offset);
    }
    put(ti.data(), ti.size());
    pad_to_alignment();
    state_ = State::Writing;
    skip_empty_tensors();
}

void Writer::skip_empty_tensors() {
    while (cur_ < tensors_.size() && tensors_[cur_].nbytes == 0) ++cur_;
}

void Writer::write_tensor_data(const void* data, size_t n) {
    require_writing("write_tensor_data");
    if (state_ == State::Declaring) write_header();
    if (cur_ >= tensors_.size()) {
        if (n == 0) return;
        throw Error(path_ + ": write_tensor_data: all " + std::to_string(tensors_.size()) +
                    " declared tensors are already written");
    }
    const Tensor& t = tensors_[cur_];
    if (n > t.nbytes - cur_done_)
        throw Error(path_ + ": tensor " + quote(t.name) + ": got " + std::to_string(n) + " bytes, but only " +
                    std::to_string(t.nbytes - cur_done_) + " of its " + std::to_string(t.nbytes) + " remain");
    put(data, n);
    cur_done_ += n;
    if (cur_done_ == t.nbytes) {
        pad_to_alignment();
        ++cur_;
        cur_done_ = 0;
        skip_empty_tensors();
    }
}

void Writer::write_tensor(const std::string& name, const void* data, size_t n) {
    require_writing("write_tensor");
    if (state_ == State::Declaring) write_header();
    const std::string q = quote(name);
    const auto it = names_.find(name);
    if (it == names_.end()) throw Error(path_ + ": write_tensor: no tensor " + q + " was declared");
    const Tensor& t = tensors_[it->second];
    if (t.nbytes == 0 && n == 0 && it->second <= cur_) return;
    if (it->second != cur_ || cur_done_ != 0) {
        const std::string expected = cur_ < tensors_.size() ? "tensor " + quote(tensors_[cur_].name) : "no more data";
        throw Error(path_ + ": tensor " + q + " written out of order; " + expected + " comes next");
    }
    if (n != t.nbytes)
        throw Error(path_ + ": tensor " + q + " has " + std::to_string(n) + " bytes, expected " +
                    std::to_string(t.nbytes));
    write_tensor_data(data, n);
}

std::string Writer::current_tensor() const { return cur_ < tensors_.size() ? tensors_[cur_].name : std::string(); }

uint64_t Writer::current_remaining() const { return cur_ < tensors_.size() ? tensors_[cur_].nbytes - cur_done_ : 0; }

void Writer::finish() {
    require_writing("finish");
    if (state_ == State::Declaring) write_header();
    if (cur_ < tensors_.size()) {
        const Tensor& t = tensors_[cur_];
        const std::string msg = path_ + ": finish: tensor " + quote(t.name) + " (" + std::to_string(cur_ + 1) +
                                " of " + std::to_string(tensors_.size()) + ") has " +
                                std::to_string(t.nbytes - cur_done_) + " of its " + std::to_string(t.nbytes) +
                                " bytes unwritten; the file was not created";
        abort();
        throw Error(msg);
    }
    flush();
    if (::fchmod(fd_, default_mode()) != 0) fail_io("cannot set permissions", errno);
    if (sync_ && ::fsync(fd_) != 0) fail_io("fsync failed", errno);
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail_io("close failed", errno);
    if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) fail_io("cannot rename " + tmp_path_ + " into place", errno);
    state_ = State::Finished;
}

}  // namespace kq::gguf
