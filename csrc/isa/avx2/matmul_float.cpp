// F32 / F16 / BF16 matmul kernels on AVX2 + FMA + F16C: the design of
// isa/avx512/mm512_float.h at 8 lanes and 16 registers.
//  * gemv (nc <= 4): R = 4 rows x C <= 2 columns of dot products, 8 k a step.
//  * packed gemm: panels of kMR = 16 rows x kKC k transposed to f32 [k][16];
//    the micro-kernel broadcasts one activation per column for kNR = 6
//    columns: 12 accumulators + 2 weight vectors + 1 broadcast = 15 ymm.
#include <algorithm>

#include "isa/avx2/matmul.h"
#include "isa/avx2/mm256_common.h"
#include "matmul/matmul.h"

namespace kq::isa_avx2 {
namespace {

// ---- element formats: 8 values as f32; n < 8 loads a zero-padded tail -------
struct EF32 {
    using T = float;
    static __m256 load(const T* p) { return _mm256_loadu_ps(p); }
};
struct EF16 {
    using T = uint16_t;
    static __m256 load(const T* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
};
struct EBF16 {  // bf16 is the top half of an f32
    using T = uint16_t;
    static __m256 load(const T* p) {
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
    }
};
template <class E>
__m256 load_tail(const typename E::T* p, int64_t n) {
    typename E::T buf[8] = {};
    for (int64_t i = 0; i < n; ++i) buf[i] = p[i];
    return E::load(buf);
}

// ---- gemv ----------------------------------------------------------------------
constexpr int kGemvRows = 4, kGemvCols = 2, kGemvMaxCols = 4;

// pf: null, or the next tile's first row, fetched into L2 a step (every
// other step for 16-bit rows: 64 bytes per row) at a time while this tile
// computes, as in the avx512 folder.
template <class W, class A, int R, int C>
void gemv_tile(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ldy,
               const uint8_t* pf = nullptr) {
    const typename W::T* wr[R];
    const typename A::T* ac[C];
    for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const typename W::T*>(w + r * ws);
    for (int c = 0; c < C; ++c) ac[c] = reinterpret_cast<const typename A::T*>(a + c * as);
    __m256 acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        if (pf && (i * sizeof(typename W::T)) % 64 == 0)
            for (int r = 0; r < R; ++r)
                _mm_prefetch(reinterpret_cast<const char*>(pf + r * ws + i * sizeof(typename W::T)), _MM_HINT_T1);
        __m256 av[C];
        for (int c = 0; c < C; ++c) av[c] = A::load(ac[c] + i);
        for (int r = 0; r < R; ++r) {
            const __m256 wv = W::load(wr[r] + i);
            for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv, av[c], acc[r][c]);
        }
    }
    if (i < k) {
        __m256 av[C];
        for (int c = 0; c < C; ++c) av[c] = load_tail<A>(ac[c] + i, k - i);
        for (int r = 0; r < R; ++r) {
            const __m256 wv = load_tail<W>(wr[r] + i, k - i);
            for (int c = 0; c < C; ++c) acc[r][c] = _mm256_fmadd_ps(wv, av[c], acc[r][c]);
        }
    }
    for (int c = 0; c < C; ++c)
        for (int r = 0; r < R; ++r) y[c * ldy + r] = hsum(acc[r][c]);
}

template <class W, class A>
void gemv(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc, float* y,
          int64_t ldy) {
    for (int64_t c0 = 0; c0 < nc; c0 += kGemvCols) {
        const bool two = nc - c0 >= 2;
        int64_t r0 = 0;
        for (; r0 + kGemvRows <= nr; r0 += kGemvRows) {
            const uint8_t* pf = !two && r0 + 2 * kGemvRows <= nr ? w + (r0 + kGemvRows) * ws : nullptr;
            (two ? gemv_tile<W, A, kGemvRows, 2> : gemv_tile<W, A, kGemvRows, 1>)(k, w + r0 * ws, ws, a + c0 * as, as,
                                                                                 y + c0 * ldy + r0, ldy, pf);
        }
        for (; r0 < nr; ++r0)
            (two ? gemv_tile<W, A, 1, 2> : gemv_tile<W, A, 1, 1>)(k, w + r0 * ws, ws, a + c0 * as, as,
                                                                   y + c0 * ldy + r0, ldy, nullptr);
    }
}

// ---- packed gemm -------------------------------------------------------------------
constexpr int kMR = 16, kNR = 6, kKC = 256;

// In-register transpose of an 8x8 block of 32-bit elements.
inline void transpose8(__m256 r[8]) {
    __m256 t[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // t[0]=(r0,r1) lo, t[1]=(r0,r1) hi, t[2]=(r2,r3) lo, ...
    __m256 u[8];
    for (int i = 0; i < 2; ++i) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);      // col 0 (+4)
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);      // col 1
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);  // col 2
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);  // col 3
    }
    // u[j] holds rows 0..3 of columns j and j+4; u[4+j] rows 4..7.
    for (int j = 0; j < 4; ++j) {
        r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

template <class W>
void pack_panel(const uint8_t* w, size_t ws, int rows, int64_t k0, int kc, float* p) {
    for (int h = 0; h < kMR / 8; ++h) {
        for (int kk = 0; kk < kc; kk += 8) {
            const int n = static_cast<int>(min64(8, kc - kk));
            __m256 r[8];
            for (int i = 0; i < 8; ++i) {
                const int row = 8 * h + i;
                const typename W::T* src = reinterpret_cast<const typename W::T*>(w + row * ws) + k0 + kk;
                r[i] = row >= rows ? _mm256_setzero_ps() : n == 8 ? W::load(src) : load_tail<W>(src, n);
            }
            transpose8(r);
            for (int i = 0; i < n; ++i) _mm256_store_ps(p + (kk + i) * kMR + 8 * h, r[i]);
        }
    }
}

// Lanes [0, n) of a 32-bit mask vector (vmaskmovps reads each lane's top bit).
inline __m256i lane_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// 16 rows x 6 columns: y (+)= panel x columns x + c * xs, for the first
// `rows` rows and `cols` columns (the others are computed on zero weights or
// on the zero padding after the last activation column, and not stored).
// The twelve accumulators are named variables: kept as arrays indexed by
// column, GCC 12 leaves them in memory with 16 ymm registers and stores ten
// or more of them on every k step (50 GFLOPS against ~100 at n=512, Zen 4).
void micro(int kc, const float* p, const float* x, int64_t xs, float* y, int64_t ldy, bool add, int rows, int cols) {
    // The y lines the epilogue adds to (64 bytes a column, two lines when
    // unaligned): requested now, they arrive while the k loop runs instead of
    // stalling the end of each call (y is 8 MiB at n = 512, m = 4096).
    if (add)
        for (int c = 0; c < cols; ++c) {
            _mm_prefetch(reinterpret_cast<const char*>(y + c * ldy), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(y + c * ldy + kMR - 1), _MM_HINT_T0);
        }
    const float *x0 = x, *x1 = x + xs, *x2 = x + 2 * xs, *x3 = x + 3 * xs, *x4 = x + 4 * xs, *x5 = x + 5 * xs;
    __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0, a4 = a0,
           b4 = a0, a5 = a0, b5 = a0;
    for (int kk = 0; kk < kc; ++kk) {
        const __m256 w0 = _mm256_load_ps(p + kk * kMR), w1 = _mm256_load_ps(p + kk * kMR + 8);
        // Column c: rows 0-7 into a<c>, rows 8-15 into b<c>.
        const auto col = [&](const float* xc, __m256& lo, __m256& hi) {
            const __m256 v = _mm256_broadcast_ss(xc + kk);
            lo = _mm256_fmadd_ps(w0, v, lo);
            hi = _mm256_fmadd_ps(w1, v, hi);
        };
        col(x0, a0, b0);
        col(x1, a1, b1);
        col(x2, a2, b2);
        col(x3, a3, b3);
        col(x4, a4, b4);
        col(x5, a5, b5);
    }
    const __m256 acc[2 * kNR] = {a0, b0, a1, b1, a2, b2, a3, b3, a4, b4, a5, b5};
    const __m256i m0 = lane_mask(rows), m1 = lane_mask(rows - 8);
    for (int c = 0; c < cols; ++c) {
        float* out = y + c * ldy;
        __m256 lo = acc[2 * c], hi = acc[2 * c + 1];
        if (add) {
            lo = _mm256_add_ps(lo, _mm256_maskload_ps(out, m0));
            hi = _mm256_add_ps(hi, _mm256_maskload_ps(out + 8, m1));
        }
        _mm256_maskstore_ps(out, m0, lo);
        _mm256_maskstore_ps(out + 8, m1, hi);
    }
}

template <class A>
void widen_acts(const uint8_t* a, size_t as, int64_t nc, int64_t k0, int kc, float* xp) {
    for (int64_t c = 0; c < nc; ++c) {
        const typename A::T* src = reinterpret_cast<const typename A::T*>(a + c * as) + k0;
        for (int kk = 0; kk < kc; kk += 8) {
            const int n = static_cast<int>(min64(8, kc - kk));
            _mm256_storeu_ps(xp + c * kKC + kk, n == 8 ? A::load(src + kk) : load_tail<A>(src + kk, n));
        }
    }
}

template <class W, class A>
void gemm_packed(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc,
                 float* y, int64_t ldy) {
    float* panel = static_cast<float*>(matmul_scratch(0, sizeof(float) * kMR * kKC));
    // Activations are copied per k panel (widened to f32): rows of a large
    // power-of-two stride would alias in L1. kNR - 1 zero columns after the
    // last one feed a partial last tile.
    float* xp = static_cast<float*>(matmul_scratch(1, sizeof(float) * (kKC * (nc + kNR - 1) + 8)));
    std::fill(xp + kKC * nc, xp + kKC * (nc + kNR - 1), 0.0f);
    for (int64_t k0 = 0; k0 < k; k0 += kKC) {
        const int kc = static_cast<int>(min64(kKC, k - k0));
        widen_acts<A>(a, as, nc, k0, kc, xp);
        for (int64_t r0 = 0; r0 < nr; r0 += kMR) {
            const int rows = static_cast<int>(min64(kMR, nr - r0));
            pack_panel<W>(w + r0 * ws, ws, rows, k0, kc, panel);
            for (int64_t c0 = 0; c0 < nc; c0 += kNR) {
                const int cols = static_cast<int>(min64(kNR, nc - c0));
                micro(kc, panel, xp + c0 * kKC, kKC, y + c0 * ldy + r0, ldy, k0 > 0, rows, cols);
            }
        }
    }
}

template <class W, class A>
void gemm_float(int64_t k, const void* w, size_t ws, int64_t nr, const void* a, size_t as, int64_t nc, float* y,
                int64_t ldy) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    if (nc <= kGemvMaxCols)
        gemv<W, A>(k, wb, ws, nr, ab, as, nc, y, ldy);
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

void register_matmul_float(KernelSet& ks) {
    struct Entry {
        TypeId id;
        vec_dot_fn dot;
        gemm_fn gemm;
    };
    const Entry entries[] = {
        {TypeId::F32, vec_dot_float<EF32, EF32>, gemm_float<EF32, EF32>},
        {TypeId::F16, vec_dot_float<EF16, EF16>, gemm_float<EF16, EF16>},
        {TypeId::BF16, vec_dot_float<EBF16, EBF16>, gemm_float<EBF16, EBF16>},
    };
    for (const Entry& e : entries) {
        TypeKernels& k = ks[e.id];
        k.vec_dot = e.dot;
        k.gemm = e.gemm;
        k.gemm_row_align = kMR;
        k.gemm_min_rows = 16 * kMR;  // 16 panels share each widened activation panel
    }
}

}  // namespace kq::isa_avx2
