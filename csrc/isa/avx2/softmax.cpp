// Attention's softmax row (KernelSet::softmax_row, core/kernels.h) on AVX2:
// the AVX-512 kernel's arithmetic on 8 lanes, exp by ops/exp_lanes.h.
// Arguments are x - max <= 0; from -87.3 up n >= -126, so 2^n is the
// normal float with biased exponent n + 127, built by bits; below, the
// result is 0 (the scalar expf's results there are < 1e-38).
// The last < 8 values go through a zero-padded copy, its padding lanes kept
// out of the max and the sum by a lane mask.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "isa/avx2/lanes256.h"
#include "isa/avx2/matmul.h"
#include "ops/exp_lanes.h"

namespace kq::isa_avx2 {
namespace {

inline __m256 exp8(__m256 x) {
    V256::F n;
    const V256::F p = lanes::exp_reduced<V256>(V256::F{x}, n);
    const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ);
    // 2^n for n in [-126, 0]: (n + 127) << 23. Lanes outside are zeroed.
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p.v, _mm256_castsi256_ps(bits)), keep);
}

inline float hmax(__m256 v) {
    __m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_max_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_max_ss(q, _mm_movehdup_ps(q)));
}
inline float hsum(__m256 v) {
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

// Runs f(vector, valid) over x in steps of 8, valid being all-ones lanes;
// the tail goes through a zero-padded copy with only its real lanes valid.
// f returns the vector to store back.
template <class F>
inline void for_each8(float* x, int64_t n, F f) {
    const __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, f(_mm256_loadu_ps(x + i), all));
    if (i < n) {
        alignas(32) float buf[8] = {};
        std::memcpy(buf, x + i, sizeof(float) * static_cast<size_t>(n - i));
        const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
            _mm256_set1_epi32(static_cast<int>(n - i)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
        _mm256_store_ps(buf, f(_mm256_load_ps(buf), valid));
        std::memcpy(x + i, buf, sizeof(float) * static_cast<size_t>(n - i));
    }
}

void softmax_row(float* x, int64_t n, float scale, bool round_fp16) {
    if (n <= 0) return;
    const __m256 ninf = _mm256_set1_ps(-__builtin_inff());
    const __m256 vs = _mm256_set1_ps(scale);
    __m256 mx = ninf;
    for_each8(x, n, [&](__m256 v, __m256 valid) {
        v = _mm256_mul_ps(v, vs);
        mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, v, valid));
        return v;
    });
    const __m256 vmax = _mm256_set1_ps(hmax(mx));
    // Per 8 values a float sum, accumulated in double (as ggml's soft_max).
    double sum = 0;
    for_each8(x, n, [&](__m256 v, __m256 valid) {
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(v, vmax)), valid);
        sum += static_cast<double>(hsum(e));
        return e;
    });
    const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / sum));
    for_each8(x, n, [&](__m256 v, __m256) {
        v = _mm256_mul_ps(v, inv);
        if (round_fp16) v = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        return v;
    });
}

}  // namespace

void register_softmax(KernelSet& ks) { ks.softmax_row = softmax_row; }

}  // namespace kq::isa_avx2
