// The GGUF container format (versions 2 and 3), shared by reader and writer.
//
// Layout (every integer little-endian, no implicit padding):
//
//   header        magic "GGUF" (4 bytes) | version u32 | n_tensors u64 | n_kv u64
//   kv[n_kv]      key (string) | value type u32 | value
//   tensor info[n_tensors]
//                 name (string) | n_dims u32 | ne[n_dims] u64 | ggml type u32 | offset u64
//   padding       zero bytes up to a multiple of the alignment
//   data          each tensor at data_start + offset; offsets are multiples of
//                 the alignment, and the writer pads every tensor up to one
//
//   string        length u64 | bytes (UTF-8, no terminator)
//   array         element type u32 | count u64 | count elements; an element
//                 that is itself an array repeats (type | count | elements)
//
// ne[] is ggml's order: ne[0] is the row length (the fastest-varying index),
// so NumPy's shape is ne reversed. The alignment is the uint32 metadata value
// "general.alignment" (a power of two), 32 when absent. Version 1 used 32-bit
// counts and lengths and is not supported.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kq::gguf {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "GGUF is read and written by memcpy of little-endian integers");

// "GGUF" read as a little-endian u32.
constexpr uint32_t kMagic = 0x46554747u;
// The version we write; we read 2 and 3 (identical apart from the version).
constexpr uint32_t kVersion = 3;
constexpr uint32_t kMinVersion = 2;
// Data alignment when "general.alignment" is absent (ggml's GGUF_DEFAULT_ALIGNMENT).
constexpr uint32_t kDefaultAlignment = 32;
constexpr const char* kAlignmentKey = "general.alignment";
// ggml tensors have at most 4 dimensions (GGML_MAX_DIMS).
constexpr uint32_t kMaxDims = 4;
// Arrays of arrays nest at most this deep: the format has no limit, but the
// parser recurses, and no real file nests more than twice.
constexpr int kMaxArrayDepth = 8;
// Fixed part of the header: magic, version, n_tensors, n_kv.
constexpr uint64_t kHeaderSize = 4 + 4 + 8 + 8;
// Smallest possible encodings, used to reject counts that cannot fit in the
// file before allocating anything for them:
//   kv          = key length u64 (empty key) + type u32 + 1-byte value
//   tensor info = name length u64 (empty name) + n_dims u32 + type u32 + offset u64
constexpr uint64_t kMinKvSize = 8 + 4 + 1;
constexpr uint64_t kMinTensorInfoSize = 8 + 4 + 4 + 8;

// GGUF metadata value types (gguf.h `enum gguf_type`), as stored in the file.
enum class ValueType : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
    BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

struct ValueTypeInfo {
    ValueType id;
    const char* name;      // upper-case, as gguf-py's GGUFValueType names them
    uint64_t size;         // bytes of one scalar; 0 for STRING and ARRAY
    uint64_t min_size;     // smallest encoding: size, 8 (string length), 12 (array type + count)
    const char* np_dtype;  // NumPy dtype string of a scalar ("" for STRING / ARRAY)
};

// One row per value type, in id order (the only list of them).
extern const ValueTypeInfo kValueTypes[];
extern const size_t kNumValueTypes;

// nullptr when the id is not a GGUF value type.
const ValueTypeInfo* find_value_type(uint32_t id);
const ValueTypeInfo& value_type_info(ValueType t);
inline bool is_scalar(ValueType t) { return t != ValueType::STRING && t != ValueType::ARRAY; }

// Checked arithmetic: false on overflow (the result is then unspecified).
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* r) { return !__builtin_add_overflow(a, b, r); }
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* r) { return !__builtin_mul_overflow(a, b, r); }
inline bool checked_mul(int64_t a, int64_t b, int64_t* r) { return !__builtin_mul_overflow(a, b, r); }
// Rounds x up to a multiple of the power of two `align`; false on overflow.
inline bool checked_align_up(uint64_t x, uint64_t align, uint64_t* r) {
    if (!checked_add(x, align - 1, r)) return false;
    *r &= ~(align - 1);
    return true;
}
inline bool is_power_of_two(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

// True when s is well-formed UTF-8 (no overlongs, surrogates or code points
// above U+10FFFF), the encoding GGUF prescribes for strings.
bool is_valid_utf8(std::string_view s);

// A string for error messages: quoted, cut to `max` bytes, control bytes escaped.
std::string quote(std::string_view s, size_t max = 80);

}  // namespace kq::gguf
