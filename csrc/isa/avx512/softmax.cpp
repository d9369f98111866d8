// Attention's softmax row (KernelSet::softmax_row, core/kernels.h) on
// AVX-512: 16 lanes, exp by range reduction and a polynomial
// (ops/exp_lanes.h), 2^n via vscalefps.
// Arguments are x - max <= 0; below -87.3 (exp < 2^-126, the float normal
// range) the result is 0, as the scalar expf's subnormal results (< 1e-38)
// are for any sum of at least one 1.
#include <cstdint>

#include "isa/avx512/matmul.h"
#include "isa/avx512/mm512_common.h"  // <immintrin.h> without GCC 12's false -Wmaybe-uninitialized
#include "isa/avx512/lanes512.h"
#include "ops/exp_lanes.h"

namespace kq::isa_avx512 {
namespace {

inline __m512 exp16(__m512 x) {
    V512::F n;
    const V512::F p = lanes::exp_reduced<V512>(V512::F{x}, n);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
    return _mm512_maskz_scalef_ps(keep, p.v, n.v);
}

// Horizontal max / sum over 16 lanes.
inline __m128 fold(__m512 v, bool is_max) {
    const __m256 lo = _mm512_castps512_ps256(v), hi = _mm512_extractf32x8_ps(v, 1);
    const __m256 h = is_max ? _mm256_max_ps(lo, hi) : _mm256_add_ps(lo, hi);
    const __m128 a = _mm256_castps256_ps128(h), b = _mm256_extractf128_ps(h, 1);
    return is_max ? _mm_max_ps(a, b) : _mm_add_ps(a, b);
}
inline float hmax(__m512 v) {
    __m128 q = fold(v, true);
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_max_ss(q, _mm_movehdup_ps(q)));
}
inline float hsum(__m512 v) {
    __m128 q = fold(v, false);
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

inline __mmask16 tail_mask(int64_t left) {
    return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

void softmax_row(float* x, int64_t n, float scale, bool round_fp16) {
    if (n <= 0) return;
    const __m512 vs = _mm512_set1_ps(scale);
    __m512 mx = _mm512_set1_ps(-__builtin_inff());
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
        _mm512_mask_storeu_ps(x + i, m, v);
        mx = _mm512_mask_max_ps(mx, m, mx, v);
    }
    const __m512 vmax = _mm512_set1_ps(hmax(mx));
    // Per 16 values a float sum, accumulated in double (as ggml's soft_max).
    double sum = 0;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 e = _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmax)));
        _mm512_mask_storeu_ps(x + i, m, e);
        sum += static_cast<double>(hsum(e));
    }
    const __m512 inv = _mm512_set1_ps(static_cast<float>(1.0 / sum));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv);
        if (round_fp16) v = _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm512_mask_storeu_ps(x + i, m, v);
    }
}

}  // namespace

void register_softmax(KernelSet& ks) { ks.softmax_row = softmax_row; }

}  // namespace kq::isa_avx512
