// k-quant mat-mat with weight rows in the lanes (AVX-512), for prompt
// batches. Included by mm512_quant.h, which sends the k-quants' gemm here
// from QRows::kMinCols columns on.
//
// Why. The R x C tile kernels of mm512_quant.h keep a row's lane blocks in
// the lanes, so every (row, column, group of 16 lane blocks) ends in a float
// epilogue (int->float, dw * da, two FMAs: 3-4 operations per LB/4 dot
// instructions) and every column tile decodes the weights again. Here a
// 16-row tile is decoded once per k chunk into bytes with row r in lane r,
// and every column of the call is swept over it:
//   value vector (lane block j, t):  lane r = elements 4t..4t+3 of row r's
//                                    lane block j (u8)
//   activation:  the column's 4 bytes for (j, t), broadcast (a memory
//                operand of vpdpbusd: no shuffle, no register)
// Per (16 rows, column, lane block): LB/4 dot instructions into S. The block
// scales then enter in one of three ways, by format:
//  * folded (Q2_K; Q3_K on vpdpbusd): the decode multiplies each value by
//    its block's integer scale (q * sc fits a byte, plus a bias for Q3_K's
//    signed product), so S runs over the whole super-block; per super-block
//      out += (d * S - dmin * sum(mn * bsum)) * da
//    with sum(mn * bsum) by int16 pair products (vpdpwssd) against the
//    columns' block sums (the bias: S starts at -bias * sum(a)).
//  * integer scales (Q4_K, Q5_K: 6-bit): s1 += S * sc per block (vpmulld),
//    then per super-block the same as folded.
//  * float (Q6_K; Q3_K on pmaddubsw, whose int16 pair sums the folded bytes
//    would saturate):
//      accf += float(S) * dw[j]     dw: 16 rows' block scale (f32)
//      out  += mw[j] * sa           mw: 16 rows' min term, sa: the column's
//                                   block sum times its scale (packed.h SA)
//    and per super-block out += accf * da. Offsets (Q6_K's q - 32, Q3_K's
//    u - 4) are a min term: mw = -offset * dw.
//
// Decoded chunk (one 16-row tile, kChunkGroups groups), per group:
//   16 lane blocks x LB/4 value vectors   (j * LB/4 + t) * 64
//   then the scales of the variant (QRows: kFold*, kInt*, or DW[16], MW[16]
//   f32 vectors), lane r = row r.
// Rows past the last one are decoded from a valid row and never stored.
#pragma once
#include "isa/avx512/mm512_common.h"
#include "isa/avx512/mm512_decode.h"
#include "matmul/matmul.h"
#include "matmul/packed.h"

#include <utility>

