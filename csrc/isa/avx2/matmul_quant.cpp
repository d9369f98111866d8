// Quantized matmul kernels on AVX2 over the packed layouts of
// matmul/packed.h: isa/avx512/mm512_quant.h at 8 lanes. A 16-lane group is
// two halves h = 0, 1 of 8 lanes (32 bytes of every 64-byte vector); per half
// and (row, column) of the tile, S = LB/4 dot products (pmaddubsw + pmaddwd),
// then acc += float(S) * (dw * da) (+ mw * sa).
#include "core/kernels.h"
#include "isa/avx2/matmul.h"
#include "isa/avx2/mm256_common.h"
#include "matmul/matmul.h"
#include "matmul/packed.h"

namespace kq::isa_avx2 {
namespace {

// u8 x s8 -> int32 lanes. pmaddubsw cannot overflow: values <= 63 (or
// |w| <= 127 with |a| <= 127 for Q8_0) keep each pair sum under 2^15.
inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
    __m256i r = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
    // Keeps the sum in a register here: integer adds reassociate, and GCC
    // otherwise computes every product of a tile first and adds them in a
    // tree, spilling a dozen ymm values per group with only 16 registers.
    asm("" : "+x"(r));
    return r;
}

inline __m256i nib_lo(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0F)); }
inline __m256i nib_hi(__m256i v) { return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F)); }
inline __m256i or_masked(__m256i a, __m256i b, __m256i m) { return _mm256_or_si256(a, _mm256_and_si256(b, m)); }

// Shift in 16-bit lanes, left (S > 0) or right; callers mask to bits that no
// neighbouring byte reaches.
template <int S>
inline __m256i shift16(__m256i v) {
    if constexpr (S > 0) return _mm256_slli_epi16(v, S);
    else if constexpr (S < 0) return _mm256_srli_epi16(v, -S);
    else return v;
}

// Half h of value vector T of the N (+ H5) layout.
template <int T, bool kQ5>
inline __m256i value_n(const uint8_t* g, int h) {
    const __m256i n = load256(g + 64 * (T & 3) + 32 * h);
    __m256i v = T < 4 ? nib_lo(n) : nib_hi(n);
    if constexpr (kQ5) v = or_masked(v, shift16<4 - T>(load256(g + 256 + 32 * h)), _mm256_set1_epi8(0x10));
    return v;
}

// ---- decoders (layouts and constants: see isa/avx512/mm512_quant.h) -----------
template <bool kMin, bool kQ5>
struct DecLegacy {
    static constexpr int LB = 32;
    static constexpr size_t kD = kQ5 ? 320 : 256;
    static constexpr size_t kBytes = kD + (kMin ? 64 : 32);
    static constexpr int kOffsetShift = kMin ? -1 : (kQ5 ? 4 : 3);
    static constexpr bool kMinTerm = kMin, kSigned = false;
    template <int T>
    static __m256i value(const uint8_t* g, int h) { return value_n<T, kQ5>(g, h); }
    static void scales(const uint8_t* g, int h, __m256& dw, __m256& mw) {
        dw = load_f16x8(g + kD + 16 * h);
        if constexpr (kMin) mw = load_f16x8(g + kD + 32 + 16 * h);
    }
};

struct DecQ8_0 {
    static constexpr int LB = 32;
    static constexpr size_t kBytes = 8 * 64 + 32;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMinTerm = false, kSigned = true;
    template <int T>
    static __m256i value(const uint8_t* g, int h) { return load256(g + 64 * T + 32 * h); }
    static void scales(const uint8_t* g, int h, __m256& dw, __m256&) { dw = load_f16x8(g + 512 + 16 * h); }
};

