// Whole-array quantize / dequantize on the thread pool, through the active
// kernel set. These are what the bindings and the model pipeline call.
#pragma once
#include <cstdint>

#include "core/kernels.h"
#include "core/traits.h"

namespace kq {

// Element type of a source array.
enum class SrcKind { F32, F16, BF16 };

// Quantizes rows x cols values (row-major, contiguous) into dst, which must
// hold rows * row_size(type, cols) bytes. imatrix: cols weights or nullptr.
// ks: kernel set to use (nullptr = the active one).
void quantize_rows(const void* src, SrcKind kind, int64_t rows, int64_t cols, const TypeTraits& type,
                   const float* imatrix, void* dst, int threads, const KernelSet* ks = nullptr);

// Dequantizes rows of cols values from src into dst (float32).
void dequantize_rows(const void* src, int64_t rows, int64_t cols, const TypeTraits& type, float* dst,
                     int threads, const KernelSet* ks = nullptr);

}  // namespace kq
