// Mat-vec (n <= 4 columns) of the legacy formats on ggml's own rows, block
// by block, for rows whose packed layout would be padded.
//
// Why: the packed layouts (matmul/packed.h) put 16 blocks side by side and
// pad a row to whole groups of 16. A row of k = 576 (SmolLM2, and every
// model with a hidden size that is not a multiple of 512) is 18 blocks of
// 32, packed as 32: 1.78x the bytes. Decoding one token is memory-bound, so
// the padded mat-vec runs 1.78x slower than the bytes need. These kernels
// read ggml's blocks as stored (no padding, no packing per call), one block
// of 32 values per 256-bit vector, as llama.cpp's vec_dot does.
//
// Per block and column: S = integer dot of the 32 weight values with the 32
// activation values (Q8_0 / Q8_1 blocks, as the quantize kernels write the
// activation rows), accumulated as float(S) * (dw * da) in 8 lanes (summed
// once per row at the end); formats with a minimum add mw * sa, sa being
// Q8_1's s = da * sum(a). Formats stored with an offset (Q4_0: q - 8, Q5_0:
// q - 16) subtract offset * sum(a), itself one more dot product.
//
// Included by the avx512 and avx512vnni folders (each with its own flags);
// everything is in an unnamed namespace (see mm512_float.h for why).
#pragma once
#include "isa/avx512/mm512_common.h"  // <immintrin.h>, see there

#include <cstddef>
#include <cstdint>

#include "core/blocks.h"
#include "core/kernels.h"

namespace kq::isa_avx512 {
namespace {

// 256-bit u8 x s8 dot products, 4 products per int32 lane.
template <bool kVnni>
inline __m256i dot256(__m256i acc, __m256i u, __m256i s) {
    if constexpr (kVnni) {
        return _mm256_dpbusd_epi32(acc, u, s);
    } else {
        // pmaddubsw cannot saturate: u <= 31 with |s| <= 127, or |w| <= 128
        // (Q8_0) with |a| <= 127, keep each pair under 2^15.
        return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
    }
}

inline __m256i load256u(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 16 bytes of nibbles -> 32 values: low nibbles are elements 0..15, high
// nibbles elements 16..31 (ggml's order).
inline __m256i nibbles32(const uint8_t* qs) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
    const __m128i m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}
// Q5 high bits: bit j of qh is bit 4 of element j (j = 0..31).
inline __m256i high5(const uint8_t* qh) {
    uint32_t h;
    __builtin_memcpy(&h, qh, 4);
    return _mm256_and_si256(_mm256_movm_epi8(h), _mm256_set1_epi8(0x10));
}
inline float f16(uint16_t h) { return _cvtsh_ss(h); }

// Block readers: values (u8, or s8 for Q8_0), scale, minimum, offset.
struct RowQ4_0 {
    using Block = block_q4_0;
    using Act = block_q8_0;
    static constexpr int kOffset = 8, kSigned = 0, kMin = 0;
    static __m256i values(const Block& b) { return nibbles32(b.qs); }
};
struct RowQ4_1 {
    using Block = block_q4_1;
    using Act = block_q8_1;
    static constexpr int kOffset = 0, kSigned = 0, kMin = 1;
    static __m256i values(const Block& b) { return nibbles32(b.qs); }
};
struct RowQ5_0 {
    using Block = block_q5_0;
    using Act = block_q8_0;
    static constexpr int kOffset = 16, kSigned = 0, kMin = 0;
    static __m256i values(const Block& b) { return _mm256_or_si256(nibbles32(b.qs), high5(b.qh)); }
};
struct RowQ5_1 {
    using Block = block_q5_1;
    using Act = block_q8_1;
    static constexpr int kOffset = 0, kSigned = 0, kMin = 1;
    static __m256i values(const Block& b) { return _mm256_or_si256(nibbles32(b.qs), high5(b.qh)); }
};
struct RowQ8_0 {
    using Block = block_q8_0;
    using Act = block_q8_0;
    static constexpr int kOffset = 0, kSigned = 1, kMin = 0;
    static __m256i values(const Block& b) { return load256u(b.qs); }
};

template <class B>
inline float block_min(const typename B::Block& b) {
    if constexpr (B::kMin) return f16(b.m);
    else return 0.0f;
}
template <class B>
inline float act_sum(const typename B::Act& a) {
    if constexpr (B::kMin) return f16(a.s);
    else return 0.0f;
}

// R weight rows (ws bytes apart) against C activation rows: the activation
// block, and the offset term of Q4_0/Q5_0, are loaded and computed once per
// block for the R rows. pf: null, or R rows further on, fetched into L2 a
// block at a time while these compute.
template <class B, bool kVnni, int R, int C>
void rows_dot(int64_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ldy,
              const uint8_t* pf) {
    using Block = typename B::Block;
    using Act = typename B::Act;
    __m256 acc[R][C];
    float mins[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) {
            acc[r][c] = _mm256_setzero_ps();
            mins[r][c] = 0.0f;
        }
    for (int64_t i = 0; i < nb; ++i) {
        if (pf)
            for (int r = 0; r < R; ++r)
                _mm_prefetch(reinterpret_cast<const char*>(pf + r * ws + i * sizeof(Block)), _MM_HINT_T1);
        __m256i av[C], off[C];
        float da[C], sa[C];
        for (int c = 0; c < C; ++c) {
            const Act& ab = reinterpret_cast<const Act*>(a + c * as)[i];
            av[c] = load256u(ab.qs);
            da[c] = f16(ab.d);
            sa[c] = act_sum<B>(ab);
            if constexpr (B::kOffset)
                off[c] = dot256<kVnni>(_mm256_setzero_si256(), _mm256_set1_epi8(static_cast<char>(B::kOffset)), av[c]);
        }
        for (int r = 0; r < R; ++r) {
            const Block& wb = reinterpret_cast<const Block*>(w + r * ws)[i];
            const __m256i wv = B::values(wb);
            const float dw = f16(wb.d);
            const float mw = block_min<B>(wb);
            for (int c = 0; c < C; ++c) {
                __m256i s;
                if constexpr (B::kSigned) {
                    s = dot256<kVnni>(_mm256_setzero_si256(), _mm256_abs_epi8(wv), _mm256_sign_epi8(av[c], wv));
                } else {
                    s = dot256<kVnni>(_mm256_setzero_si256(), wv, av[c]);
                    if constexpr (B::kOffset) s = _mm256_sub_epi32(s, off[c]);
                }
                acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw * da[c]), acc[r][c]);
                if constexpr (B::kMin) mins[r][c] += mw * sa[c];
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) {
            const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[r][c]), _mm256_extractf128_ps(acc[r][c], 1));
            const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
            y[c * ldy + r] = _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q))) + mins[r][c];
        }
}

