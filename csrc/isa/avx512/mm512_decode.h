// Decoders of the packed weight layouts (matmul/packed.h) on AVX-512 and the
// integer dot products the kernels run them through. Shared by the R x C
// tile kernels (mm512_quant.h) and the rows-in-lanes k-quant mat-mat
// (mm512_qrows.h). A decoder D gives, for one packed group of one row:
//   D::value<T>(g)        value vector T (T < LB/4): lane j = elements
//                         4T..4T+3 of lane block j, one u8 (or int8) each
//   D::scales(g, dw, mw)  16-lane f32 block scales: dw multiplies the block's
//                         integer dot product, mw the activation block's sum
//                         (times its scale: the SA of packed.h) for formats
//                         with a minimum
// Everything is in an unnamed namespace (see mm512_float.h for why).
#pragma once
#include "isa/avx512/mm512_common.h"
#include "matmul/packed.h"

namespace kq::isa_avx512 {
namespace {
// ---- integer dot products: acc += sum of 4 u8 x s8 products per int32 lane ---
struct DotVnni {
    static constexpr bool kVnni = true;
    static __m512i dot(__m512i acc, __m512i u, __m512i s) { return _mm512_dpbusd_epi32(acc, u, s); }
    // acc += sum of 2 int16 x int16 products per int32 lane
    static __m512i dot16(__m512i acc, __m512i a, __m512i b) { return _mm512_dpwssd_epi32(acc, a, b); }
};
// pmaddubsw: u8 x s8 pairs summed to int16 (no saturation: values <= 63 or
// |w| <= 127 with |a| <= 127 keep 2 * 63 * 127 and 2 * 127 * 127 in range),
// then pmaddwd by 1 sums pairs to int32.
// The empty asm keeps each sum in a register where it is formed: integer
// adds reassociate, and GCC otherwise computes all of a tile's products
// first and adds them in a tree, spilling a hundred zmm values per call
// (VNNI's vpdpbusd accumulates in one instruction and is not affected).
struct DotBw {
    static constexpr bool kVnni = false;
    static __m512i dot(__m512i acc, __m512i u, __m512i s) {
        __m512i r = _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
        asm("" : "+v"(r));
        return r;
    }
    static __m512i dot16(__m512i acc, __m512i a, __m512i b) {
        __m512i r = _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
        asm("" : "+v"(r));
        return r;
    }
};

inline __m512i nib_lo(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi8(0x0F)); }
inline __m512i nib_hi(__m512i v) { return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F)); }
// a | (b & m) per bit (vpternlogd truth table 0xF8 = A | (B & C)).
inline __m512i or_masked(__m512i a, __m512i b, __m512i m) { return _mm512_ternarylogic_epi32(a, b, m, 0xF8); }

// Shift left (S > 0) or right (S < 0) in 16-bit lanes. The callers mask the
// result to bits that no neighbouring byte can reach.
template <int S>
inline __m512i shift16(__m512i v) {
    if constexpr (S > 0) return _mm512_slli_epi16(v, S);
    else if constexpr (S < 0) return _mm512_srli_epi16(v, -S);
    else return v;
}

// Value vector t of the N (+ H5) layout: nibble, plus bit 4 from H5
// (bit t of H5 for t < 4, bit t for t >= 4 as well: see packed.h).
template <int T, bool kQ5>
inline __m512i value_n(const uint8_t* g) {
    const __m512i n = load512(g + 64 * (T & 3));
    __m512i v = T < 4 ? nib_lo(n) : nib_hi(n);
    if constexpr (kQ5) {
        const __m512i h = load512(g + 256);
        v = or_masked(v, shift16<4 - T>(h), _mm512_set1_epi8(0x10));
    }
    return v;
}

