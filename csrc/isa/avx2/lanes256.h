// The 8-lane vector type of the lane-template quantizers (csrc/quants/lanes/),
// on AVX2 + F16C. See lanes/lane_api.h for the contract every operation here
// keeps: each lane runs exactly the scalar IEEE operation (no FMA, no
// approximations), so a lane's result equals the scalar reference's.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace kq::isa_avx2 {

struct F8x { __m256 v; };    // 8 floats
struct I8x { __m256i v; };   // 8 int32
struct M8x { __m256i m; };   // all-ones / all-zeros per lane

// ---- float lanes -------------------------------------------------------------
inline F8x operator+(F8x a, F8x b) { return {_mm256_add_ps(a.v, b.v)}; }
inline F8x operator-(F8x a, F8x b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline F8x operator*(F8x a, F8x b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline F8x operator/(F8x a, F8x b) { return {_mm256_div_ps(a.v, b.v)}; }
// Comparisons as C evaluates them: ordered (false on NaN), except != (true on NaN).
inline M8x cmp_lanes(__m256 r) { return {_mm256_castps_si256(r)}; }
inline M8x operator<(F8x a, F8x b) { return cmp_lanes(_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)); }
inline M8x operator>(F8x a, F8x b) { return cmp_lanes(_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)); }
inline M8x operator<=(F8x a, F8x b) { return cmp_lanes(_mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ)); }
inline M8x operator>=(F8x a, F8x b) { return cmp_lanes(_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)); }
inline M8x operator==(F8x a, F8x b) { return cmp_lanes(_mm256_cmp_ps(a.v, b.v, _CMP_EQ_OQ)); }
inline M8x operator!=(F8x a, F8x b) { return cmp_lanes(_mm256_cmp_ps(a.v, b.v, _CMP_NEQ_UQ)); }

// ---- int32 lanes -------------------------------------------------------------
inline I8x operator+(I8x a, I8x b) { return {_mm256_add_epi32(a.v, b.v)}; }
inline I8x operator-(I8x a, I8x b) { return {_mm256_sub_epi32(a.v, b.v)}; }
inline I8x operator&(I8x a, I8x b) { return {_mm256_and_si256(a.v, b.v)}; }
inline I8x operator|(I8x a, I8x b) { return {_mm256_or_si256(a.v, b.v)}; }
inline I8x operator<<(I8x a, int s) { return {_mm256_sll_epi32(a.v, _mm_cvtsi32_si128(s))}; }
inline I8x operator>>(I8x a, int s) { return {_mm256_sra_epi32(a.v, _mm_cvtsi32_si128(s))}; }  // arithmetic
inline M8x operator==(I8x a, I8x b) { return {_mm256_cmpeq_epi32(a.v, b.v)}; }
inline M8x operator!=(I8x a, I8x b) { return {_mm256_xor_si256(_mm256_cmpeq_epi32(a.v, b.v), _mm256_set1_epi32(-1))}; }
inline M8x operator>(I8x a, I8x b) { return {_mm256_cmpgt_epi32(a.v, b.v)}; }

// ---- masks ---------------------------------------------------------------------
inline M8x operator&(M8x a, M8x b) { return {_mm256_and_si256(a.m, b.m)}; }
inline M8x operator|(M8x a, M8x b) { return {_mm256_or_si256(a.m, b.m)}; }
inline M8x operator~(M8x a) { return {_mm256_xor_si256(a.m, _mm256_set1_epi32(-1))}; }

struct V256 {
    static constexpr int N = 8;
    using F = F8x;
    using I = I8x;
    using M = M8x;

