// Quantized matmul kernels on AVX-512 over the packed layouts of
// matmul/packed.h, as templates on
//   D    the weight type's decoder (below): value vectors and block scales
//   Dot  the integer dot product: vpdpbusd (avx512vnni folder) or
//        vpmaddubsw + vpmaddwd (avx512 folder)
// Included by both folders; everything is in an unnamed namespace (see
// mm512_float.h for why).
//
// Per group of 16 lane blocks and per (row, column) of an R x C register
// tile: S = LB/4 dot products of value vector t with activation vector t
// (lane j accumulates block j), then
//   acc += float(S) * (dw * da)          dw, da: block scales (16 lanes)
//   acc += mw * sa                       types with a minimum
// Types stored with an offset (q - 8 etc.) start S at -offset * sum(a).
#pragma once
#include "isa/avx512/mm512_common.h"
#include "isa/avx512/mm512_decode.h"
#include "isa/avx512/mm512_pack.h"
#include "isa/avx512/mm512_qrows.h"
#include "core/kernels.h"
#include "matmul/matmul.h"
#include "matmul/packed.h"

namespace kq::isa_avx512 {
namespace {

// ---- the R x C tile ---------------------------------------------------------------
template <class D, class Dot>
struct QTile {
    static constexpr int NV = D::LB / 4;  // value vectors per group
    static constexpr size_t kAG = packed::act_group_bytes(D::LB);
    static constexpr size_t kDA = packed::act_da_offset(D::LB), kSA = packed::act_sa_offset(D::LB),
                            kSUM = packed::act_sum_offset(D::LB);
    // Offset of the stored values: Q8_0 on vpdpbusd is biased by 128 (u8).
    static constexpr int kShift = D::kSigned ? (Dot::kVnni ? 7 : -1) : D::kOffsetShift;

    template <int T>
    static __m512i wvalue(const uint8_t* g) {
        const __m512i v = D::template value<T>(g);
        if constexpr (D::kSigned && Dot::kVnni) return _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
        return v;
    }
    static __m512i dot(__m512i acc, __m512i w, __m512i a) {
        if constexpr (D::kSigned && !Dot::kVnni) {
            // |w| x (a with w's sign): u8 x s8 for pmaddubsw.
            const __m512i s = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(w), _mm512_setzero_si512(), a);
            return Dot::dot(acc, _mm512_abs_epi8(w), s);
        } else {
            return Dot::dot(acc, w, a);
        }
    }

