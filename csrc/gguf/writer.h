// GGUF writer: streams a file tensor by tensor, never holding the model.
//
// Use: declare every metadata value (add_kv / add_raw_kv) and every tensor
// (add_tensor_info), then pass each tensor's bytes in declaration order
// (write_tensor_data, whole or in pieces), then finish(). The header and the
// tensor infos, whose offsets follow from the declared sizes, are written at
// the first data write; each tensor is padded with zeros up to the alignment.
//
// Everything goes to a temporary file in the destination's folder, renamed
// over the destination by finish() (atomic on POSIX; with `sync`, the data is
// flushed to the device first, so that a crash cannot leave a renamed file
// whose blocks were never written). On any error while
// writing, on abort(), or when the writer is destroyed unfinished, the
// temporary file is removed: a partial file never appears under the
// destination name.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/traits.h"
#include "gguf/format.h"

namespace kq::gguf {

class Reader;

// A metadata value to write.
struct WriteValue {
    ValueType type = ValueType::UINT8;
    // Scalar: its little-endian bytes (exactly the type's size).
    // STRING: the text. ARRAY of scalars: the packed little-endian elements.
    std::string bytes;
    ValueType elem_type = ValueType::UINT8;  // ARRAY: element type
    uint64_t count = 0;                      // ARRAY: element count
    std::vector<WriteValue> items;           // ARRAY of STRING or ARRAY: the elements
};

class Writer {
public:
    // `inputs`: files read to produce this one; the destination must not be
    // any of them (checked by device and inode). `sync`: fsync before the
    // rename. Throws kq::IOError when the temporary file cannot be created.
    Writer(const std::string& path, const std::vector<std::string>& inputs = {}, bool sync = true);
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Metadata. Throws kq::Error on a duplicate key, a malformed value, or
    // once tensor data has started. "general.alignment" must be a UINT32
    // power of two and sets the data alignment (default 32).
    void add_kv(const std::string& key, const WriteValue& value);
    // Copies key `key` of `src` verbatim (type and encoded bytes), e.g. a
    // whole tokenizer vocabulary, without decoding it. `as` renames it.
    void copy_kv(const Reader& src, const std::string& key, const std::string& as = "");
    // A tensor of shape ne (ggml order, 0..4 dims) and type; returns its byte size.
    uint64_t add_tensor_info(const std::string& name, const std::vector<int64_t>& ne, const TypeTraits& type);

    // Appends bytes to the current tensor (the first declared one not yet
    // complete). More bytes than the tensor has left is an error.
    void write_tensor_data(const void* data, size_t n);
    // Writes the whole of tensor `name` at once: it must be the current
    // tensor, none of it written yet, and `n` its exact size. (An empty
    // tensor takes no bytes; naming one already passed is accepted.)
    void write_tensor(const std::string& name, const void* data, size_t n);
    // Writes what is still unwritten of the header, checks every tensor is
    // complete, syncs (unless disabled) and renames into place.
    void finish();
    // Removes the temporary file; the writer is unusable afterwards.
    void abort() noexcept;

    const std::string& path() const { return path_; }
    const std::string& temp_path() const { return tmp_path_; }
    uint32_t alignment() const { return alignment_; }
    size_t n_kv() const { return n_kv_; }
    size_t n_tensors() const { return tensors_.size(); }
    size_t n_tensors_written() const { return cur_; }
    // Name and bytes still expected of the current tensor ("" / 0 when none).
    std::string current_tensor() const;
    uint64_t current_remaining() const;
    bool finished() const { return state_ == State::Finished; }
    bool aborted() const { return state_ == State::Aborted; }

private:
    enum class State { Declaring, Writing, Finished, Aborted };
    struct Tensor {
        std::string name;
        uint32_t n_dims;
        int64_t ne[kMaxDims];
        const TypeTraits* type;
        uint64_t nbytes;
        uint64_t offset;
    };

    std::string path_, tmp_path_;
    int fd_ = -1;
    State state_ = State::Declaring;
    uint32_t alignment_ = kDefaultAlignment;
    std::string kv_bytes_;  // encoded metadata, in order
    size_t n_kv_ = 0;
    bool sync_ = true;
    std::unordered_set<std::string> keys_;
    std::unordered_map<std::string, size_t> names_;  // tensor name -> index
    std::vector<Tensor> tensors_;
    size_t cur_ = 0;          // index of the tensor being written
    uint64_t cur_done_ = 0;   // bytes of it written so far
    uint64_t file_pos_ = 0;   // bytes written to the file (buffered included)
    std::vector<uint8_t> buf_;

    [[noreturn]] void fail_io(const std::string& what, int err);
    void require_declaring(const char* op) const;
    void require_writing(const char* op) const;
    void add_key(const std::string& key);
    void encode(std::string& out, const WriteValue& v, const std::string& key, int depth) const;
    void write_header();
    void skip_empty_tensors();
    void put(const void* p, size_t n);
    void pad_to_alignment();
    void flush();
};

}  // namespace kq::gguf
