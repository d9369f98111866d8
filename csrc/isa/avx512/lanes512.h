// The 16-lane vector type of the lane-template quantizers (csrc/quants/lanes/),
// on AVX-512 F/BW/VL/DQ. See lanes/lane_api.h for the contract every
// operation here keeps: each lane runs exactly the scalar IEEE operation (no
// FMA, no approximations), so a lane's result equals the scalar reference's.
#pragma once
// GCC 12 reports its own _mm512_undefined_*() placeholders in the AVX-512
// headers as (maybe-)uninitialized once they are inlined; they are not read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>

namespace kq::isa_avx512 {

struct F16x { __m512 v; };    // 16 floats
struct I16x { __m512i v; };   // 16 int32
struct M16x { __mmask16 m; }; // one bit per lane

// ---- float lanes -------------------------------------------------------------
inline F16x operator+(F16x a, F16x b) { return {_mm512_add_ps(a.v, b.v)}; }
inline F16x operator-(F16x a, F16x b) { return {_mm512_sub_ps(a.v, b.v)}; }
inline F16x operator*(F16x a, F16x b) { return {_mm512_mul_ps(a.v, b.v)}; }
inline F16x operator/(F16x a, F16x b) { return {_mm512_div_ps(a.v, b.v)}; }
// Comparisons as C evaluates them: ordered (false on NaN), except != (true on NaN).
inline M16x operator<(F16x a, F16x b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)}; }
inline M16x operator>(F16x a, F16x b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)}; }
inline M16x operator<=(F16x a, F16x b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ)}; }
inline M16x operator>=(F16x a, F16x b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ)}; }
inline M16x operator==(F16x a, F16x b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_EQ_OQ)}; }
inline M16x operator!=(F16x a, F16x b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_NEQ_UQ)}; }

// ---- int32 lanes -------------------------------------------------------------
inline I16x operator+(I16x a, I16x b) { return {_mm512_add_epi32(a.v, b.v)}; }
inline I16x operator-(I16x a, I16x b) { return {_mm512_sub_epi32(a.v, b.v)}; }
inline I16x operator&(I16x a, I16x b) { return {_mm512_and_si512(a.v, b.v)}; }
inline I16x operator|(I16x a, I16x b) { return {_mm512_or_si512(a.v, b.v)}; }
inline I16x operator<<(I16x a, int s) { return {_mm512_sll_epi32(a.v, _mm_cvtsi32_si128(s))}; }
inline I16x operator>>(I16x a, int s) { return {_mm512_sra_epi32(a.v, _mm_cvtsi32_si128(s))}; }  // arithmetic
inline M16x operator==(I16x a, I16x b) { return {_mm512_cmpeq_epi32_mask(a.v, b.v)}; }
inline M16x operator!=(I16x a, I16x b) { return {_mm512_cmpneq_epi32_mask(a.v, b.v)}; }
inline M16x operator>(I16x a, I16x b) { return {_mm512_cmpgt_epi32_mask(a.v, b.v)}; }

// ---- masks ---------------------------------------------------------------------
inline M16x operator&(M16x a, M16x b) { return {static_cast<__mmask16>(a.m & b.m)}; }
inline M16x operator|(M16x a, M16x b) { return {static_cast<__mmask16>(a.m | b.m)}; }
inline M16x operator~(M16x a) { return {static_cast<__mmask16>(~a.m)}; }

struct V512 {
    static constexpr int N = 16;
    using F = F16x;
    using I = I16x;
    using M = M16x;

