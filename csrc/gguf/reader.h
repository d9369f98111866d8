// GGUF reader: parses and validates a whole file over a read-only mmap.
//
// The constructor walks the header, every metadata value (nested arrays
// included) and every tensor info once, with bounds-checked reads and checked
// arithmetic, and throws kq::GGUFError naming the file and the fault on any
// inconsistency (kq::IOError when the OS refuses to open or map it). After it
// returns, every offset stored below is known to lie inside the mapping, so
// accessors read without further checks. Metadata values are not copied:
// a Value records where its bytes are, and is decoded on demand.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/traits.h"
#include "gguf/format.h"
#include "gguf/mapping.h"

namespace kq::gguf {

// One metadata value, located in the file.
struct Value {
    ValueType type = ValueType::UINT8;
    ValueType elem_type = ValueType::UINT8;  // ARRAY: type of the elements
    uint64_t begin = 0;  // file offset of the encoding (after the value-type u32)
    uint64_t end = 0;    // one past its last byte
    uint64_t data = 0;   // scalar: its bytes; STRING: first byte; ARRAY: first element
    uint64_t count = 0;  // scalar: 1; STRING: bytes; ARRAY: elements
    std::vector<Value> items;  // ARRAY of ARRAY only: the inner arrays
};

struct KeyValue {
    std::string key;
    Value value;
};

struct TensorInfo {
    std::string name;
    const TypeTraits* type = nullptr;
    uint32_t n_dims = 0;
    int64_t ne[kMaxDims] = {1, 1, 1, 1};  // ggml order; unused dims are 1
    uint64_t rel_offset = 0;  // as stored: relative to the data section
    uint64_t offset = 0;      // absolute file offset of the first byte
    uint64_t nbytes = 0;
    int64_t n_elements = 0;
    int64_t row_length() const { return ne[0]; }
    int64_t n_rows() const { return ne[0] == 0 ? 0 : n_elements / ne[0]; }
};

class Reader {
public:
    explicit Reader(const std::string& path);

    const std::string& path() const { return path_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    uint64_t file_size() const { return file_size_; }

    const std::vector<KeyValue>& metadata() const { return kvs_; }
    const KeyValue* find(std::string_view key) const;
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const;
    // Throws kq::Error naming the tensor and the file when absent.
    const TensorInfo& tensor(std::string_view name) const;

    // The mapping; throws kq::Error once the reader is closed. Hold the
    // returned pointer while using bytes from it (it keeps them mapped).
    std::shared_ptr<const Mapping> mapping() const;
    bool closed() const { return !map_; }
    // Drops the reader's hold on the mapping (views handed out keep theirs).
    void close() { map_.reset(); }

    // Decoding helpers over a mapping from this reader (`m` = mapping()).
    // Typed getters throw kq::GGUFError naming the key on a type mismatch.
    static std::string_view string(const Mapping& m, const Value& v);
    // Calls fn(index, bytes) for each element of an ARRAY of STRING.
    static void for_each_string(const Mapping& m, const Value& v,
                                const std::function<void(uint64_t, std::string_view)>& fn);
    int64_t get_int(const KeyValue& kv) const;    // any integer type (UINT64 beyond int64 throws)
    double get_float(const KeyValue& kv) const;   // FLOAT32 / FLOAT64 / integers
    bool get_bool(const KeyValue& kv) const;
    std::string get_string(const KeyValue& kv) const;

private:
    std::string path_;
    std::shared_ptr<const Mapping> map_;
    uint32_t version_ = 0;
    uint64_t alignment_ = kDefaultAlignment;
    uint64_t data_offset_ = 0;
    uint64_t file_size_ = 0;
    std::vector<KeyValue> kvs_;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, size_t> kv_index_, tensor_index_;

    friend class Parser;
};

}  // namespace kq::gguf
