// Quantized matrix multiplication: y = x @ W^T on the thread pool.
//
//   W  [m, k]  m rows of k elements in any type with a matmul (traits.h),
//              row r at w + r * row_size(t, k) (the bytes quantize_rows writes)
//   x  [n, k]  float32, row-major
//   y  [n, m]  float32, row-major
//
// x is converted once per call to the type's vec_dot_type (Q8_0 / Q8_1 / Q8_K
// for the quantized types) by that format's `quantize` kernel; the type's
// gemm kernel then runs over cache blocks of rows x columns (matmul.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/kernels.h"
#include "core/traits.h"

namespace kq {

// ks: kernel set to use (nullptr = the active one). threads <= 0: default.
// w_packed: w holds rows prepared by prepare_weights for a kernel set with the
// same packed layout. Throws kq::Error when the type has no matmul, k is not a
// multiple of its block size, or w_packed is set and ks has no layout.
void matmul(const TypeTraits& t, const void* w, int64_t m, int64_t k, const float* x, int64_t n, float* y,
            int threads, const KernelSet* ks = nullptr, bool w_packed = false);

// Bytes of one prepared weight row for ks (0: ks keeps ggml's rows for this
// type, nothing to prepare).
size_t prepared_row_bytes(const TypeTraits& t, int64_t k, const KernelSet* ks = nullptr);
// Packs m ggml rows of w into out (m * prepared_row_bytes bytes).
void prepare_weights(const TypeTraits& t, const void* w, int64_t m, int64_t k, void* out, int threads,
                     const KernelSet* ks = nullptr);

// Per-thread scratch for the ISA kernels (panels they pack): at least `bytes`,
// 64-byte aligned, kept and reused across calls. `slot` (0..3) names
// independent buffers. Valid until the same thread asks for the same slot again.
void* matmul_scratch(int slot, size_t bytes);

}  // namespace kq
