#include "gguf/reader.h"

#include <cstring>
#include <limits>

#include "core/error.h"

namespace kq::gguf {

namespace {

std::string upper(const char* s) {
    std::string u = s;
    for (auto& c : u)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return u;
}

std::string shape_string(const TensorInfo& t) {
    std::string s = "[";
    for (uint32_t j = 0; j < t.n_dims; ++j) s += (j ? ", " : "") + std::to_string(t.ne[j]);
    return s + "]";
}

}  // namespace

// Walks the file once, front to back. Every read goes through need(), which
// compares against the bytes left (never forms an out-of-range pointer), and
// every count is bounded by what the rest of the file could hold before
// anything is allocated for it. Context strings for messages are built by
// callables, only when an error is raised.
class Parser {
public:
    Parser(Reader& r, const Mapping& m) : r_(r), p_(m.data()), size_(m.size()) {}

    void run() {
        header();
        std::vector<KeyValue>& kvs = r_.kvs_;
        kvs.reserve(static_cast<size_t>(n_kv_));
        for (uint64_t i = 0; i < n_kv_; ++i) kvs.push_back(key_value(i));
        alignment();
        r_.tensors_.reserve(static_cast<size_t>(n_tensors_));
        for (uint64_t i = 0; i < n_tensors_; ++i) r_.tensors_.push_back(tensor_info(i));
        uint64_t start;
        if (!checked_align_up(pos_, r_.alignment_, &start)) fail("data section offset overflows");
        r_.data_offset_ = start;
        for (TensorInfo& t : r_.tensors_) place(t);
    }

private:
    Reader& r_;
    const uint8_t* p_;
    uint64_t size_;
    uint64_t pos_ = 0;
    uint64_t n_tensors_ = 0, n_kv_ = 0;

    [[noreturn]] void fail(const std::string& msg) const { throw GGUFError(r_.path_ + ": " + msg); }

    uint64_t remaining() const { return size_ - pos_; }

    template <class What>
    void need(uint64_t n, What&& what) const {
        if (n > remaining())
            fail("truncated file: " + what() + " at offset " + std::to_string(pos_) + " needs " + std::to_string(n) +
                 " bytes, but the file ends at " + std::to_string(size_));
    }