    // Always inlined: GCC otherwise keeps the deeper decoders' unrolled
    // step out of line, with the R x C accumulators passed through memory
    // (measured: Q4_K mat-mat at n=512 went from 118 to 248 GFLOPS).
    template <int T, int R, int C>
    [[gnu::always_inline]] static inline void step(__m512i (&S)[R][C], const uint8_t* const (&wg)[R],
                                                   const uint8_t* const (&ag)[C]) {
        __m512i av[C];
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) av[c] = load512(ag[c] + 64 * T);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m512i w = wvalue<T>(wg[r]);
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) S[r][c] = dot(S[r][c], w, av[c]);
        }
        if constexpr (T + 1 < NV) step<T + 1, R, C>(S, wg, ag);
    }

    // The block scales of R rows for every group, as D::scales gives them:
    // pre[(r * ng + g) * 32 + 0..15] = dw, + 16..31 = mw.
    template <int R>
    static void prescale(int64_t ng, const uint8_t* w, size_t ws, float* pre) {
        for (int r = 0; r < R; ++r)
            for (int64_t gi = 0; gi < ng; ++gi) {
                __m512 dw, mw = _mm512_setzero_ps();
                D::scales(w + r * ws + gi * D::kBytes, dw, mw);
                _mm512_store_ps(pre + (r * ng + gi) * 32, dw);
                _mm512_store_ps(pre + (r * ng + gi) * 32 + 16, mw);
            }
    }

    // Groups [g0, g1) of R rows x C columns (ng: all groups of a row).
    // pre: null, or the rows' scales from prescale (a mat-mat reuses them
    // for every column tile instead of decoding them again). A row split
    // in k chunks keeps its 16-lane accumulators in accb between calls
    // (first: start from zero; last: reduce into y), so the sums are the
    // ones a single call makes, in the same order.
    template <int R, int C>
    static void run_part(int64_t ng, int64_t g0, int64_t g1, const uint8_t* w, size_t ws, const uint8_t* a, size_t as,
                         float* y, int64_t ldy, const float* pre, float* accb, bool first, bool last,
                         const uint8_t* pf = nullptr) {
        __m512 acc[R][C];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) acc[r][c] = first ? _mm512_setzero_ps() : _mm512_load_ps(accb + (r * C + c) * 16);
        for (int64_t gi = g0; gi < g1; ++gi) {
            const uint8_t* wg[R];
            const uint8_t* ag[C];
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) wg[r] = w + r * ws + gi * D::kBytes;
            // pf: the next row tile, whose group gi is fetched into L2
            // while this one computes (mat-vec: short rows, Q2_K's 4.7 KiB,
            // end before the hardware prefetcher has ramped up on them).
            if (pf)
                for (int r = 0; r < R; ++r)
                    for (size_t o = 0; o < D::kBytes; o += 64)
                        _mm_prefetch(reinterpret_cast<const char*>(pf + r * ws + gi * D::kBytes + o), _MM_HINT_T1);
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) ag[c] = a + c * as + gi * kAG;
            __m512i S[R][C];
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
                __m512i init = _mm512_setzero_si512();
                if constexpr (kShift >= 0)
                    init = _mm512_sub_epi32(init, _mm512_slli_epi32(load512(ag[c] + kSUM), kShift));
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) S[r][c] = init;
            }
            step<0, R, C>(S, wg, ag);
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                __m512 dw, mw = _mm512_setzero_ps();
                if (pre) {
                    dw = _mm512_load_ps(pre + (r * ng + gi) * 32);
                    if constexpr (D::kMinTerm) mw = _mm512_load_ps(pre + (r * ng + gi) * 32 + 16);
                } else {
                    D::scales(wg[r], dw, mw);
                }
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    const __m512 scale = _mm512_mul_ps(dw, loadf512(ag[c] + kDA));
                    acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[r][c]), scale, acc[r][c]);
                    if constexpr (D::kMinTerm) acc[r][c] = _mm512_fmadd_ps(mw, loadf512(ag[c] + kSA), acc[r][c]);
                }
            }
        }
        if (!last) {
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) _mm512_store_ps(accb + (r * C + c) * 16, acc[r][c]);
            return;
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
            // Edge tiles reduce with the same summation order as full ones:
            // an output does not depend on where its row falls.
            for (int r0 = 0; r0 < R; r0 += 4) {
                float out[4];
                reduce4(acc[r0][c], acc[r0 + 1 < R ? r0 + 1 : r0][c], acc[r0 + 2 < R ? r0 + 2 : r0][c],
                        acc[r0 + 3 < R ? r0 + 3 : r0][c], out);
                for (int r = 0; r < 4 && r0 + r < R; ++r) y[c * ldy + r0 + r] = out[r];
            }
        }
    }

    template <int R, int C>
    static void run(int64_t ng, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ldy) {
        run_part<R, C>(ng, 0, ng, w, ws, a, as, y, ldy, nullptr, nullptr, true, true);
    }
};

// ---- tail groups: rows in the lanes (matmul/packed.h, pack_weight_tail) ------------
// The same per-group arithmetic as QTile::run with R = 1, but lane j is row
// j's partial sum: added to y[c * ldy + j] (j < nr) instead of summed.
template <class D, class Dot, int C>
void tail_tile(int64_t ng, const uint8_t* w, const uint8_t* a, size_t as, int nr, float* y, int64_t ldy) {
    using Tile = QTile<D, Dot>;
    __m512 acc[C];
    for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
    for (int64_t gi = 0; gi < ng; ++gi) {
        const uint8_t* const wg[1] = {w + gi * D::kBytes};
        const uint8_t* ag[C];
        for (int c = 0; c < C; ++c) ag[c] = a + c * as + gi * Tile::kAG;
        __m512i S[1][C];
        for (int c = 0; c < C; ++c) {
            S[0][c] = _mm512_setzero_si512();
            if constexpr (Tile::kShift >= 0)
                S[0][c] = _mm512_sub_epi32(S[0][c], _mm512_slli_epi32(load512(ag[c] + Tile::kSUM), Tile::kShift));
        }
        Tile::template step<0, 1, C>(S, wg, ag);
        __m512 dw, mw = _mm512_setzero_ps();
        D::scales(wg[0], dw, mw);
        for (int c = 0; c < C; ++c) {
            acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[0][c]), _mm512_mul_ps(dw, loadf512(ag[c] + Tile::kDA)), acc[c]);
            if constexpr (D::kMinTerm) acc[c] = _mm512_fmadd_ps(mw, loadf512(ag[c] + Tile::kSA), acc[c]);
        }
    }
    const __mmask16 m = static_cast<__mmask16>((1u << nr) - 1u);
    for (int c = 0; c < C; ++c) {
        float* yc = y + c * ldy;
        _mm512_mask_storeu_ps(yc, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, yc), acc[c]));
    }
}