template <bool kQ5>
struct DecK45 {
    static constexpr int LB = 32;
    static constexpr size_t kSC = kQ5 ? 320 : 256, kMN = kSC + 16, kD = kMN + 16;
    static constexpr size_t kBytes = kD + 8;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMinTerm = true, kSigned = false;
    template <int T>
    static __m256i value(const uint8_t* g, int h) { return value_n<T, kQ5>(g, h); }
    static void scales(const uint8_t* g, int h, __m256& dw, __m256& mw) {
        // half h = the group's super-block h: D[h], DMIN[h]
        dw = _mm256_mul_ps(load_u8x8_ps(g + kSC + 8 * h), bcast_f16(g + kD + 2 * h));
        mw = _mm256_mul_ps(load_u8x8_ps(g + kMN + 8 * h), _mm256_sub_ps(_mm256_setzero_ps(), bcast_f16(g + kD + 4 + 2 * h)));
    }
};

struct DecQ6_K {
    static constexpr int LB = 16;
    static constexpr size_t kBytes = 3 * 64 + 18;
    static constexpr int kOffsetShift = 5;
    static constexpr bool kMinTerm = false, kSigned = false;
    template <int T>
    static __m256i value(const uint8_t* g, int h) {
        const __m256i n = load256(g + 64 * (T & 1) + 32 * h);
        const __m256i lo = T < 2 ? nib_lo(n) : nib_hi(n);
        return or_masked(lo, shift16<4 - 2 * T>(load256(g + 128 + 32 * h)), _mm256_set1_epi8(0x30));
    }
    static void scales(const uint8_t* g, int h, __m256& dw, __m256&) {
        dw = _mm256_mul_ps(load_i8x8_ps(g + 192 + 8 * h), bcast_f16(g + 208));
    }
};

struct DecQ3_K {
    static constexpr int LB = 16;
    static constexpr size_t kBytes = 64 + 32 + 18;
    static constexpr int kOffsetShift = 2;
    static constexpr bool kMinTerm = false, kSigned = false;
    template <int T>
    static __m256i value(const uint8_t* g, int h) {
        const __m256i lo = _mm256_and_si256(shift16<-2 * T>(load256(g + 32 * h)), _mm256_set1_epi8(3));
        __m256i h3 = load256(g + 64);  // half 0: bits 0..3, half 1: bits 4..7
        if (h) h3 = _mm256_srli_epi16(h3, 4);
        return or_masked(lo, shift16<2 - T>(h3), _mm256_set1_epi8(0x04));
    }
    static void scales(const uint8_t* g, int h, __m256& dw, __m256&) {
        dw = _mm256_mul_ps(load_i8x8_ps(g + 96 + 8 * h), bcast_f16(g + 112));
    }
};

struct DecQ2_K {
    static constexpr int LB = 16;
    static constexpr size_t kBytes = 64 + 20;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMinTerm = true, kSigned = false;
    template <int T>
    static __m256i value(const uint8_t* g, int h) {
        return _mm256_and_si256(shift16<-2 * T>(load256(g + 32 * h)), _mm256_set1_epi8(3));
    }
    static void scales(const uint8_t* g, int h, __m256& dw, __m256& mw) {
        const __m256i sc = _mm256_cvtepu8_epi32(load64(g + 64 + 8 * h));
        dw = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(sc, _mm256_set1_epi32(15))), bcast_f16(g + 80));
        mw = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(sc, 4)),
                           _mm256_sub_ps(_mm256_setzero_ps(), bcast_f16(g + 82)));
    }
};

// ---- the R x C tile -------------------------------------------------------------------
template <class D>
struct QTile {
    static constexpr int NV = D::LB / 4;
    static constexpr size_t kAG = packed::act_group_bytes(D::LB);
    static constexpr size_t kDA = packed::act_da_offset(D::LB), kSA = packed::act_sa_offset(D::LB),
                            kSUM = packed::act_sum_offset(D::LB);

