// F16 and BF16 rows to f32 (the dequantize entries of those two types) with
// F16C / AVX2: exact conversions, as the scalar reference's, 16 values per
// step. They feed every quantization of an F16/BF16 model, so at the
// reference's speed (~2 GB/s) they cost more than a legacy quantizer.
#include <immintrin.h>

#include <cstdint>

#include "isa/avx2/quantizers.h"

namespace kq::isa_avx2 {
namespace {

// f16 -> f32, 8 values: vcvtph2ps, exact for every finite value (subnormals
// included), then the exponent-31 lanes (inf, NaN) rebuilt by bits as the
// scalar reference does: vcvtph2ps would set a signalling NaN's quiet bit.
inline __m256i f16x8(const uint16_t* s) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m256i cvt = _mm256_castps_si256(_mm256_cvtph_ps(h));
    const __m256i w = _mm256_cvtepu16_epi32(h);
    const __m256i e31 = _mm256_cmpeq_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x7c00)), _mm256_set1_epi32(0x7c00));
    const __m256i special = _mm256_or_si256(
        _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x8000)), 16), _mm256_set1_epi32(0x7f800000)),
        _mm256_slli_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0x3ff)), 13));
    return _mm256_blendv_epi8(cvt, special, e31);
}

void f16_row(const void* x, float* y, int64_t n) {
    const uint16_t* s = static_cast<const uint16_t*>(x);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), f16x8(s + i));
    if (i < n) {  // the last < 8 values through a zero-padded copy
        uint16_t in[8] = {};
        alignas(32) float out[8];
        __builtin_memcpy(in, s + i, sizeof(uint16_t) * static_cast<size_t>(n - i));
        _mm256_store_si256(reinterpret_cast<__m256i*>(out), f16x8(in));
        __builtin_memcpy(y + i, out, sizeof(float) * static_cast<size_t>(n - i));
    }
}

// bf16 is the top half of an f32: widen to 32 bits, shift left by 16.
void bf16_row(const void* x, float* y, int64_t n) {
    const uint16_t* s = static_cast<const uint16_t*>(x);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), _mm256_slli_epi32(v, 16));
    }
    for (; i < n; ++i) {
        const uint32_t u = static_cast<uint32_t>(s[i]) << 16;
        __builtin_memcpy(y + i, &u, 4);
    }
}

}  // namespace

void register_convert(KernelSet& ks) {
    ks[TypeId::F16].dequantize = f16_row;
    ks[TypeId::BF16].dequantize = bf16_row;
}

}  // namespace kq::isa_avx2