template <class D, class Dot>
void gemm_tail(int64_t ng, const void* w, int64_t nr, const void* a, size_t as, int64_t nc, float* y, int64_t ldy) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    for (int64_t r0 = 0; r0 < nr; r0 += 16) {
        const int rows = static_cast<int>(min64(16, nr - r0));
        const uint8_t* wt = wb + (r0 / 16) * ng * static_cast<int64_t>(D::kBytes);
        int64_t c = 0;
        for (; c + 4 <= nc; c += 4) tail_tile<D, Dot, 4>(ng, wt, ab + c * as, as, rows, y + c * ldy + r0, ldy);
        for (; c < nc; ++c) tail_tile<D, Dot, 1>(ng, wt, ab + c * as, as, rows, y + c * ldy + r0, ldy);
    }
}

// ---- gemm: column blocks x row tiles x k chunks x column tiles -----------------------
constexpr int kQR = 4;  // tile rows
constexpr int kQC = 3;  // tile columns: 2 * 4 * 3 accumulators + operands fit 32 zmm
// Tile rows of the one-column mat-vec (2 * 8 accumulators). Eight rows read
// side by side keep twice the weight streams in flight of four: with 48 MB
// of Q6_K weights at 1 thread, 14.7 -> 22.8 GB/s (Q4_K 17 -> 22.5); 12 rows
// run out of registers.
constexpr int kQR1 = 8;
// Activation bytes per column block: stays in L2 while the row tiles sweep it.
constexpr size_t kQActBlock = 512 * 1024;
// Bytes of a row tile's k chunk (weights + decoded scales): kept in L1 while
// the column tiles of a block go over it. A whole 14336-long row tile (~50
// KiB with its scales) came back from L2 for every column tile: mat-mat at
// k=14336 ran 20-30% below k=4096.
constexpr size_t kQChunkBytes = 12 * 1024;
constexpr int64_t kQTileAcc = kQR * kQC * 16;  // floats of one tile's accumulators

template <class D, class Dot>
struct QGemm {
    using Tile = QTile<D, Dot>;
    using Fn = void (*)(int64_t, int64_t, int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t,
                        const float*, float*, bool, bool, const uint8_t*);
    template <int R>
    static Fn pick(int c) {
        return c == 1 ? Tile::template run_part<R, 1> : c == 2 ? Tile::template run_part<R, 2>
                                                               : Tile::template run_part<R, 3>;
    }
    static Fn tile(int r, int c) {
        return r == 1 ? pick<1>(c) : r == 2 ? pick<2>(c) : r == 3 ? pick<3>(c) : pick<4>(c);
    }