    static __m256i dot(__m256i acc, __m256i w, __m256i a) {
        if constexpr (D::kSigned) return dot_u8s8(acc, _mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
        else return dot_u8s8(acc, w, a);
    }

    template <int T, int R, int C>
    [[gnu::always_inline]] static inline void step(__m256i (&S)[R][C], const uint8_t* const (&wg)[R],
                                                   const uint8_t* const (&ag)[C], int h) {
        __m256i av[C];
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) av[c] = load256(ag[c] + 64 * T + 32 * h);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const __m256i w = D::template value<T>(wg[r], h);
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) S[r][c] = dot(S[r][c], w, av[c]);
        }
        if constexpr (T + 1 < NV) step<T + 1, R, C>(S, wg, ag, h);
    }

    // pf: null, or the next row tile, whose group gi is fetched into L2 while
    // this tile computes (see the avx512 folder's mat-vec).
    template <int R, int C>
    static void run(int64_t ng, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ldy,
                    const uint8_t* pf = nullptr) {
        __m256 acc[R][C];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
        for (int64_t gi = 0; gi < ng; ++gi) {
            const uint8_t* wg[R];
            const uint8_t* ag[C];
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) wg[r] = w + r * ws + gi * D::kBytes;
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) ag[c] = a + c * as + gi * kAG;
            if (pf)
                for (int r = 0; r < R; ++r)
                    for (size_t o = 0; o < D::kBytes; o += 64)
                        _mm_prefetch(reinterpret_cast<const char*>(pf + r * ws + gi * D::kBytes + o), _MM_HINT_T1);
#pragma GCC unroll 2
            for (int h = 0; h < 2; ++h) {  // unrolled: decoders branch on h (Q3_K)
                __m256i S[R][C];
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    __m256i init = _mm256_setzero_si256();
                    if constexpr (D::kOffsetShift >= 0)
                        init = _mm256_sub_epi32(init, _mm256_slli_epi32(load256(ag[c] + kSUM + 32 * h), D::kOffsetShift));
#pragma GCC unroll 8
                    for (int r = 0; r < R; ++r) S[r][c] = init;
                }
                step<0, R, C>(S, wg, ag, h);
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) {
                    __m256 dw, mw = _mm256_setzero_ps();
                    D::scales(wg[r], h, dw, mw);
#pragma GCC unroll 8
                    for (int c = 0; c < C; ++c) {
                        const __m256 scale = _mm256_mul_ps(dw, loadf256(ag[c] + kDA + 32 * h));
                        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[r][c]), scale, acc[r][c]);
                        if constexpr (D::kMinTerm)
                            acc[r][c] = _mm256_fmadd_ps(mw, loadf256(ag[c] + kSA + 32 * h), acc[r][c]);
                    }
                }
            }
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c)
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) y[c * ldy + r] = hsum(acc[r][c]);
    }
};

constexpr int kQR = 2, kQC = 2;  // 2 x 2 x 2 accumulators + operands in 16 ymm
// One column: 4-row tiles (2 x 4 accumulators), each prefetching the next.
constexpr int kQR1 = 4;
constexpr size_t kQActBlock = 512 * 1024;

template <class D>
void gemm_q(int64_t k, const void* w, size_t ws, int64_t nr, const void* a, size_t as, int64_t nc, float* y,
            int64_t ldy) {
    using Tile = QTile<D>;
    using Fn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t, const uint8_t*);
    static constexpr Fn kTiles[2][2] = {{Tile::template run<1, 1>, Tile::template run<1, 2>},
                                        {Tile::template run<2, 1>, Tile::template run<2, 2>}};
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    // (k / LB + 15) / 16, as packed::groups -- computed here, not called: ISA code
    // calls no inline function of shared headers (one copy of it would be
    // kept at link time, possibly the one built with this folder's flags).
    const int64_t ng = (k / D::LB + packed::kGroup - 1) / packed::kGroup;
    if (nc == 1) {
        int64_t r0 = 0;
        for (; r0 + kQR1 <= nr; r0 += kQR1)
            Tile::template run<kQR1, 1>(ng, wb + r0 * ws, ws, ab, as, y + r0, ldy,
                                        r0 + 2 * kQR1 <= nr ? wb + (r0 + kQR1) * ws : nullptr);
        for (; r0 < nr; ++r0) Tile::template run<1, 1>(ng, wb + r0 * ws, ws, ab, as, y + r0, ldy, nullptr);
        return;
    }
    const int64_t cb = max64(kQC, static_cast<int64_t>(kQActBlock / as) / kQC * kQC);
    for (int64_t c0 = 0; c0 < nc; c0 += cb) {
        const int64_t c1 = min64(nc, c0 + cb);
        for (int64_t r0 = 0; r0 < nr; r0 += kQR) {
            const int rr = static_cast<int>(min64(kQR, nr - r0));
            for (int64_t c = c0; c < c1; c += kQC) {
                const int cc = static_cast<int>(min64(kQC, c1 - c));
                kTiles[rr - 1][cc - 1](ng, wb + r0 * ws, ws, ab + c * as, as, y + c * ldy + r0, ldy, nullptr);
            }
        }
    }
}