    static F fset(float x) { return {_mm512_set1_ps(x)}; }
    static I iset(int32_t x) { return {_mm512_set1_epi32(x)}; }
    static F load(const float* p) { return {_mm512_loadu_ps(p)}; }
    static void store(float* p, F a) { _mm512_storeu_ps(p, a.v); }
    static I load_i32(const int32_t* p) { return {_mm512_loadu_si512(p)}; }
    static I load_u8(const uint8_t* p) { return {_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))}; }
    static void store_i32(int32_t* p, I a) { _mm512_storeu_si512(p, a.v); }
    // out[c] lane r = src[r * stride + c] for r, c < 16: a 16 x 16 transpose in
    // registers (unpack 32-bit, unpack 64-bit, then two 128-bit shuffles).
    // out[c] lane r = src[r * stride + c] for r < N, c < ncols (a multiple of N).
    static void transpose(const float* src, int64_t stride, int ncols, F* out) {
        for (int t = 0; t < ncols; t += N) transpose_tile(src + t, stride, out + t);
    }
    static void transpose_tile(const float* src, int64_t stride, F* out) {
        __m512 r[16], t[16];
        for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * stride);
        for (int i = 0; i < 16; i += 2) {
            t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);      // per 128 bits: a0 b0 a1 b1
            t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);  //               a2 b2 a3 b3
        }
        for (int i = 0; i < 16; i += 4) {  // r[i + k]: column 4j + k of rows i..i+3, in 128-bit chunk j
            r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
            r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
            r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
            r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        }
        // 0x88 takes 128-bit chunks 0 and 2 of each source, 0xdd chunks 1 and 3.
        for (int h = 0; h < 16; h += 8)
            for (int k = 0; k < 4; ++k) {
                t[h + k] = _mm512_shuffle_f32x4(r[h + k], r[h + 4 + k], 0x88);      // columns k, 8+k
                t[h + 4 + k] = _mm512_shuffle_f32x4(r[h + k], r[h + 4 + k], 0xdd);  // columns 4+k, 12+k
            }
        for (int c = 0; c < 8; ++c) {
            out[c].v = _mm512_shuffle_f32x4(t[c], t[c + 8], 0x88);
            out[c + 8].v = _mm512_shuffle_f32x4(t[c], t[c + 8], 0xdd);
        }
    }
    // Lane j = base[idx[j]] (idx in elements of 4 bytes).
    static F gather_idx(const void* base, I idx) { return {_mm512_i32gather_ps(idx.v, base, 4)}; }
    static M mask_from_bits(uint32_t b) { return {static_cast<__mmask16>(b)}; }
    // Low byte of each lane to p[0..N).
    static void store_u8(uint8_t* p, I a) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(a.v)); }
    // Low 16 bits of each lane to p[0..N).
    static void store_u16(uint16_t* p, I a) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(a.v));
    }

    static F abs(F a) { return {_mm512_abs_ps(a.v)}; }          // clears the sign bit, as fabsf
    static F neg(F a) { return {_mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(INT32_MIN)))}; }
    static F sqrt(F a) { return {_mm512_sqrt_ps(a.v)}; }        // correctly rounded, as sqrtf
    static F select(M m, F t, F f) { return {_mm512_mask_blend_ps(m.m, f.v, t.v)}; }
    static I select(M m, I t, I f) { return {_mm512_mask_blend_epi32(m.m, f.v, t.v)}; }
    // min / max as minps / maxps: a < b ? a : b (resp. >), b when either is NaN.
    static F fmin(F a, F b) { return {_mm512_min_ps(a.v, b.v)}; }
    static F fmax(F a, F b) { return {_mm512_max_ps(a.v, b.v)}; }
    static F fmadd(F a, F b, F c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }    // a * b + c, one rounding
    static F fnmadd(F a, F b, F c) { return {_mm512_fnmadd_ps(a.v, b.v, c.v)}; }  // c - a * b, one rounding
    // Nearest integer, ties to even (as rintf in the default rounding mode).
    static F round_even(F a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
    static I min(I a, I b) { return {_mm512_min_epi32(a.v, b.v)}; }
    static I max(I a, I b) { return {_mm512_max_epi32(a.v, b.v)}; }
    static F to_float(I a) { return {_mm512_cvtepi32_ps(a.v)}; }           // exact for |a| < 2^24
    static I trunc_to_int(F a) { return {_mm512_cvttps_epi32(a.v)}; }     // as cvttss2si: 0x80000000 when out of range
    static I as_int(F a) { return {_mm512_castps_si512(a.v)}; }
    static F as_float(I a) { return {_mm512_castsi512_ps(a.v)}; }
    static M test(I a, int32_t bits) { return {_mm512_test_epi32_mask(a.v, _mm512_set1_epi32(bits))}; }

    static bool any(M m) { return m.m != 0; }
    static uint32_t bits(M m) { return m.m; }
    static M none_set() { return {0}; }
    static M all_set() { return {0xffff}; }
    // Max over lanes; callers pass NaN-free vectors (order does not matter then).
    static float hmax(F a) { return _mm512_reduce_max_ps(a.v); }
    static int32_t hsum(I a) { return _mm512_reduce_add_epi32(a.v); }

    // fp32 -> fp16 bits, round to nearest even, every NaN -> sign | 0x7e00
    // (what kq::fp32_to_fp16 and ggml's software conversion return; the
    // hardware keeps NaN payloads, so NaN lanes are patched).
    static I to_half(F a) {
        const __m256i h = _mm512_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512i hw = _mm512_cvtepu16_epi32(h);
        const __mmask16 nan = _mm512_cmp_ps_mask(a.v, a.v, _CMP_UNORD_Q);
        const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(a.v), 16), _mm512_set1_epi32(0x8000));
        return {_mm512_mask_or_epi32(hw, nan, sign, _mm512_set1_epi32(0x7e00))};
    }
    static uint16_t half(float x) {
        if (x != x) {  // NaN: ggml's software conversion returns a plain quiet NaN
            uint32_t u;
            __builtin_memcpy(&u, &x, 4);
            return static_cast<uint16_t>(((u >> 16) & 0x8000u) | 0x7e00u);
        }
        return static_cast<uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    // fp16 bits -> fp32 (exact; the quiet NaNs above convert as in software).
    static float from_half(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }
};

}  // namespace kq::isa_avx512