namespace kq::isa_avx512 {
namespace {

// 16 x 16 transpose of 32-bit elements: lane j of v[r] -> lane r of v[j].
// Unpack 32- then 64-bit pairs (v[4i + q] lane L: element 4L + q of rows
// 4i..4i+3), then gather the 128-bit lanes of the four row quads.
inline void transpose16x16(__m512i (&v)[16]) {
    __m512i t[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {
        v[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        v[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        v[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        v[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
    for (int q = 0; q < 4; ++q) {
        // 0x88: lanes 0, 2 of each source; 0xDD: lanes 1, 3.
        const __m512i a = _mm512_shuffle_i32x4(v[q], v[4 + q], 0x88);
        const __m512i b = _mm512_shuffle_i32x4(v[q], v[4 + q], 0xDD);
        const __m512i c = _mm512_shuffle_i32x4(v[8 + q], v[12 + q], 0x88);
        const __m512i d = _mm512_shuffle_i32x4(v[8 + q], v[12 + q], 0xDD);
        t[q] = _mm512_shuffle_i32x4(a, c, 0x88);
        t[8 + q] = _mm512_shuffle_i32x4(a, c, 0xDD);
        t[4 + q] = _mm512_shuffle_i32x4(b, d, 0x88);
        t[12 + q] = _mm512_shuffle_i32x4(b, d, 0xDD);
    }
    for (int j = 0; j < 16; ++j) v[j] = t[j];
}

inline __m512i bcast_u32(const uint8_t* p) {
    int32_t v;
    __builtin_memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
inline __m512 bcast_f32(const uint8_t* p) {
    float v;
    __builtin_memcpy(&v, p, 4);
    return _mm512_set1_ps(v);
}

// Columns per tile: 3 accumulators each (S, accf, out) x 8 = 24 zmm, plus
// the value vector and the two scale vectors.
constexpr int kRC = 8;
// Rows per block: their outputs for every column (128 rows x 512 columns x
// 4 bytes = 256 KiB) stay in L2 while the k chunks go by.
constexpr int64_t kRBlock = 128;

template <class D, class Dot>
struct QRows {
    static constexpr int NV = D::LB / 4;
    static constexpr int kLanesPerSuper = 256 / D::LB;        // 8 or 16
    static constexpr int kSuperPerGroup = 16 / kLanesPerSuper;  // 2 or 1
    static constexpr size_t kAG = packed::act_group_bytes(D::LB);
    static constexpr size_t kDA = packed::act_da_offset(D::LB), kSA = packed::act_sa_offset(D::LB);
    static constexpr size_t kDecGroup = (16 * NV + 32) * 64;
    // Groups per k chunk: ~10 KiB decoded (LB 32: 1 group, 8 KiB of values;
    // LB 16: 2 groups), which with a column tile's activations (8 x ~1.4
    // KiB per group) stays in the 32-48 KiB L1.
    static constexpr int64_t kChunkGroups = D::LB == 32 ? 1 : 2;
    // Scales folded into the weight bytes (Q2_K; Q3_K on vpdpbusd: its
    // folded bytes reach 252, and pmaddubsw's int16 pair sums would
    // saturate). Layout below.
    static constexpr bool kFold = D::kFoldBias >= 0 && (Dot::kVnni || D::kFoldBias == 0);
    static constexpr size_t kFoldD = 16 * NV * 64, kFoldDmin = kFoldD + 64, kFoldMins = kFoldD + 128;
    static_assert(!kFold || (D::LB == 16 && kFoldMins + 8 * 64 <= kDecGroup), "folded group layout");
    // Integer block scales (Q4_K, Q5_K: 6-bit): S * sc summed in int32 over
    // a super-block (|S * sc| <= 32 * 31 * 128 * 63, 8 of them < 2^31).
    // Layout after the value vectors: SC[16] int32 vectors (lane r = row r),
    // then per half h (super-block) d[h], -dmin[h] (f32) and 4 vectors of
    // minimum pairs (blocks 8h + 2p, 8h + 2p + 1).
    static constexpr bool kInt = !kFold && D::kIntScales;
    static constexpr size_t kIntSC = 16 * NV * 64, kIntD = kIntSC + 16 * 64, kIntDmin = kIntD + 128,
                            kIntMins = kIntDmin + 128;
    static_assert(!kInt || (D::LB == 32 && kIntMins + 8 * 64 <= kDecGroup), "int-scale group layout");
    // The tile needs the columns' block sums as int16 pairs (aux).
    static constexpr bool kAuxPairs = (kFold && D::kMinTerm) || kInt;
    // Fewer columns than this: the R x C tiles of mm512_quant.h, which do
    // not pay for a decode per 16 rows and k chunk. Measured at k = 4096
    // and 14336 (1 thread): folded and float variants pass them at ~32
    // columns, the integer-scale one (Q4_K) at ~96 (k = 4096, n = 64:
    // 280 vs 290 GFLOPS; n = 128: 300 vs 290).
    static constexpr int64_t kMinCols = kInt ? 96 : 32;

    template <int T>
    static void decode_values(const uint8_t* const (&g)[16], uint8_t* dg) {
        __m512i v[16];
        for (int r = 0; r < 16; ++r) v[r] = D::template value<T>(g[r]);
        transpose16x16(v);
        for (int j = 0; j < 16; ++j) _mm512_store_si512(dg + (j * NV + T) * 64, v[j]);
        if constexpr (T + 1 < NV) decode_values<T + 1>(g, dg);
    }

    // Byte b of every lane -> (b - offset) * sc + kFoldBias, sc: the lane's
    // int32 (the row's block scale), computed in 16-bit halves.
    static __m512i fold(__m512i v, __m512i sc) {
        const __m512i sc16 = _mm512_or_si512(_mm512_and_si512(sc, _mm512_set1_epi32(0xFFFF)), _mm512_slli_epi32(sc, 16));
        const __m512i off = _mm512_set1_epi16(D::kOffsetShift >= 0 ? 1 << D::kOffsetShift : 0);
        const __m512i bias = _mm512_set1_epi16(static_cast<short>(D::kFoldBias));
        const __m512i lo = _mm512_sub_epi16(_mm512_and_si512(v, _mm512_set1_epi16(0x00FF)), off);
        const __m512i hi = _mm512_sub_epi16(_mm512_srli_epi16(v, 8), off);
        const __m512i plo = _mm512_add_epi16(_mm512_mullo_epi16(lo, sc16), bias);
        const __m512i phi = _mm512_add_epi16(_mm512_mullo_epi16(hi, sc16), bias);
        return _mm512_or_si512(_mm512_and_si512(plo, _mm512_set1_epi16(0x00FF)), _mm512_slli_epi16(phi, 8));
    }
    template <int T>
    static void decode_folded(const uint8_t* const (&g)[16], const __m512i (&sc)[16], uint8_t* dg) {
        __m512i v[16];
        for (int r = 0; r < 16; ++r) v[r] = D::template value<T>(g[r]);
        transpose16x16(v);
        for (int j = 0; j < 16; ++j) _mm512_store_si512(dg + (j * NV + T) * 64, fold(v[j], sc[j]));
        if constexpr (T + 1 < NV) decode_folded<T + 1>(g, sc, dg);
    }

    // Folded group (one super-block): value vectors (j, t) of bytes
    // (q - offset) * sc + kFoldBias; then at kFoldD the 16 rows' d, at
    // kFoldDmin their -dmin (f32), at kFoldMins 8 vectors of minimum pairs:
    // vector p lane r = int16 mn of blocks 2p, 2p + 1 of row r.
    static void decode_group_folded(const uint8_t* const (&g)[16], uint8_t* dg) {
        __m512i sc[16];
        for (int r = 0; r < 16; ++r) sc[r] = D::int_scales(g[r]);
        transpose16x16(sc);
        decode_folded<0>(g, sc, dg);
        alignas(64) float d[16], dmin[16];
        for (int r = 0; r < 16; ++r) D::super(g[r], d[r], dmin[r]);
        _mm512_store_ps(reinterpret_cast<float*>(dg + kFoldD), _mm512_load_ps(d));
        _mm512_store_ps(reinterpret_cast<float*>(dg + kFoldDmin), _mm512_sub_ps(_mm512_setzero_ps(), _mm512_load_ps(dmin)));
        if constexpr (D::kMinTerm) {
            __m512i mn[16];
            for (int r = 0; r < 16; ++r) mn[r] = D::int_mins(g[r]);
            transpose16x16(mn);
            for (int q = 0; q < 8; ++q)
                _mm512_store_si512(dg + kFoldMins + q * 64,
                                   _mm512_or_si512(_mm512_and_si512(mn[2 * q], _mm512_set1_epi32(0xFFFF)),
                                                   _mm512_slli_epi32(mn[2 * q + 1], 16)));
        }
    }

    static void decode_int_scales(const uint8_t* const (&g)[16], uint8_t* dg) {
        __m512i v[16];
        for (int r = 0; r < 16; ++r) v[r] = D::int_scales(g[r]);
        transpose16x16(v);
        for (int j = 0; j < 16; ++j) _mm512_store_si512(dg + kIntSC + j * 64, v[j]);
        alignas(64) float d[2][16], dmin[2][16];
        for (int r = 0; r < 16; ++r) {
            float dr[2], mr[2];
            D::super2(g[r], dr, mr);
            d[0][r] = dr[0], d[1][r] = dr[1], dmin[0][r] = -mr[0], dmin[1][r] = -mr[1];
        }
        for (int h = 0; h < 2; ++h) {
            _mm512_store_ps(reinterpret_cast<float*>(dg + kIntD + h * 64), _mm512_load_ps(d[h]));
            _mm512_store_ps(reinterpret_cast<float*>(dg + kIntDmin + h * 64), _mm512_load_ps(dmin[h]));
        }
        for (int r = 0; r < 16; ++r) v[r] = D::int_mins(g[r]);
        transpose16x16(v);
        for (int q = 0; q < 8; ++q)
            _mm512_store_si512(dg + kIntMins + q * 64, _mm512_or_si512(_mm512_and_si512(v[2 * q], _mm512_set1_epi32(0xFFFF)),
                                                                        _mm512_slli_epi32(v[2 * q + 1], 16)));
    }

    // Groups [g0, g0 + ngc) of rows w[0 .. nr) -> dec (layout above).
    static void decode(const uint8_t* w, size_t ws, int64_t nr, int64_t g0, int64_t ngc, uint8_t* dec) {
        for (int64_t gl = 0; gl < ngc; ++gl) {
            const uint8_t* g[16];
            for (int r = 0; r < 16; ++r) g[r] = w + min64(r, nr - 1) * ws + (g0 + gl) * D::kBytes;
            uint8_t* dg = dec + gl * kDecGroup;
            if constexpr (kFold) {
                decode_group_folded(g, dg);
                continue;
            }
            if constexpr (kInt) {
                decode_values<0>(g, dg);
                decode_int_scales(g, dg);
                continue;
            }
            decode_values<0>(g, dg);
            __m512i sd[16], sm[16];
            for (int r = 0; r < 16; ++r) {
                __m512 dw, mw = _mm512_setzero_ps();
                D::scales(g[r], dw, mw);
                sd[r] = _mm512_castps_si512(dw);
                sm[r] = _mm512_castps_si512(mw);
            }
            transpose16x16(sd);
            if constexpr (D::kOffsetShift >= 0) {
                const __m512 off = _mm512_set1_ps(-static_cast<float>(1 << D::kOffsetShift));
                for (int j = 0; j < 16; ++j) sm[j] = _mm512_castps_si512(_mm512_mul_ps(_mm512_castsi512_ps(sd[j]), off));
            } else {
                transpose16x16(sm);
            }
            for (int j = 0; j < 16; ++j) {
                _mm512_store_si512(dg + (16 * NV + j) * 64, sd[j]);
                _mm512_store_si512(dg + (16 * NV + 16 + j) * 64, sm[j]);
            }
        }
    }

    // One lane block j of C columns: S = sum over t of value (j, t) . the
    // columns' broadcast bytes, then the block's scale and min terms.
    template <int T, int C>
    [[gnu::always_inline]] static inline void dots(__m512i (&S)[C], const uint8_t* dv, const uint8_t* const (&ac)[C]) {
        const __m512i w = _mm512_load_si512(dv + T * 64);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) S[c] = Dot::dot(S[c], w, bcast_u32(ac[c] + 64 * T));
        if constexpr (T + 1 < NV) dots<T + 1, C>(S, dv, ac);
    }

    // The 16-row tile's decoded groups [0, ngc) (k groups g0 ..) against C
    // columns at a (column stride as, already at group g0); nsup: the row's
    // super-blocks from g0 on (the padded ones of the last group are
    // skipped). y: the 16 outputs of column 0 (stride ldy), the first `mask`
    // rows stored; first: y is overwritten, else added to.
    struct Args {
        const uint8_t* dec;
        int64_t ngc, nsup;
        const uint8_t* a;     // column 0's activations at group g0
        const uint8_t* next;  // the next tile's (prefetched)
        size_t as;
        const float* yin;  // partial sums of the earlier chunks (null: none)
        int64_t ldin;
        float* yout;
        int64_t ldout;
        __mmask16 mask;  // rows of the tile that exist
        const int32_t* aux;  // folded: the columns' per-group terms (gemm)
        int64_t ldaux;
    };

    // The next tile's activations for group gl, line j of each column: from
    // L2, they would otherwise be demand misses at the start of every group.
    template <int C>
    [[gnu::always_inline]] static inline void prefetch_next(const uint8_t* next, size_t as, int64_t gl, int j) {
        if (j < static_cast<int>(kAG / 64)) {
            const uint8_t* p = next + gl * kAG + 64 * j;
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c, p += as) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0);
        }
    }

    // The frame every tile variant shares: out[c] (the 16 rows of column c)
    // from the earlier chunks' partial sums or zero; per decoded group gl,
    // group(gl, dg, ag, xg, out) with the group's decoded bytes dg, column
    // c's activations ag[c] and aux terms xg[c]; the masked store.
    template <int C, class Group>
    [[gnu::always_inline]] static inline void frame(const Args& p, Group&& group) {
        __m512 out[C];
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) out[c] = p.yin ? _mm512_load_ps(p.yin + c * p.ldin) : _mm512_setzero_ps();
        for (int64_t gl = 0; gl < p.ngc; ++gl) {
            const uint8_t* ag[C];
            const int32_t* xg[C];
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
                ag[c] = p.a + c * p.as + gl * kAG;
                xg[c] = p.aux ? p.aux + c * p.ldaux + gl * 8 : nullptr;
            }
            group(gl, p.dec + gl * kDecGroup, ag, xg, out);
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(p.yout + c * p.ldout, p.mask, out[c]);
    }

    // Lane block j's dot products for C columns into S (from init).
    template <int C>
    [[gnu::always_inline]] static inline void block(const Args& p, int64_t gl, int j, const uint8_t* dg,
                                                    const uint8_t* const (&ag)[C], __m512i (&S)[C]) {
        prefetch_next<C>(p.next, p.as, gl, j);
        const uint8_t* ac[C];
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) ac[c] = ag[c] + 4 * j;
        dots<0, C>(S, dg + j * NV * 64, ac);
    }

    // Integer-scale tile: per lane block S, then s1 += S * sc (int32); per
    // super-block out += (d * s1 - dmin * sum(mn * block sum)) * da.
    template <int C>
    static void tile_int(const Args& p) {
        frame<C>(p, [&](int64_t gl, const uint8_t* dg, const uint8_t* const (&ag)[C], const int32_t* const (&xg)[C],
                        __m512 (&out)[C]) {
            const int hs = static_cast<int>(min64(kSuperPerGroup, p.nsup - gl * kSuperPerGroup));
            for (int h = 0; h < hs; ++h) {
                __m512i s1[C];
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) s1[c] = _mm512_setzero_si512();
                for (int j = h * kLanesPerSuper; j < (h + 1) * kLanesPerSuper; ++j) {
                    __m512i S[C];
#pragma GCC unroll 8
                    for (int c = 0; c < C; ++c) S[c] = _mm512_setzero_si512();
                    block<C>(p, gl, j, dg, ag, S);
                    const __m512i sc = _mm512_load_si512(dg + kIntSC + j * 64);
#pragma GCC unroll 8
                    for (int c = 0; c < C; ++c) s1[c] = _mm512_add_epi32(s1[c], _mm512_mullo_epi32(S[c], sc));
                }
                __m512i M[C];
                min_term<C, 4>(dg + kIntMins + h * 4 * 64, xg, h * 4, M);
                const __m512 d = _mm512_load_ps(reinterpret_cast<const float*>(dg + kIntD + h * 64));
                const __m512 ndmin = _mm512_load_ps(reinterpret_cast<const float*>(dg + kIntDmin + h * 64));
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    const __m512 t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(M[c]), ndmin,
                                                     _mm512_mul_ps(_mm512_cvtepi32_ps(s1[c]), d));
                    out[c] = _mm512_fmadd_ps(t, bcast_f32(ag[c] + kDA + 4 * h * kLanesPerSuper), out[c]);
                }
            }
        });
    }

