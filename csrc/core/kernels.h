// Run-time kernel dispatch.
//
// A KernelSet holds one entry per type id (see traits.h). It starts as the
// scalar reference from the traits table; each compiled ISA folder
// (csrc/isa/<name>/) then overrides the entries it accelerates through
// kq_register_<name>(KernelSet&). ISAs are layered from the baseline up
// (avx2 -> avx512 -> avx512vnni, or neon), so an entry an ISA leaves alone
// keeps the best lower implementation.
//
// The active set is the highest ISA the CPU supports, or the one named by the
// environment variable KQUANTS_ISA (generic|avx2|avx512|avx512vnni|neon).
#pragma once
#include <string>
#include <vector>

#include "core/traits.h"

namespace kq {
namespace packed {
struct WeightLayout;  // matmul/packed.h
}

// Matrix multiplication (issue 3). Weights W are rows of k elements in the
// type's own blocks; activations are rows of k elements already converted to
// the type's vec_dot_type (traits.h) by that type's `quantize` entry.
//
// vec_dot: dot product of one weight row with one activation row.
using vec_dot_fn = float (*)(int64_t k, const void* w, const void* a);
// gemm: y[c * ldy + r] = dot(weight row r, activation column c) for r < nr,
// c < nc. Weight row r starts at w + r * w_stride bytes, activation column c
// at a + c * a_stride bytes. Any nr, nc >= 1: the kernel blocks the columns
// for the cache and tiles rows x columns in registers. The driver
// (csrc/matmul/matmul.cpp) hands each thread a chunk of rows and all columns.
using gemm_fn = void (*)(int64_t k, const void* w, size_t w_stride, int64_t nr, const void* a, size_t a_stride,
                         int64_t nc, float* y, int64_t ldy);

struct TypeKernels {
    quantize_row_fn quantize = nullptr;      // same contract and bytes as the reference
    dequantize_row_fn dequantize = nullptr;
    vec_dot_fn vec_dot = nullptr;            // null: the type has no matmul (Q8_1, Q8_K)
    gemm_fn gemm = nullptr;
    // Rows of the kernel's register/pack tile: the driver makes row chunks a
    // multiple of it. 1 = no preference.
    int gemm_row_align = 1;
    // Mat-mat: rows per gemm call the kernel would like at least (it reuses
    // per-call work across them), unless that leaves too few tasks for the
    // threads. 0 = as the L2 budget of the driver gives.
    int gemm_min_rows = 0;
    // Non-null: gemm reads weights and activations in these packed layouts
    // (weights packed once per PreparedWeight, or per row chunk and call;
    // activations packed once per call). Null: ggml's rows and vec_dot_type rows.
    const packed::WeightLayout* layout = nullptr;
    // Optional faster equivalent of layout->pack_row (same bytes).
    void (*pack_row)(const void* src, int64_t k, void* dst) = nullptr;
    // Optional mat-vec (nc <= 4) on ggml's rows and vec_dot_type activation
    // rows, the gemm contract otherwise: the driver uses it instead of the
    // packed layout when that layout would pad the rows (k not a multiple of
    // 16 lane blocks) and the weights are not prepared.
    gemm_fn gemv_rows = nullptr;
    // Optional: the tail groups of padded rows (matmul/packed.h,
    // pack_weight_tail): y[c * ldy + r] += lane r % 16 of tile r / 16's dot
    // with column c's tail groups (`groups` per tile and column), r < nr.
    void (*gemm_tail)(int64_t groups, const void* w, int64_t nr, const void* a, size_t a_stride, int64_t nc,
                      float* y, int64_t ldy) = nullptr;
};

// Reads n bytes (a multiple of 256) at p, returns the XOR of their 64-bit
// words: the streaming read that the matmul benchmark measures memory
// bandwidth with (matmul/membw.cpp), at the ISA's full load width.
using stream_read_fn = uint64_t (*)(const void* p, size_t n);

// Attention's softmax of one score row, in place: x = softmax(scale * x)
// (max subtracted, exp in float, sum in double as ggml's soft_max), then,
// when round_fp16, each probability rounded to fp16 (an F16 KV cache's
// numerics, ops.h).
using softmax_row_fn = void (*)(float* x, int64_t n, float scale, bool round_fp16);

struct KernelSet {
    std::string isa = "generic";
    TypeKernels by_type[kMaxTypeId];
    stream_read_fn stream_read = nullptr;
    softmax_row_fn softmax_row = nullptr;
    const TypeKernels& operator[](TypeId id) const { return by_type[static_cast<uint32_t>(id)]; }
    TypeKernels& operator[](TypeId id) { return by_type[static_cast<uint32_t>(id)]; }
};

// The active kernel set (chosen once, on first use).
const KernelSet& kernels();
// The kernel set for a named ISA; throws kq::Error if it is not compiled in
// or the CPU lacks it. "generic" is the scalar reference.
const KernelSet& kernels_for(const std::string& isa);

std::vector<std::string> compiled_isas();   // "generic" first
std::vector<std::string> supported_isas();  // compiled and runnable here
std::string active_isa();

}  // namespace kq