// vec_dot on ggml's rows: packs the weight row and the activation row into
// this thread's scratch (slots 2, 3; the gemm kernels use 0, 1) and runs a
// 1 x 1 tile. For single dot products; the matmul driver packs once per call.
template <class D, TypeId kType>
float vec_dot_q(int64_t k, const void* w, const void* a) {
    const packed::WeightLayout& L = *packed::weight_layout(kType);
    const int64_t ng = (k / D::LB + packed::kGroup - 1) / packed::kGroup;
    uint8_t* wp = static_cast<uint8_t*>(matmul_scratch(2, static_cast<size_t>(ng) * D::kBytes));
    uint8_t* ap = static_cast<uint8_t*>(matmul_scratch(3, static_cast<size_t>(ng) * QTile<D>::kAG));
    L.pack_row(w, k, wp);
    packed::pack_act_row(L, a, k, ap);
    float y;
    QTile<D>::template run<1, 1>(ng, wp, 0, ap, 0, &y, 1);
    return y;
}

}  // namespace

void register_matmul_quant(KernelSet& ks) {
    struct Entry {
        TypeId id;
        gemm_fn gemm;
        vec_dot_fn dot;
    };
    const Entry entries[] = {
        {TypeId::Q4_0, gemm_q<DecLegacy<false, false>>, vec_dot_q<DecLegacy<false, false>, TypeId::Q4_0>},
        {TypeId::Q4_1, gemm_q<DecLegacy<true, false>>, vec_dot_q<DecLegacy<true, false>, TypeId::Q4_1>},
        {TypeId::Q5_0, gemm_q<DecLegacy<false, true>>, vec_dot_q<DecLegacy<false, true>, TypeId::Q5_0>},
        {TypeId::Q5_1, gemm_q<DecLegacy<true, true>>, vec_dot_q<DecLegacy<true, true>, TypeId::Q5_1>},
        {TypeId::Q8_0, gemm_q<DecQ8_0>, vec_dot_q<DecQ8_0, TypeId::Q8_0>},
        {TypeId::Q2_K, gemm_q<DecQ2_K>, vec_dot_q<DecQ2_K, TypeId::Q2_K>},
        {TypeId::Q3_K, gemm_q<DecQ3_K>, vec_dot_q<DecQ3_K, TypeId::Q3_K>},
        {TypeId::Q4_K, gemm_q<DecK45<false>>, vec_dot_q<DecK45<false>, TypeId::Q4_K>},
        {TypeId::Q5_K, gemm_q<DecK45<true>>, vec_dot_q<DecK45<true>, TypeId::Q5_K>},
        {TypeId::Q6_K, gemm_q<DecQ6_K>, vec_dot_q<DecQ6_K, TypeId::Q6_K>},
    };
    for (const Entry& e : entries) {
        TypeKernels& k = ks[e.id];
        k.gemm = e.gemm;
        k.vec_dot = e.dot;
        k.layout = packed::weight_layout(e.id);
        k.gemm_row_align = kQR1;  // mat-vec tasks in whole 4-row tiles
    }
}

}  // namespace kq::isa_avx2