    // M[c] = sum over Q pairs q of (minimum pair vector q) . (column c's
    // block-sum pair q0 + q), by int16 pair products.
    template <int C, int Q>
    [[gnu::always_inline]] static inline void min_term(const uint8_t* mins, const int32_t* const (&xg)[C], int q0,
                                                       __m512i (&M)[C]) {
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) M[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int q = 0; q < Q; ++q) {
            const __m512i mn = _mm512_load_si512(mins + q * 64);
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) M[c] = Dot::dot16(M[c], mn, _mm512_set1_epi32(xg[c][q0 + q]));
        }
    }

    // Folded tile: per super-block and column, one integer sum over all its
    // lane blocks (the scales are in the weights), the minimum's
    // sum(mn * block sum) by int16 pair products, then
    //   out += (d * S - dmin * M) * da
    template <int C>
    static void tile_folded(const Args& p) {
        frame<C>(p, [&](int64_t gl, const uint8_t* dg, const uint8_t* const (&ag)[C], const int32_t* const (&xg)[C],
                        __m512 (&out)[C]) {
            __m512i S[C];
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) S[c] = D::kFoldBias > 0 ? _mm512_set1_epi32(xg[c][0]) : _mm512_setzero_si512();
            for (int j = 0; j < 16; ++j) block<C>(p, gl, j, dg, ag, S);
            __m512i M[C];
            if constexpr (D::kMinTerm) min_term<C, 8>(dg + kFoldMins, xg, 0, M);
            const __m512 d = _mm512_load_ps(reinterpret_cast<const float*>(dg + kFoldD));
            const __m512 ndmin = _mm512_load_ps(reinterpret_cast<const float*>(dg + kFoldDmin));
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
                __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(S[c]), d);
                if constexpr (D::kMinTerm) t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(M[c]), ndmin, t);
                out[c] = _mm512_fmadd_ps(t, bcast_f32(ag[c] + kDA), out[c]);
            }
        });
    }

    // Float tile (layout: DW[16], MW[16] after the values).
    template <int C>
    static void tile(const Args& p) {
        if constexpr (kFold) return tile_folded<C>(p);
        if constexpr (kInt) return tile_int<C>(p);
        frame<C>(p, [&](int64_t gl, const uint8_t* dg, const uint8_t* const (&ag)[C], const int32_t* const (&)[C],
                        __m512 (&out)[C]) {
            const int hs = static_cast<int>(min64(kSuperPerGroup, p.nsup - gl * kSuperPerGroup));
            for (int h = 0; h < hs; ++h) {
                __m512 accf[C];
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) accf[c] = _mm512_setzero_ps();
                for (int j = h * kLanesPerSuper; j < (h + 1) * kLanesPerSuper; ++j) {
                    __m512i S[C];
#pragma GCC unroll 8
                    for (int c = 0; c < C; ++c) S[c] = _mm512_setzero_si512();
                    block<C>(p, gl, j, dg, ag, S);
                    const __m512 dw = _mm512_load_ps(reinterpret_cast<const float*>(dg + (16 * NV + j) * 64));
                    const __m512 mw = _mm512_load_ps(reinterpret_cast<const float*>(dg + (16 * NV + 16 + j) * 64));
#pragma GCC unroll 8
                    for (int c = 0; c < C; ++c) {
                        accf[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[c]), dw, accf[c]);
                        out[c] = _mm512_fmadd_ps(mw, bcast_f32(ag[c] + 4 * j + kSA), out[c]);
                    }
                }
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c)
                    out[c] = _mm512_fmadd_ps(accf[c], bcast_f32(ag[c] + kDA + 4 * h * kLanesPerSuper), out[c]);
            }
        });
    }

    using TileFn = void (*)(const Args&);
    template <int... Cs>
    static TileFn pick(int c, std::integer_sequence<int, Cs...>) {
        TileFn f = nullptr;
        ((f = (c == Cs + 1 ? tile<Cs + 1> : f)), ...);
        return f;
    }

    // Row blocks x k chunks x 16-row tiles (decoded once per chunk) x column
    // tiles. The activations of a chunk (every column: 512 x ~1.4 KiB per
    // group) stay in L2 while the row tiles of a block go by. The partial
    // sums between chunks wait in a contiguous buffer (scratch slot 1,
    // [row tile][column][16]): y's columns are m floats apart, a stride
    // that maps a block's 512 columns onto a few L2 sets.
    static void gemm(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc,
                     float* y, int64_t ldy) {
        const int64_t ng = (k / D::LB + packed::kGroup - 1) / packed::kGroup;
        const int64_t nsup = k / 256;
        uint8_t* dec = static_cast<uint8_t*>(matmul_scratch(0, kChunkGroups * kDecGroup));
        float* part_sums = ng > kChunkGroups
                               ? static_cast<float*>(matmul_scratch(1, sizeof(float) * 16 * nc * (kRBlock / 16)))
                               : nullptr;
        // Folded: per chunk, column and group, 8 int32 for the tile: the
        // block sums as int16 pairs (for the minimum), or -kFoldBias times
        // the super-block's sum (the bias of the folded bytes).
        int32_t* aux = kFold || kInt ? static_cast<int32_t*>(matmul_scratch(2, sizeof(int32_t) * 8 * kChunkGroups * nc))
                             : nullptr;
        const TileFn full = tile<kRC>;
        const TileFn part = pick(static_cast<int>(nc % kRC), std::make_integer_sequence<int, kRC - 1>{});
        for (int64_t rb = 0; rb < nr; rb += kRBlock) {
            const int64_t rb1 = min64(nr, rb + kRBlock);
            for (int64_t g0 = 0; g0 < ng; g0 += kChunkGroups) {
                Args p;
                p.dec = dec;
                p.ngc = min64(kChunkGroups, ng - g0);
                p.nsup = nsup - g0 * kSuperPerGroup;
                p.as = as;
                const bool last = g0 + p.ngc >= ng;
                p.aux = aux;
                p.ldaux = p.ngc * 8;
                if constexpr (kFold || kInt) {
                    for (int64_t c = 0; c < nc; ++c)
                        for (int64_t gl = 0; gl < p.ngc; ++gl) {
                            const __m512i sum = load512(a + c * as + (g0 + gl) * kAG + packed::act_sum_offset(D::LB));
                            int32_t* e = aux + c * p.ldaux + gl * 8;
                            if constexpr (kAuxPairs)
                                _mm256_storeu_si256(reinterpret_cast<__m256i*>(e), _mm512_cvtepi32_epi16(sum));
                            else
                                e[0] = -D::kFoldBias * _mm512_reduce_add_epi32(sum);
                        }
                }
                for (int64_t r0 = rb; r0 < rb1; r0 += 16) {
                    const int64_t rows = min64(16, rb1 - r0);
                    decode(w + r0 * ws, ws, rows, g0, p.ngc, dec);
                    p.mask = last ? low_mask16(rows) : static_cast<__mmask16>(0xFFFF);
                    const uint8_t* ag = a + g0 * kAG;
                    float* ps = part_sums ? part_sums + (r0 - rb) / 16 * 16 * nc : nullptr;
                    p.ldin = 16;
                    p.ldout = last ? ldy : 16;
                    for (int64_t c = 0; c < nc; c += kRC) {
                        p.a = ag + c * as;
                        p.aux = aux + c * p.ldaux;
                        // The following tile's columns (or this row tile's
                        // first ones, which the next row tile reads).
                        p.next = ag + (c + kRC < nc ? c + kRC : 0) * as;
                        p.yin = g0 == 0 ? nullptr : ps + c * 16;
                        p.yout = last ? y + c * ldy + r0 : ps + c * 16;
                        (c + kRC <= nc ? full : part)(p);
                    }
                }
            }
        }
    }
};

}  // namespace
}  // namespace kq::isa_avx512
