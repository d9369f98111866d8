// F32 / F16 / BF16 matmul kernels on AVX-512 (F/BW/VL), as templates.
//
// Included by csrc/isa/avx512/matmul_float.cpp and by the avx512vnni folder
// (which adds a BF16 kernel on vdpbf16ps). Everything is in an unnamed
// namespace: each including translation unit gets its own copy, compiled with
// its own folder's flags, so no inline function is shared (and merged by the
// linker) between two ISA builds.
//
// Two kernels:
//  * gemv (nc <= kGemvMaxCols activation columns): R weight rows x C columns
//    of dot products, 16 k per step, converting each weight vector once and
//    reusing it for the C columns. Memory bound; tails use masked loads.
//  * packed gemm (more columns): the classic outer-product micro-kernel. A
//    panel of kMR = 32 weight rows x kKC k is transposed into f32 [k][32]
//    (two zmm per k); per k the kernel broadcasts one activation per column
//    and does 2 FMAs per column, for kNR = 12 columns: 24 accumulators, and
//    14 loads per 24 FMAs, so it runs at the FMA rate out of L1.
#pragma once
#include "isa/avx512/mm512_common.h"
#include "matmul/matmul.h"

namespace kq::isa_avx512 {
namespace {

// ---- element formats: 16 values as f32 ---------------------------------------
struct EF32 {
    using T = float;
    static constexpr bool kIsF32 = true;
    static __m512 load(const T* p) { return _mm512_loadu_ps(p); }
    static __m512 load(const T* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
};
struct EF16 {
    using T = uint16_t;
    static constexpr bool kIsF32 = false;
    static __m512 load(const T* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
    static __m512 load(const T* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
};
// bf16 is the top half of an f32: widen to 32 bits and shift left by 16.
struct EBF16 {
    using T = uint16_t;
    static constexpr bool kIsF32 = false;
    static __m512 load(const T* p) {
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
    }
    static __m512 load(const T* p, __mmask16 m) {
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
    }
};


// ---- gemv ------------------------------------------------------------------
constexpr int kGemvRows = 4;     // weight rows per tile (shares activation loads)
constexpr int kGemvMaxCols = 4;  // columns per tile; more go to the packed kernel

// pf: null, or the next tile's first row: its rows are fetched into L2 a
// step at a time while this tile computes (more weight streams in flight
// than the hardware prefetcher keeps on its own).
template <class W, class A, int R, int C>
void gemv_tile(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ldy,
               const uint8_t* pf = nullptr) {
    const typename W::T* wr[R];
    const typename A::T* ac[C];
    for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const typename W::T*>(w + r * ws);
    for (int c = 0; c < C; ++c) ac[c] = reinterpret_cast<const typename A::T*>(a + c * as);
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        if (pf)
            for (int r = 0; r < R; ++r)
                _mm_prefetch(reinterpret_cast<const char*>(pf + r * ws + i * sizeof(typename W::T)), _MM_HINT_T1);
        __m512 av[C];
        for (int c = 0; c < C; ++c) av[c] = A::load(ac[c] + i);
        for (int r = 0; r < R; ++r) {
            const __m512 wv = W::load(wr[r] + i);
            for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(wv, av[c], acc[r][c]);
        }
    }
    if (i < k) {
        const __mmask16 m = low_mask16(k - i);
        __m512 av[C];
        for (int c = 0; c < C; ++c) av[c] = A::load(ac[c] + i, m);
        for (int r = 0; r < R; ++r) {
            const __m512 wv = W::load(wr[r] + i, m);
            for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(wv, av[c], acc[r][c]);
        }
    }
    for (int c = 0; c < C; ++c)
        for (int r = 0; r < R; ++r) y[c * ldy + r] = _mm512_reduce_add_ps(acc[r][c]);
}

template <class W, class A>
struct Gemv {
    using Fn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t, const uint8_t*);
    template <int R>
    static constexpr Fn pick(int c) {
        return c == 1 ? gemv_tile<W, A, R, 1> : c == 2 ? gemv_tile<W, A, R, 2> : c == 3 ? gemv_tile<W, A, R, 3>
                                                                                       : gemv_tile<W, A, R, 4>;
    }
    static void run(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc,
                    float* y, int64_t ldy) {
        for (int64_t c0 = 0; c0 < nc; c0 += kGemvMaxCols) {
            const int cc = static_cast<int>(min64(kGemvMaxCols, nc - c0));
            int64_t r0 = 0;
            if (cc == 1)
                for (; r0 + kGemvRows <= nr; r0 += kGemvRows)
                    gemv_tile<W, A, kGemvRows, 1>(k, w + r0 * ws, ws, a + c0 * as, as, y + c0 * ldy + r0, ldy,
                                                  r0 + 2 * kGemvRows <= nr ? w + (r0 + kGemvRows) * ws : nullptr);
            for (; r0 + kGemvRows <= nr; r0 += kGemvRows)
                pick<kGemvRows>(cc)(k, w + r0 * ws, ws, a + c0 * as, as, y + c0 * ldy + r0, ldy, nullptr);
            for (; r0 < nr; ++r0) pick<1>(cc)(k, w + r0 * ws, ws, a + c0 * as, as, y + c0 * ldy + r0, ldy, nullptr);
        }
    }
};

// ---- packed gemm -------------------------------------------------------------
constexpr int kMR = 32;   // panel rows: two zmm of 16
constexpr int kNR = 12;   // columns per micro-tile: 2 x 12 = 24 accumulators of 32
constexpr int kKC = 256;  // k per panel: the 32 KiB f32 panel stays in L1

// In-register transpose of a 16x16 block of 32-bit elements (rows -> columns).
inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; ++i) {  // interleave 32-bit lanes of row pairs
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {  // interleave 64-bit pairs of row quads
        for (int h = 0; h < 2; ++h) {
            const __m512d a = _mm512_castps_pd(t[4 * i + h]), b = _mm512_castps_pd(t[4 * i + 2 + h]);
            r[4 * i + h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            r[4 * i + 2 + h] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    }
    // Now r[4i + j] holds, in each 128-bit lane L, elements (4i..4i+3, 4L + j').
    // Two 128-bit shuffles gather lane L of the four quads.
    for (int j = 0; j < 4; ++j) {
        const __m512 a0 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);       // lanes 0,2 of r[j], r[4+j]
        const __m512 a1 = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);       // lanes 1,3
        const __m512 b0 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        const __m512 b1 = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
        t[j] = _mm512_shuffle_f32x4(a0, b0, 0x88);       // lane 0
        t[8 + j] = _mm512_shuffle_f32x4(a0, b0, 0xDD);   // lane 2
        t[4 + j] = _mm512_shuffle_f32x4(a1, b1, 0x88);   // lane 1
        t[12 + j] = _mm512_shuffle_f32x4(a1, b1, 0xDD);  // lane 3
    }
    // t[4L + j'] now holds column 4L + j''; fix the order within each quad.
    static constexpr int kOrder[4] = {0, 2, 1, 3};
    for (int L = 0; L < 4; ++L)
        for (int j = 0; j < 4; ++j) r[4 * L + j] = t[4 * L + kOrder[j]];
}

// Pack rows [0, rows) x k [k0, k0 + kc) of W into p[kk * 32 + r] (f32),
// zero-filling rows >= rows.
template <class W>
void pack_panel(const uint8_t* w, size_t ws, int rows, int64_t k0, int kc, float* p) {
    for (int h = 0; h < 2; ++h) {
        for (int kk = 0; kk < kc; kk += 16) {
            const __mmask16 m = low_mask16(kc - kk);
            __m512 r[16];
            for (int i = 0; i < 16; ++i) {
                const int row = 16 * h + i;
                r[i] = row < rows ? W::load(reinterpret_cast<const typename W::T*>(w + row * ws) + k0 + kk, m)
                                  : _mm512_setzero_ps();
            }
            transpose16(r);
            const int n = static_cast<int>(min64(16, kc - kk));
            for (int i = 0; i < n; ++i) _mm512_store_ps(p + (kk + i) * kMR + 16 * h, r[i]);
        }
    }
}

// What the next micro-tile call will read, fetched into L1 a line per step
// while this one computes: its kNR activation columns (1 << lines_log2
// 64-byte lines each, xs bytes apart: 96 lines for the vdpbf16ps kernel's
// 512 B columns of bf16 pairs), then, when it adds to y, its 2 lines per
// column of y. Without it each call starts on activation lines that are in
// L2 only and on y lines (8 MiB at n=512, m=4096) that are in L3: measured
// 160 -> 181 GFLOPS for BF16 at m=4096, k=14336, n=512, 1 thread. The f32
// kernel does without (NoPrefetch): with it, 98.6 -> 92.8 GFLOPS (its 32 KiB
// panel fills L1), and with the y lines alone no gain outside the noise.
struct NextTile {
    const char* x;   // first activation column of the next call
    int64_t xs;      // bytes between its columns
    int lines_log2;  // log2 of the 64-byte lines per column
    const float* y;  // the next call's y tile, or null when it starts from zero
    int64_t ldy;