    static void gemm(int64_t k, const void* w, size_t ws, int64_t nr, const void* a, size_t as, int64_t nc, float* y,
                     int64_t ldy) {
        const uint8_t* wb = static_cast<const uint8_t*>(w);
        const uint8_t* ab = static_cast<const uint8_t*>(a);
        // (k / LB + 15) / 16, as packed::groups -- computed here, not called: ISA code
        // calls no inline function of shared headers (one copy of it would be
        // kept at link time, possibly the one built with this folder's flags).
        const int64_t ng = (k / D::LB + packed::kGroup - 1) / packed::kGroup;
        if constexpr (D::kSuper) {
            if (nc >= QRows<D, Dot>::kMinCols) return QRows<D, Dot>::gemm(k, wb, ws, nr, ab, as, nc, y, ldy);
        }
        const int64_t cb = max64(kQC, static_cast<int64_t>(kQActBlock / as) / kQC * kQC);
        if (nc <= kQC) {  // one column tile (mat-vec): nothing to share between tiles
            int64_t r8 = 0;
            if (nc == 1)
                for (; r8 + kQR1 <= nr; r8 += kQR1)
                    Tile::template run_part<kQR1, 1>(ng, 0, ng, wb + r8 * ws, ws, ab, as, y + r8, ldy, nullptr, nullptr,
                                                     true, true, r8 + 2 * kQR1 <= nr ? wb + (r8 + kQR1) * ws : nullptr);
            for (int64_t r0 = r8; r0 < nr; r0 += kQR) {
                const int rr = static_cast<int>(min64(kQR, nr - r0));
                tile(rr, static_cast<int>(nc))(ng, 0, ng, wb + r0 * ws, ws, ab, as, y + r0, ldy, nullptr, nullptr,
                                               true, true, nullptr);
            }
            return;
        }
        // Several column tiles: a row tile's block scales are decoded once
        // (scratch slot 0) and its groups are taken in chunks of gc, each
        // swept by every column tile of the block while it sits in L1; the
        // tiles' accumulators wait in slot 1 between chunks.
        const int64_t gc = max64(1, static_cast<int64_t>(kQChunkBytes / (kQR * (D::kBytes + 128))));
        float* pre = static_cast<float*>(matmul_scratch(0, sizeof(float) * 32 * kQR * ng));
        float* accb = ng > gc ? static_cast<float*>(matmul_scratch(1, sizeof(float) * kQTileAcc * (cb / kQC + 1)))
                              : nullptr;
        for (int64_t c0 = 0; c0 < nc; c0 += cb) {
            const int64_t c1 = min64(nc, c0 + cb);
            for (int64_t r0 = 0; r0 < nr; r0 += kQR) {
                const int rr = static_cast<int>(min64(kQR, nr - r0));
                if (rr == kQR) {
                    Tile::template prescale<kQR>(ng, wb + r0 * ws, ws, pre);
                } else {
                    for (int r = 0; r < rr; ++r) Tile::template prescale<1>(ng, wb + (r0 + r) * ws, ws, pre + r * ng * 32);
                }
                // The next row tile's weights, fetched into L2 a slice per
                // tile call while this row tile computes: its first column
                // tile (and prescale) would otherwise wait on memory for every
                // line, the rows being too long to stay cached between blocks.
                const int64_t calls = ((ng + gc - 1) / gc) * ((c1 - c0 + kQC - 1) / kQC);
                const int64_t nrows = r0 + kQR < nr ? min64(kQR, nr - r0 - kQR) : 0;
                const int64_t next_lines = (static_cast<int64_t>(ws) + 63) / 64;
                const int64_t per_call = (nrows * next_lines + calls - 1) / calls;
                int64_t fetched = 0;
                for (int64_t g0 = 0; g0 < ng; g0 += gc) {
                    const int64_t g1 = min64(ng, g0 + gc);
                    for (int64_t c = c0; c < c1; c += kQC) {
                        const int cc = static_cast<int>(min64(kQC, c1 - c));
                        for (int64_t e = min64(fetched + per_call, nrows * next_lines); fetched < e; ++fetched) {
                            const uint8_t* line = wb + (r0 + kQR + fetched / next_lines) * ws + (fetched % next_lines) * 64;
                            _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T1);
                        }
                        tile(rr, cc)(ng, g0, g1, wb + r0 * ws, ws, ab + c * as, as, y + c * ldy + r0, ldy, pre,
                                     accb ? accb + (c - c0) / kQC * kQTileAcc : nullptr, g0 == 0, g1 == ng, nullptr);
                    }
                }
            }
        }
    }
};

// vec_dot on ggml's rows: packs the weight row and the activation row into
// this thread's scratch (slots 2, 3; the gemm kernels use 0, 1) and runs a
// 1 x 1 tile. For single dot products; the matmul driver packs once per call.
template <class D, class Dot, TypeId kType, void (*kPack)(const void*, int64_t, void*)>
float vec_dot_q(int64_t k, const void* w, const void* a) {
    const int64_t ng = (k / D::LB + packed::kGroup - 1) / packed::kGroup;
    uint8_t* wp = static_cast<uint8_t*>(matmul_scratch(2, static_cast<size_t>(ng) * D::kBytes));
    uint8_t* ap = static_cast<uint8_t*>(matmul_scratch(3, static_cast<size_t>(ng) * QTile<D, Dot>::kAG));
    kPack(w, k, wp);
    packed::pack_act_row(*packed::weight_layout(kType), a, k, ap);
    float y;
    QTile<D, Dot>::template run<1, 1>(ng, wp, 0, ap, 0, &y, 1);
    return y;
}

