// Scalar reference quantizers and dequantizers: the oracle.
//
// Each reproduces ggml's reference implementation bit for bit (same
// arithmetic order, no FMA contraction; see CMakeLists.txt). Signatures follow
// quantize_row_fn / dequantize_row_fn in core/traits.h: one row of n values,
// n a multiple of the type's block size, imatrix optional (per element).
#pragma once
#include <cstdint>

namespace kq::ref {

#define KQ_DECLARE_REF(T)                                                              \
    void quantize_row_##T(const float* x, void* y, int64_t n, const float* imatrix); \
    void dequantize_row_##T(const void* x, float* y, int64_t n);

KQ_DECLARE_REF(f32)
KQ_DECLARE_REF(f16)
KQ_DECLARE_REF(bf16)
KQ_DECLARE_REF(q4_0)
KQ_DECLARE_REF(q4_1)
KQ_DECLARE_REF(q5_0)
KQ_DECLARE_REF(q5_1)
KQ_DECLARE_REF(q8_0)
KQ_DECLARE_REF(q8_1)
KQ_DECLARE_REF(q2_K)
KQ_DECLARE_REF(q3_K)
KQ_DECLARE_REF(q4_K)
KQ_DECLARE_REF(q5_K)
KQ_DECLARE_REF(q6_K)
KQ_DECLARE_REF(q8_K)

#undef KQ_DECLARE_REF

}  // namespace kq::ref