    // Always inlined: GCC 12's mod/ref analysis finds that a function whose
    // only effect is a prefetch writes no memory, and deletes the calls to it
    // that are not inlined first (no prefetch was left in the kernels).
    [[gnu::always_inline]] void at(int s) const {
        const int nx = kNR << lines_log2;
        if (s < nx) {
            _mm_prefetch(x + (s >> lines_log2) * xs + (static_cast<int64_t>(s & ((1 << lines_log2) - 1)) << 6),
                         _MM_HINT_T0);
        } else if (y && s < nx + 2 * kNR) {
            const int j = s - nx;  // column j / 2, rows [0, 16) or [16, 32)
            _mm_prefetch(reinterpret_cast<const char*>(y + (j >> 1) * ldy + (j & 1) * 16), _MM_HINT_T0);
        }
    }
};

struct NoPrefetch {
    void at(int) const {}
};

// The 32-row x NC-column micro-tile around a kernel's inner loop: the
// accumulators start from y (add) or zero, step(s, a0, a1) runs for s in
// [0, steps) after next.at(s), and rows [0, 16) / [16, 32) are stored under
// masks m0 / m1. Shared by the f32 kernel below and the vdpbf16ps one
// (avx512vnni folder).
template <int NC, class Step, class Next = NoPrefetch>
[[gnu::always_inline]] inline void micro_tile(int steps, float* y, int64_t ldy, bool add, __mmask16 m0, __mmask16 m1,
                                              Step step, const Next& next = {}) {
    __m512 a0[NC], a1[NC];
    for (int c = 0; c < NC; ++c) {
        a0[c] = add ? _mm512_maskz_loadu_ps(m0, y + c * ldy) : _mm512_setzero_ps();
        a1[c] = add ? _mm512_maskz_loadu_ps(m1, y + c * ldy + 16) : _mm512_setzero_ps();
    }
    for (int s = 0; s < steps; ++s) {
        next.at(s);
        step(s, a0, a1);
    }
    for (int c = 0; c < NC; ++c) {
        _mm512_mask_storeu_ps(y + c * ldy, m0, a0[c]);
        _mm512_mask_storeu_ps(y + c * ldy + 16, m1, a1[c]);
    }
}

// The NextTile of the call for columns [c0, c0 + kNR) of the row panel at
// y0 (columns xs bytes apart from x0, y from y0 with stride ldy): the next
// column tile, or after the last one, the first tile (of the next panel).
inline NextTile next_tile(const void* x0, int64_t xs, int lines_log2, float* y0, int64_t ldy, int64_t c0,
                          int64_t nc, bool add) {
    const int64_t cn = c0 + kNR < nc ? c0 + kNR : 0;
    return {static_cast<const char*>(x0) + cn * xs, xs, lines_log2, add && cn > 0 ? y0 + cn * ldy : nullptr, ldy};
}

// acc[c] (+)= panel x columns; columns are f32 rows x + c * xs.
template <int NC>
void micro(int kc, const float* p, const float* x, int64_t xs, float* y, int64_t ldy, bool add, __mmask16 m0,
           __mmask16 m1) {
    micro_tile<NC>(kc, y, ldy, add, m0, m1, [&](int kk, __m512 (&a0)[NC], __m512 (&a1)[NC]) {
        const __m512 w0 = _mm512_load_ps(p + kk * kMR), w1 = _mm512_load_ps(p + kk * kMR + 16);
        for (int c = 0; c < NC; ++c) {
            const __m512 b = _mm512_set1_ps(x[c * xs + kk]);
            a0[c] = _mm512_fmadd_ps(w0, b, a0[c]);
            a1[c] = _mm512_fmadd_ps(w1, b, a1[c]);
        }
    });
}

using MicroFn = void (*)(int, const float*, const float*, int64_t, float*, int64_t, bool, __mmask16, __mmask16);
constexpr MicroFn kMicro[kNR + 1] = {nullptr,   micro<1>, micro<2>, micro<3>,  micro<4>,  micro<5>, micro<6>,
                                     micro<7>,  micro<8>, micro<9>, micro<10>, micro<11>, micro<12>};

// Activations in format A -> f32 rows xp[c * kKC + kk] for k [k0, k0 + kc).
template <class A>
void widen_acts(const uint8_t* a, size_t as, int64_t nc, int64_t k0, int kc, float* xp) {
    for (int64_t c = 0; c < nc; ++c) {
        const typename A::T* src = reinterpret_cast<const typename A::T*>(a + c * as) + k0;
        for (int kk = 0; kk < kc; kk += 16)
            _mm512_storeu_ps(xp + c * kKC + kk, A::load(src + kk, low_mask16(kc - kk)));
    }
}

template <class W, class A>
void gemm_packed(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc,
                 float* y, int64_t ldy) {
    float* panel = static_cast<float*>(matmul_scratch(0, sizeof(float) * kMR * kKC));
    // Activations are copied (and widened to f32) per k panel even for F32:
    // rows of a large power-of-two stride would alias in L1.
    float* xp = static_cast<float*>(matmul_scratch(1, sizeof(float) * kKC * nc));
    for (int64_t k0 = 0; k0 < k; k0 += kKC) {
        const int kc = static_cast<int>(min64(kKC, k - k0));
        widen_acts<A>(a, as, nc, k0, kc, xp);
        const float* x = xp;
        const int64_t xs = kKC;
        for (int64_t r0 = 0; r0 < nr; r0 += kMR) {
            const int rows = static_cast<int>(min64(kMR, nr - r0));
            pack_panel<W>(w + r0 * ws, ws, rows, k0, kc, panel);
            const __mmask16 m0 = low_mask16(rows), m1 = low_mask16(rows - 16);
            for (int64_t c0 = 0; c0 < nc; c0 += kNR) {
                const int cols = static_cast<int>(min64(kNR, nc - c0));
                kMicro[cols](kc, panel, x + c0 * xs, xs, y + c0 * ldy + r0, ldy, k0 > 0, m0, m1);
            }
        }
    }
}

// The gemm_fn entry: gemv for few columns, the packed kernel otherwise.
template <class W, class A>
void gemm_float(int64_t k, const void* w, size_t ws, int64_t nr, const void* a, size_t as, int64_t nc, float* y,
                int64_t ldy) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    if (nc <= kGemvMaxCols)
        Gemv<W, A>::run(k, wb, ws, nr, ab, as, nc, y, ldy);
    else
        gemm_packed<W, A>(k, wb, ws, nr, ab, as, nc, y, ldy);
}

template <class W, class A>
float vec_dot_float(int64_t k, const void* w, const void* a) {
    float y;
    gemv_tile<W, A, 1, 1>(k, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, &y, 1);
    return y;
}

}  // namespace
}  // namespace kq::isa_avx512

