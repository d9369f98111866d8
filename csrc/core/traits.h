// The type-traits table: the one place that lists the tensor types.
//
// Every layer (quantize/dequantize, GGUF, matmul dispatch, Python enum, test
// parameter lists) reads kTypeTraits. Adding a type means adding one row in
// traits.cpp plus its kernels; nothing else enumerates types.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kq {

// ggml's type ids (ggml.h `enum ggml_type`), as stored in GGUF tensor infos.
enum class TypeId : uint32_t {
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};
// Upper bound (exclusive) of the ids above; sizes id-indexed arrays.
constexpr uint32_t kMaxTypeId = 40;

// Quantize one row of n floats (n a multiple of block_size) into y.
// imatrix: optional importance weight per element of the row (nullptr = none);
// types that ignore it (floats, Q8_0, Q8_K) accept and ignore it.
using quantize_row_fn = void (*)(const float* x, void* y, int64_t n, const float* imatrix);
// Dequantize n values (a multiple of block_size) from x into y.
using dequantize_row_fn = void (*)(const void* x, float* y, int64_t n);

struct TypeTraits {
    TypeId id;
    const char* name;        // ggml's name: "q4_K", printed upper-case as GGUF tools do
    int64_t block_size;      // elements per block
    size_t type_size;        // bytes per block
    bool is_quantized;
    bool uses_imatrix;       // the quantizer honours importance weights
    quantize_row_fn quantize_ref;      // scalar reference = the oracle
    dequantize_row_fn dequantize_ref;
    TypeId vec_dot_type;     // activation format for dot products (issue 3)
    float matmul_rtol;       // tolerance of ISA kernels vs. the reference (issue 3)
};

extern const TypeTraits kTypeTraits[];
extern const size_t kNumTypes;

inline double bits_per_weight(const TypeTraits& t) {
    return 8.0 * static_cast<double>(t.type_size) / static_cast<double>(t.block_size);
}

// nullptr when unknown.
const TypeTraits* find_type(uint32_t ggml_id);
const TypeTraits* find_type(std::string_view name);  // case-insensitive
// Throws kq::Error naming `what` when the id is unknown.
const TypeTraits& type_traits(uint32_t ggml_id, const char* what = "type");
inline const TypeTraits& type_traits(TypeId id) { return type_traits(static_cast<uint32_t>(id)); }

// Bytes of a row of n elements; throws kq::Error if n is not a multiple of the block.
size_t row_size(const TypeTraits& t, int64_t n);

}  // namespace kq