template <class B, bool kVnni, int R>
void rows_dot_cols(int64_t cc, int64_t nb, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y,
                   int64_t ldy, const uint8_t* pf) {
    switch (cc) {
        case 1: rows_dot<B, kVnni, R, 1>(nb, w, ws, a, as, y, ldy, pf); break;
        case 2: rows_dot<B, kVnni, R, 2>(nb, w, ws, a, as, y, ldy, pf); break;
        case 3: rows_dot<B, kVnni, R, 3>(nb, w, ws, a, as, y, ldy, pf); break;
        default: rows_dot<B, kVnni, R, 4>(nb, w, ws, a, as, y, ldy, pf); break;
    }
}

// gemm_fn contract (core/kernels.h) on ggml rows, for nc <= kMatVecMaxCols
// of the driver (4); larger nc are handled in chunks of 4 columns. Tiles of
// kRowTile rows, then single rows. Each tile prefetches the tile four ahead:
// rows are short (a SmolLM2 row of k = 576 is 18 blocks, 324 B of Q4_1), so
// the next tile would already be in flight, and four interleaved streams
// that short keep the hardware prefetcher from ramping up (Q8_0, 49152 x
// 576, 1 thread: 1.2-1.6 ms one row at a time, 2.0 ms prefetching the next
// tile, 4.3-5.0 ms without prefetch, 1.0-1.2 ms four tiles ahead).
constexpr int kRowTile = 4;

template <class B, bool kVnni>
void gemv_rows(int64_t k, const void* w, size_t ws, int64_t nr, const void* a, size_t as, int64_t nc, float* y,
               int64_t ldy) {
    const int64_t nb = k / 32;
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    for (int64_t c0 = 0; c0 < nc; c0 += 4) {
        const int64_t cc = nc - c0 < 4 ? nc - c0 : 4;
        const uint8_t* ac = ab + c0 * as;
        int64_t r = 0;
        for (; r + kRowTile <= nr; r += kRowTile) {
            const uint8_t* ahead = r + 5 * kRowTile <= nr ? wb + (r + 4 * kRowTile) * ws : nullptr;
            rows_dot_cols<B, kVnni, kRowTile>(cc, nb, wb + r * ws, ws, ac, as, y + c0 * ldy + r, ldy, ahead);
        }
        for (; r < nr; ++r) rows_dot_cols<B, kVnni, 1>(cc, nb, wb + r * ws, ws, ac, as, y + c0 * ldy + r, ldy, nullptr);
    }
}

template <bool kVnni>
void register_row_kernels(KernelSet& ks) {
    ks[TypeId::Q4_0].gemv_rows = gemv_rows<RowQ4_0, kVnni>;
    ks[TypeId::Q4_1].gemv_rows = gemv_rows<RowQ4_1, kVnni>;
    ks[TypeId::Q5_0].gemv_rows = gemv_rows<RowQ5_0, kVnni>;
    ks[TypeId::Q5_1].gemv_rows = gemv_rows<RowQ5_1, kVnni>;
    ks[TypeId::Q8_0].gemv_rows = gemv_rows<RowQ8_0, kVnni>;
}

}  // namespace
}  // namespace kq::isa_avx512