// ---- decoders -------------------------------------------------------------------
// kOffsetShift: values stored as q + (1 << kOffsetShift) (-1: none).
// kSigned: value vectors are int8 (Q8_0); see the tile for how each Dot copes.
// kSuper: the activations carry one Q8_K scale per 256 elements (the
// k-quants), the same in every lane block of a super-block.
// kFoldBias >= 0: (value - offset) * integer block scale + kFoldBias fits a
// byte (mm512_qrows.h folds the scales into the weights); then
//   int_scales(g)   16 lanes int32: the lane blocks' integer scales
//   int_mins(g)     16 lanes int32: their integer minimums (kMinTerm)
//   super(g, d, m)  the super-block's d and dmin (value = d*sc*q - dmin*mn)
template <bool kMin, bool kQ5>
struct DecLegacy {  // Q4_0, Q4_1, Q5_0, Q5_1
    static constexpr int LB = 32;
    static constexpr size_t kD = kQ5 ? 320 : 256;
    static constexpr size_t kBytes = kD + (kMin ? 64 : 32);
    static constexpr int kOffsetShift = kMin ? -1 : (kQ5 ? 4 : 3);
    static constexpr bool kMinTerm = kMin, kSigned = false;
    static constexpr bool kSuper = false;
    static constexpr int kFoldBias = -1;
    static constexpr bool kIntScales = false;
    template <int T>
    static __m512i value(const uint8_t* g) { return value_n<T, kQ5>(g); }
    static void scales(const uint8_t* g, __m512& dw, __m512& mw) {
        dw = load_f16x16(g + kD);
        if constexpr (kMin) mw = load_f16x16(g + kD + 32);
    }
};

struct DecQ8_0 {
    static constexpr int LB = 32;
    static constexpr size_t kBytes = 8 * 64 + 32;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMinTerm = false, kSigned = true;
    static constexpr bool kSuper = false;
    static constexpr int kFoldBias = -1;
    static constexpr bool kIntScales = false;
    template <int T>
    static __m512i value(const uint8_t* g) { return load512(g + 64 * T); }
    static void scales(const uint8_t* g, __m512& dw, __m512&) { dw = load_f16x16(g + 512); }
};

template <bool kQ5>
struct DecK45 {  // Q4_K, Q5_K
    static constexpr int LB = 32;
    static constexpr int kFoldBias = -1;  // q * sc up to 31 * 63
    static constexpr size_t kSC = kQ5 ? 320 : 256, kMN = kSC + 16, kD = kMN + 16;
    static constexpr size_t kBytes = kD + 8;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMinTerm = true, kSigned = false;
    static constexpr bool kSuper = true;
    // Integer scales (mm512_qrows.h): 6-bit SC, MN; per half-group (one
    // super-block) d[h], dmin[h].
    static constexpr bool kIntScales = true;
    static __m512i int_scales(const uint8_t* g) {
        return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + kSC)));
    }
    static __m512i int_mins(const uint8_t* g) {
        return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + kMN)));
    }
    static void super2(const uint8_t* g, float (&d)[2], float (&dmin)[2]) {
        alignas(16) float f[4];
        _mm_store_ps(f, _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(g + kD))));
        d[0] = f[0], d[1] = f[1], dmin[0] = f[2], dmin[1] = f[3];
    }
    template <int T>
    static __m512i value(const uint8_t* g) { return value_n<T, kQ5>(g); }
    static void scales(const uint8_t* g, __m512& dw, __m512& mw) {
        // D[2], DMIN[2] fp16 -> lanes [d0 x8 | d1 x8] and [dmin0 x8 | dmin1 x8].
        uint64_t h;
        __builtin_memcpy(&h, g + kD, 8);
        const __m512 dd = _mm512_cvtph_ps(_mm256_set1_epi64x(static_cast<long long>(h)));
        const __m512 d = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), dd);
        const __m512 m = _mm512_permutexvar_ps(_mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3), dd);
        dw = _mm512_mul_ps(load_u8x16_ps(g + kSC), d);
        mw = _mm512_mul_ps(load_u8x16_ps(g + kMN), _mm512_sub_ps(_mm512_setzero_ps(), m));
    }
};

