// Common prelude of the avx512 / avx512vnni matmul headers.
#pragma once
// GCC 12 reports -W(maybe-)uninitialized inside avx512fintrin.h for the
// unmasked forms of some intrinsics (built on _mm512_undefined_*()); a false
// positive. The warning's location is the intrinsic header, so the pragma
// must be in force where that header is first read: include this file before
// anything that includes <immintrin.h>.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstddef>
#include <cstdint>

namespace kq::isa_avx512 {
namespace {

inline __mmask16 low_mask16(int64_t n) {
    return n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n > 0 ? n : 0)) - 1u);
}
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

inline __m512i load512(const uint8_t* p) { return _mm512_loadu_si512(reinterpret_cast<const void*>(p)); }
inline __m512 loadf512(const uint8_t* p) { return _mm512_loadu_ps(reinterpret_cast<const float*>(p)); }
// 16 fp16 values at p -> f32.
inline __m512 load_f16x16(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
// 16 bytes at p (u8 / int8) -> f32.
inline __m512 load_u8x16_ps(const uint8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
inline __m512 load_i8x16_ps(const uint8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
// One fp16 at p, in all 16 lanes.
inline __m512 bcast_f16(const uint8_t* p) {
    uint16_t h;
    __builtin_memcpy(&h, p, 2);
    return _mm512_cvtph_ps(_mm256_set1_epi16(static_cast<short>(h)));
}

}  // namespace
}  // namespace kq::isa_avx512