// Installs the quantized types' entries: gemm over the packed layouts, the
// SIMD packers, vec_dot.
template <class Dot>
void register_quant_kernels(KernelSet& ks) {
    struct Entry {
        TypeId id;
        gemm_fn gemm;
        void (*pack)(const void*, int64_t, void*);  // mm512_pack.h
        vec_dot_fn dot;
    };
    const Entry entries[] = {
        {TypeId::Q4_0, QGemm<DecLegacy<false, false>, Dot>::gemm, pack_legacy_simd<TypeId::Q4_0, sizeof(block_q4_0), 2, -1, -1, 4>,
         vec_dot_q<DecLegacy<false, false>, Dot, TypeId::Q4_0, pack_legacy_simd<TypeId::Q4_0, sizeof(block_q4_0), 2, -1, -1, 4>>},
        {TypeId::Q4_1, QGemm<DecLegacy<true, false>, Dot>::gemm, pack_legacy_simd<TypeId::Q4_1, sizeof(block_q4_1), 4, -1, 2, 4>,
         vec_dot_q<DecLegacy<true, false>, Dot, TypeId::Q4_1, pack_legacy_simd<TypeId::Q4_1, sizeof(block_q4_1), 4, -1, 2, 4>>},
        {TypeId::Q5_0, QGemm<DecLegacy<false, true>, Dot>::gemm, pack_legacy_simd<TypeId::Q5_0, sizeof(block_q5_0), 6, 2, -1, 4>,
         vec_dot_q<DecLegacy<false, true>, Dot, TypeId::Q5_0, pack_legacy_simd<TypeId::Q5_0, sizeof(block_q5_0), 6, 2, -1, 4>>},
        {TypeId::Q5_1, QGemm<DecLegacy<true, true>, Dot>::gemm, pack_legacy_simd<TypeId::Q5_1, sizeof(block_q5_1), 8, 4, 2, 4>,
         vec_dot_q<DecLegacy<true, true>, Dot, TypeId::Q5_1, pack_legacy_simd<TypeId::Q5_1, sizeof(block_q5_1), 8, 4, 2, 4>>},
        {TypeId::Q8_0, QGemm<DecQ8_0, Dot>::gemm, pack_legacy_simd<TypeId::Q8_0, sizeof(block_q8_0), 2, -1, -1, 8>,
         vec_dot_q<DecQ8_0, Dot, TypeId::Q8_0, pack_legacy_simd<TypeId::Q8_0, sizeof(block_q8_0), 2, -1, -1, 8>>},
        {TypeId::Q2_K, QGemm<DecQ2_K, Dot>::gemm, pack_q2_K_simd,
         vec_dot_q<DecQ2_K, Dot, TypeId::Q2_K, pack_q2_K_simd>},
        {TypeId::Q3_K, QGemm<DecQ3_K, Dot>::gemm, pack_q3_K_simd,
         vec_dot_q<DecQ3_K, Dot, TypeId::Q3_K, pack_q3_K_simd>},
        {TypeId::Q4_K, QGemm<DecK45<false>, Dot>::gemm, pack_k45_simd<false>,
         vec_dot_q<DecK45<false>, Dot, TypeId::Q4_K, pack_k45_simd<false>>},
        {TypeId::Q5_K, QGemm<DecK45<true>, Dot>::gemm, pack_k45_simd<true>,
         vec_dot_q<DecK45<true>, Dot, TypeId::Q5_K, pack_k45_simd<true>>},
        {TypeId::Q6_K, QGemm<DecQ6_K, Dot>::gemm, pack_q6_K_simd,
         vec_dot_q<DecQ6_K, Dot, TypeId::Q6_K, pack_q6_K_simd>},
    };
    ks[TypeId::Q4_0].gemm_tail = gemm_tail<DecLegacy<false, false>, Dot>;
    ks[TypeId::Q4_1].gemm_tail = gemm_tail<DecLegacy<true, false>, Dot>;
    ks[TypeId::Q5_0].gemm_tail = gemm_tail<DecLegacy<false, true>, Dot>;
    ks[TypeId::Q5_1].gemm_tail = gemm_tail<DecLegacy<true, true>, Dot>;
    ks[TypeId::Q8_0].gemm_tail = gemm_tail<DecQ8_0, Dot>;
    for (const Entry& e : entries) {
        TypeKernels& k = ks[e.id];
        k.gemm = e.gemm;
        k.pack_row = e.pack;
        k.vec_dot = e.dot;
        k.layout = packed::weight_layout(e.id);
        k.gemm_row_align = kQR1;  // mat-vec tasks in whole 8-row tiles
        // A k-quant mat-mat call streams every activation column once per
        // row block (mm512_qrows.h): unprepared weights are packed in row
        // chunks of a whole block at least (Q6_K at n=512: 204 -> 252
        // GFLOPS; 32-row L2-sized chunks re-read the activations 4x as often).
        if (packed::weight_layout(e.id)->act == TypeId::Q8_K) k.gemm_min_rows = static_cast<int>(kRBlock);
    }
}

}  // namespace
}  // namespace kq::isa_avx512