struct DecQ6_K {
    static constexpr int LB = 16;
    static constexpr int kFoldBias = -1;  // (q - 32) * sc up to 32 * 128
    static constexpr bool kIntScales = false;
    static constexpr size_t kBytes = 3 * 64 + 18;
    static constexpr int kOffsetShift = 5;  // q - 32
    static constexpr bool kMinTerm = false, kSigned = false;
    static constexpr bool kSuper = true;
    template <int T>
    static __m512i value(const uint8_t* g) {
        const __m512i n = load512(g + 64 * (T & 1));
        const __m512i lo = T < 2 ? nib_lo(n) : nib_hi(n);
        // H6 bits 2T..2T+1 -> bits 4..5
        return or_masked(lo, shift16<4 - 2 * T>(load512(g + 128)), _mm512_set1_epi8(0x30));
    }
    static void scales(const uint8_t* g, __m512& dw, __m512&) {
        dw = _mm512_mul_ps(load_i8x16_ps(g + 192), bcast_f16(g + 208));
    }
};

struct DecQ3_K {
    static constexpr int LB = 16;
    static constexpr size_t kBytes = 64 + 32 + 18;
    static constexpr int kOffsetShift = 2;  // u - 4
    static constexpr bool kMinTerm = false, kSigned = false;
    static constexpr bool kSuper = true;
    // (u - 4) * sc with sc in [-32, 31]: [-124, 128] -> + 124: [0, 252]
    static constexpr int kFoldBias = 124;
    static constexpr bool kIntScales = false;
    static __m512i int_scales(const uint8_t* g) {
        return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 96)));
    }
    static __m512i int_mins(const uint8_t*) { return _mm512_setzero_si512(); }
    static void super(const uint8_t* g, float& d, float& dmin) {
        d = _mm512_cvtss_f32(bcast_f16(g + 112));
        dmin = 0.0f;
    }
    // H3 -> 64 bytes: lanes 0..7 from bits 0..3 of its bytes, lanes 8..15
    // from bits 4..7 (the upper half shifted right by 4).
    static __m512i h3(const uint8_t* g) {
        const __m512i h = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 64)));
        return _mm512_mask_srli_epi16(h, 0xFFFF0000u, h, 4);
    }
    template <int T>
    static __m512i value(const uint8_t* g) {
        const __m512i lo = _mm512_and_si512(shift16<-2 * T>(load512(g)), _mm512_set1_epi8(3));
        return or_masked(lo, shift16<2 - T>(h3(g)), _mm512_set1_epi8(0x04));  // bit T -> bit 2
    }
    static void scales(const uint8_t* g, __m512& dw, __m512&) {
        dw = _mm512_mul_ps(load_i8x16_ps(g + 96), bcast_f16(g + 112));
    }
};

struct DecQ2_K {
    static constexpr int LB = 16;
    static constexpr size_t kBytes = 64 + 20;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMinTerm = true, kSigned = false;
    static constexpr bool kSuper = true;
    static constexpr int kFoldBias = 0;  // q * sc in [0, 3 * 15]
    static constexpr bool kIntScales = false;
    static __m512i int_scales(const uint8_t* g) {
        return _mm512_and_si512(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 64))),
                                _mm512_set1_epi32(15));
    }
    static __m512i int_mins(const uint8_t* g) {
        return _mm512_srli_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 64))), 4);
    }
    static void super(const uint8_t* g, float& d, float& dmin) {
        d = _mm512_cvtss_f32(bcast_f16(g + 80));
        dmin = _mm512_cvtss_f32(bcast_f16(g + 82));
    }
    template <int T>
    static __m512i value(const uint8_t* g) {
        return _mm512_and_si512(shift16<-2 * T>(load512(g)), _mm512_set1_epi8(3));
    }
    static void scales(const uint8_t* g, __m512& dw, __m512& mw) {
        const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g + 64)));
        const __m512 s = _mm512_cvtepi32_ps(_mm512_and_si512(sc, _mm512_set1_epi32(15)));
        const __m512 m = _mm512_cvtepi32_ps(_mm512_srli_epi32(sc, 4));
        dw = _mm512_mul_ps(s, bcast_f16(g + 80));
        mw = _mm512_mul_ps(m, _mm512_sub_ps(_mm512_setzero_ps(), bcast_f16(g + 82)));
    }
};

}  // namespace
}  // namespace kq::isa_avx512