    template <class T, class What>
    T read(What&& what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, p_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    // A string's length, checked against the bytes left; advances past it.
    template <class What>
    std::string_view read_string(What&& what) {
        const uint64_t at = pos_;
        const uint64_t n = read<uint64_t>([&] { return "length of " + what(); });
        if (n > remaining())
            fail("string length " + std::to_string(n) + " of " + what() + " at offset " + std::to_string(at) +
                 " exceeds the " + std::to_string(remaining()) + " bytes left in the file (size " +
                 std::to_string(size_) + ")");
        std::string_view s(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(n));
        pos_ += n;
        return s;
    }

    void header() {
        if (size_ < 4)
            fail("truncated file: " + std::to_string(size_) + " bytes, too short for the GGUF magic");
        const uint32_t magic = read<uint32_t>([] { return std::string("magic"); });
        if (magic != kMagic)
            fail("not a GGUF file: magic is " +
                 quote(std::string_view(reinterpret_cast<const char*>(p_), 4)) + ", expected 'GGUF'");
        if (size_ < kHeaderSize)
            fail("truncated file: " + std::to_string(size_) + " bytes, too short for the " +
                 std::to_string(kHeaderSize) + "-byte GGUF header");
        const uint32_t version = read<uint32_t>([] { return std::string("version"); });
        const uint32_t swapped = __builtin_bswap32(version);
        if ((version & 0xFFFFu) == 0 && swapped >= 1 && swapped <= kVersion)
            fail("big-endian GGUF files (version " + std::to_string(swapped) + ", byte-swapped) are not supported");
        if (version < kMinVersion || version > kVersion)
            fail("unsupported GGUF version " + std::to_string(version) + " (supported: 2 and 3" +
                 (version == 1 ? "; version 1 used 32-bit lengths and is obsolete)" : ")"));
        r_.version_ = version;
        n_tensors_ = read<uint64_t>([] { return std::string("tensor count"); });
        n_kv_ = read<uint64_t>([] { return std::string("metadata count"); });
        // Bound both counts by the smallest encodings before reserving memory.
        uint64_t kv_bytes, ti_bytes, total;
        if (!checked_mul(n_kv_, kMinKvSize, &kv_bytes) || kv_bytes > remaining())
            fail("metadata count " + std::to_string(n_kv_) + " is impossible: the file has only " +
                 std::to_string(remaining()) + " bytes after the header (each entry needs at least " +
                 std::to_string(kMinKvSize) + ")");
        if (!checked_mul(n_tensors_, kMinTensorInfoSize, &ti_bytes) || ti_bytes > remaining())
            fail("tensor count " + std::to_string(n_tensors_) + " is impossible: the file has only " +
                 std::to_string(remaining()) + " bytes after the header (each tensor info needs at least " +
                 std::to_string(kMinTensorInfoSize) + ")");
        if (!checked_add(kv_bytes, ti_bytes, &total) || total > remaining())
            fail("metadata count " + std::to_string(n_kv_) + " and tensor count " + std::to_string(n_tensors_) +
                 " cannot both fit in the " + std::to_string(remaining()) + " bytes after the header");
    }

    // `what` is type-erased here: these two recurse for nested arrays.
    using Context = std::function<std::string()>;

    Value value(ValueType type, int depth, const Context& what) {
        Value v;
        v.type = type;
        v.begin = pos_;
        const ValueTypeInfo& info = value_type_info(type);
        if (is_scalar(type)) {
            need(info.size, what);
            v.data = pos_;
            v.count = 1;
            pos_ += info.size;
        } else if (type == ValueType::STRING) {
            const std::string_view s = read_string(what);
            v.data = static_cast<uint64_t>(reinterpret_cast<const uint8_t*>(s.data()) - p_);
            v.count = s.size();
        } else {
            array(v, depth, what);
        }
        v.end = pos_;
        return v;
    }

    void array(Value& v, int depth, const Context& what) {
        const uint32_t elem_id = read<uint32_t>([&] { return "element type of " + what(); });
        const ValueTypeInfo* elem = find_value_type(elem_id);
        if (!elem) fail("unknown element type id " + std::to_string(elem_id) + " in array " + what());
        const uint64_t at = pos_;
        const uint64_t count = read<uint64_t>([&] { return "length of array " + what(); });
        uint64_t min_bytes;
        if (!checked_mul(count, elem->min_size, &min_bytes) || min_bytes > remaining())
            fail("array length " + std::to_string(count) + " of " + what() + " at offset " + std::to_string(at) +
                 " exceeds the file size (" + std::to_string(remaining()) + " bytes left, each " + elem->name +
                 " element needs at least " + std::to_string(elem->min_size) + ")");
        v.elem_type = elem->id;
        v.count = count;
        v.data = pos_;
        if (is_scalar(elem->id)) {
            pos_ += min_bytes;  // fits: checked above
        } else if (elem->id == ValueType::STRING) {
            for (uint64_t i = 0; i < count; ++i)
                read_string([&] { return "element " + std::to_string(i) + " of " + what(); });
        } else {
            if (depth + 1 > kMaxArrayDepth)
                fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels in " + what());
            v.items.reserve(static_cast<size_t>(count));
            for (uint64_t i = 0; i < count; ++i)
                v.items.push_back(value(ValueType::ARRAY, depth + 1,
                                        [&] { return "element " + std::to_string(i) + " of " + what(); }));
        }
    }

    KeyValue key_value(uint64_t i) {
        KeyValue kv;
        const std::string_view key =
            read_string([&] { return "key of metadata entry " + std::to_string(i); });
        if (!is_valid_utf8(key))
            fail("key of metadata entry " + std::to_string(i) + " is not valid UTF-8: " + quote(key));
        kv.key.assign(key);
        const Context what = [&] { return "metadata value " + quote(kv.key); };
        const uint32_t type_id = read<uint32_t>([&] { return "type of " + what(); });
        const ValueTypeInfo* info = find_value_type(type_id);
        if (!info) fail("metadata key " + quote(kv.key) + ": unknown value type id " + std::to_string(type_id));
        kv.value = value(info->id, 0, what);
        if (!r_.kv_index_.emplace(kv.key, static_cast<size_t>(i)).second)
            fail("duplicate metadata key " + quote(kv.key));
        return kv;
    }

    void alignment() {
        const KeyValue* kv = r_.find(kAlignmentKey);
        if (!kv) return;
        if (kv->value.type != ValueType::UINT32)
            fail(std::string(kAlignmentKey) + " must be UINT32, not " + value_type_info(kv->value.type).name);
        uint32_t a;
        std::memcpy(&a, p_ + kv->value.data, 4);
        if (!is_power_of_two(a))
            fail(std::string(kAlignmentKey) + " is " + std::to_string(a) + ", not a power of two");
        r_.alignment_ = a;
    }

    TensorInfo tensor_info(uint64_t i) {
        TensorInfo t;
        const std::string_view name = read_string([&] { return "name of tensor " + std::to_string(i); });
        if (!is_valid_utf8(name))
            fail("name of tensor " + std::to_string(i) + " is not valid UTF-8: " + quote(name));
        t.name.assign(name);
        const std::string q = quote(t.name);
        t.n_dims = read<uint32_t>([&] { return "dimension count of tensor " + q; });
        if (t.n_dims > kMaxDims)
            fail("tensor " + q + ": " + std::to_string(t.n_dims) + " dimensions, at most " +
                 std::to_string(kMaxDims) + " are allowed");
        for (uint32_t j = 0; j < t.n_dims; ++j) {
            const uint64_t d = read<uint64_t>([&] { return "shape of tensor " + q; });
            if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                fail("tensor " + q + ": dimension " + std::to_string(j) + " is " + std::to_string(d) +
                     ", beyond int64");
            t.ne[j] = static_cast<int64_t>(d);
        }
        const uint32_t type_id = read<uint32_t>([&] { return "type of tensor " + q; });
        t.type = find_type(type_id);
        if (!t.type) fail("tensor " + q + ": unknown ggml type id " + std::to_string(type_id));
        t.rel_offset = read<uint64_t>([&] { return "offset of tensor " + q; });
        if (!r_.tensor_index_.emplace(t.name, static_cast<size_t>(i)).second)
            fail("duplicate tensor name " + q);

        int64_t n = 1;
        for (uint32_t j = 0; j < kMaxDims; ++j)
            if (!checked_mul(n, t.ne[j], &n))
                fail("tensor " + q + ": the element count of shape " + shape_string(t) + " overflows int64");
        t.n_elements = n;
        const TypeTraits& ty = *t.type;
        if (t.ne[0] % ty.block_size != 0)
            fail("tensor " + q + ": row length " + std::to_string(t.ne[0]) + " (ne[0] of shape " + shape_string(t) +
                 ") is not a multiple of the block size " + std::to_string(ty.block_size) + " of type " +
                 upper(ty.name));
        const uint64_t row_bytes = static_cast<uint64_t>(t.ne[0] / ty.block_size) * ty.type_size;
        if (!checked_mul(row_bytes, static_cast<uint64_t>(t.n_rows()), &t.nbytes))
            fail("tensor " + q + ": the byte size of shape " + shape_string(t) + " overflows");
        return t;
    }

    void place(TensorInfo& t) {
        const std::string q = quote(t.name);
        if (t.rel_offset % r_.alignment_ != 0)
            fail("tensor " + q + ": offset " + std::to_string(t.rel_offset) + " is not a multiple of the alignment " +
                 std::to_string(r_.alignment_));
        uint64_t end;
        if (!checked_add(r_.data_offset_, t.rel_offset, &t.offset) || !checked_add(t.offset, t.nbytes, &end) ||
            end > size_)
            fail("tensor " + q + ": data (" + std::to_string(t.nbytes) + " bytes of " + upper(t.type->name) +
                 " at data offset " + std::to_string(t.rel_offset) + ") lies past the end of the file (" +
                 std::to_string(size_) + " bytes; data section starts at " + std::to_string(r_.data_offset_) +
                 ")");
    }
};

Reader::Reader(const std::string& path) : path_(path) {
    map_ = Mapping::open(path);
    file_size_ = map_->size();
    Parser(*this, *map_).run();
}

const KeyValue* Reader::find(std::string_view key) const {
    auto it = kv_index_.find(std::string(key));
    return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const TensorInfo* Reader::find_tensor(std::string_view name) const {
    auto it = tensor_index_.find(std::string(name));
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& Reader::tensor(std::string_view name) const {
    const TensorInfo* t = find_tensor(name);
    if (!t) throw Error(path_ + ": no tensor named " + quote(name));
    return *t;
}

std::shared_ptr<const Mapping> Reader::mapping() const {
    if (!map_) throw Error(path_ + ": the GGUF file is closed");
    return map_;
}

std::string_view Reader::string(const Mapping& m, const Value& v) {
    return std::string_view(reinterpret_cast<const char*>(m.data() + v.data), static_cast<size_t>(v.count));
}

void Reader::for_each_string(const Mapping& m, const Value& v,
                             const std::function<void(uint64_t, std::string_view)>& fn) {
    // Validated by the parser: every length and payload lies inside the mapping.
    uint64_t pos = v.data;
    for (uint64_t i = 0; i < v.count; ++i) {
        uint64_t n;
        std::memcpy(&n, m.data() + pos, 8);
        fn(i, std::string_view(reinterpret_cast<const char*>(m.data() + pos + 8), static_cast<size_t>(n)));
        pos += 8 + n;
    }
}

namespace {

template <class T>
T load(const Mapping& m, const Value& v) {
    T x;
    std::memcpy(&x, m.data() + v.data, sizeof(T));
    return x;
}

[[noreturn]] void mismatch(const std::string& path, const KeyValue& kv, const char* want) {
    throw GGUFError(path + ": metadata " + quote(kv.key) + " is " + value_type_info(kv.value.type).name +
                    ", expected " + want);
}

}  // namespace

int64_t Reader::get_int(const KeyValue& kv) const {
    auto m = mapping();
    switch (kv.value.type) {
        case ValueType::UINT8: return load<uint8_t>(*m, kv.value);
        case ValueType::INT8: return load<int8_t>(*m, kv.value);
        case ValueType::UINT16: return load<uint16_t>(*m, kv.value);
        case ValueType::INT16: return load<int16_t>(*m, kv.value);
        case ValueType::UINT32: return load<uint32_t>(*m, kv.value);
        case ValueType::INT32: return load<int32_t>(*m, kv.value);
        case ValueType::INT64: return load<int64_t>(*m, kv.value);
        case ValueType::UINT64: {
            const uint64_t x = load<uint64_t>(*m, kv.value);
            if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                throw GGUFError(path_ + ": metadata " + quote(kv.key) + " = " + std::to_string(x) + " exceeds int64");
            return static_cast<int64_t>(x);
        }
        default: mismatch(path_, kv, "an integer");
    }
}

double Reader::get_float(const KeyValue& kv) const {
    auto m = mapping();
    if (kv.value.type == ValueType::FLOAT32) return load<float>(*m, kv.value);
    if (kv.value.type == ValueType::FLOAT64) return load<double>(*m, kv.value);
    if (is_scalar(kv.value.type) && kv.value.type != ValueType::BOOL) return static_cast<double>(get_int(kv));
    mismatch(path_, kv, "a number");
}

bool Reader::get_bool(const KeyValue& kv) const {
    if (kv.value.type != ValueType::BOOL) mismatch(path_, kv, "BOOL");
    return load<uint8_t>(*mapping(), kv.value) != 0;
}

std::string Reader::get_string(const KeyValue& kv) const {
    if (kv.value.type != ValueType::STRING) mismatch(path_, kv, "STRING");
    return std::string(string(*mapping(), kv.value));
}

}  // namespace kq::gguf