    static F fset(float x) { return {_mm256_set1_ps(x)}; }
    static I iset(int32_t x) { return {_mm256_set1_epi32(x)}; }
    static F load(const float* p) { return {_mm256_loadu_ps(p)}; }
    static void store(float* p, F a) { _mm256_storeu_ps(p, a.v); }
    static I load_i32(const int32_t* p) { return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))}; }
    static I load_u8(const uint8_t* p) { return {_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))}; }
    static void store_i32(int32_t* p, I a) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), a.v); }
    // out[c] lane r = src[r * stride + c] for r, c < 8: an 8 x 8 transpose in
    // registers (unpack 32-bit, shuffle 64-bit, swap 128-bit halves).
    // out[c] lane r = src[r * stride + c] for r < N, c < ncols (a multiple of N).
    static void transpose(const float* src, int64_t stride, int ncols, F* out) {
        for (int t = 0; t < ncols; t += N) transpose_tile(src + t, stride, out + t);
    }
    static void transpose_tile(const float* src, int64_t stride, F* out) {
        __m256 r[8], t[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * stride);
        for (int i = 0; i < 8; i += 2) {
            t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // per 128 bits: a0 b0 a1 b1
            t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  //               a2 b2 a3 b3
        }
        for (int i = 0; i < 8; i += 4) {  // r[i + k]: column 4j + k of rows i..i+3, in half j
            r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
            r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
            r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
            r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
        }
        for (int k = 0; k < 4; ++k) {
            out[k].v = _mm256_permute2f128_ps(r[k], r[k + 4], 0x20);      // low halves: column k
            out[k + 4].v = _mm256_permute2f128_ps(r[k], r[k + 4], 0x31);  // high halves: column 4+k
        }
    }
    // Lane j = base[idx[j]] (idx in elements of 4 bytes).
    static F gather_idx(const void* base, I idx) {
        return {_mm256_i32gather_ps(static_cast<const float*>(base), idx.v, 4)};
    }
    static M mask_from_bits(uint32_t b) {
        const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        return {_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(b)), lane_bit), lane_bit)};
    }
    // Low byte of each lane to p[0..N).
    static void store_u8(uint8_t* p, I a) {
        const __m256i b = _mm256_shuffle_epi8(
            a.v, _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                  0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1));
        const uint32_t lo = static_cast<uint32_t>(_mm256_extract_epi32(b, 0));
        const uint32_t hi = static_cast<uint32_t>(_mm256_extract_epi32(b, 4));
        const uint64_t both = lo | (static_cast<uint64_t>(hi) << 32);
        _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_cvtsi64_si128(static_cast<long long>(both)));
    }
    // Low 16 bits of each lane to p[0..N).
    static void store_u16(uint16_t* p, I a) {
        const __m256i b = _mm256_shuffle_epi8(
            a.v, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                  0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1));
        const __m256i q = _mm256_permute4x64_epi64(b, 0x08);  // 64-bit lanes 0 and 2 to the bottom
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(q));
    }

    static F abs(F a) { return {_mm256_and_ps(a.v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)))}; }
    static F neg(F a) { return {_mm256_xor_ps(a.v, _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN)))}; }
    static F sqrt(F a) { return {_mm256_sqrt_ps(a.v)}; }
    static F select(M m, F t, F f) { return {_mm256_blendv_ps(f.v, t.v, _mm256_castsi256_ps(m.m))}; }
    static I select(M m, I t, I f) { return {_mm256_blendv_epi8(f.v, t.v, m.m)}; }
    // min / max as minps / maxps: a < b ? a : b (resp. >), b when either is NaN.
    static F fmin(F a, F b) { return {_mm256_min_ps(a.v, b.v)}; }
    static F fmax(F a, F b) { return {_mm256_max_ps(a.v, b.v)}; }
    static F fmadd(F a, F b, F c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }    // a * b + c, one rounding
    static F fnmadd(F a, F b, F c) { return {_mm256_fnmadd_ps(a.v, b.v, c.v)}; }  // c - a * b, one rounding
    // Nearest integer, ties to even (as rintf in the default rounding mode).
    static F round_even(F a) { return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
    static I min(I a, I b) { return {_mm256_min_epi32(a.v, b.v)}; }
    static I max(I a, I b) { return {_mm256_max_epi32(a.v, b.v)}; }
    static F to_float(I a) { return {_mm256_cvtepi32_ps(a.v)}; }
    static I trunc_to_int(F a) { return {_mm256_cvttps_epi32(a.v)}; }
    static I as_int(F a) { return {_mm256_castps_si256(a.v)}; }
    static F as_float(I a) { return {_mm256_castsi256_ps(a.v)}; }
    static M test(I a, int32_t bits) {
        return {_mm256_xor_si256(_mm256_cmpeq_epi32(_mm256_and_si256(a.v, _mm256_set1_epi32(bits)), _mm256_setzero_si256()),
                                 _mm256_set1_epi32(-1))};
    }

    static bool any(M m) { return !_mm256_testz_si256(m.m, m.m); }
    static uint32_t bits(M m) { return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(m.m))); }
    static M none_set() { return {_mm256_setzero_si256()}; }
    static M all_set() { return {_mm256_set1_epi32(-1)}; }
    static float hmax(F a) {
        __m128 m = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
        m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        m = _mm_max_ss(m, _mm_movehdup_ps(m));
        return _mm_cvtss_f32(m);
    }
    static int32_t hsum(I a) {
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(a.v), _mm256_extracti128_si256(a.v, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
        return _mm_cvtsi128_si32(s);
    }

    // fp32 -> fp16 bits, round to nearest even, every NaN -> sign | 0x7e00
    // (ggml's software conversion; the hardware keeps NaN payloads).
    static I to_half(F a) {
        const __m128i h = _mm256_cvtps_ph(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m256i hw = _mm256_cvtepu16_epi32(h);
        const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(a.v, a.v, _CMP_UNORD_Q));
        const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(a.v), 16), _mm256_set1_epi32(0x8000));
        const __m256i patched = _mm256_or_si256(sign, _mm256_set1_epi32(0x7e00));
        return {_mm256_blendv_epi8(hw, patched, nan)};
    }
    static uint16_t half(float x) {
        if (x != x) {  // NaN: ggml's software conversion returns a plain quiet NaN
            uint32_t u;
            __builtin_memcpy(&u, &x, 4);
            return static_cast<uint16_t>(((u >> 16) & 0x8000u) | 0x7e00u);
        }
        return static_cast<uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    static float from_half(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }
};

}  // namespace kq::isa_avx2
