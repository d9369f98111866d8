// F32 / F16 / BF16 matmul kernels on AArch64 NEON: the design of
// isa/avx512/mm512_float.h at 4 lanes and 32 registers.
//  * gemv (nc <= 4): R = 4 rows x C <= 2 columns of dot products, 4 k a step.
//  * packed gemm: panels of kMR = 8 rows x kKC k as f32 [k][8]; the
//    micro-kernel multiplies them by kNR = 8 columns, one activation
//    broadcast per column: 16 accumulators.
#include <arm_neon.h>

#include "isa/neon/matmul.h"
#include "matmul/matmul.h"

namespace kq::isa_neon {
namespace {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

struct EF32 {
    using T = float;
    static float32x4_t load(const T* p) { return vld1q_f32(p); }
    static float one(T v) { return v; }
};
struct EF16 {
    using T = uint16_t;
    static float32x4_t load(const T* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
    static float one(T v) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(v))), 0); }
};
struct EBF16 {  // bf16 is the top half of an f32
    using T = uint16_t;
    static float32x4_t load(const T* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
    static float one(T v) {
        const uint32_t u = static_cast<uint32_t>(v) << 16;
        float f;
        __builtin_memcpy(&f, &u, 4);
        return f;
    }
};

// ---- gemv ----------------------------------------------------------------------
constexpr int kGemvRows = 4, kGemvCols = 2, kGemvMaxCols = 4;

template <class W, class A, int R, int C>
void gemv_tile(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ldy) {
    const typename W::T* wr[R];
    const typename A::T* ac[C];
    for (int r = 0; r < R; ++r) wr[r] = reinterpret_cast<const typename W::T*>(w + r * ws);
    for (int c = 0; c < C; ++c) ac[c] = reinterpret_cast<const typename A::T*>(a + c * as);
    float32x4_t acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = vdupq_n_f32(0.0f);
    int64_t i = 0;
    for (; i + 4 <= k; i += 4) {
        float32x4_t av[C];
        for (int c = 0; c < C; ++c) av[c] = A::load(ac[c] + i);
        for (int r = 0; r < R; ++r) {
            const float32x4_t wv = W::load(wr[r] + i);
            for (int c = 0; c < C; ++c) acc[r][c] = vfmaq_f32(acc[r][c], wv, av[c]);
        }
    }
    for (int c = 0; c < C; ++c)
        for (int r = 0; r < R; ++r) {
            float s = vaddvq_f32(acc[r][c]);
            for (int64_t j = i; j < k; ++j) s += W::one(wr[r][j]) * A::one(ac[c][j]);
            y[c * ldy + r] = s;
        }
}

template <class W, class A>
void gemv(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc, float* y,
          int64_t ldy) {
    for (int64_t c0 = 0; c0 < nc; c0 += kGemvCols) {
        const bool two = nc - c0 >= 2;
        int64_t r0 = 0;
        for (; r0 + kGemvRows <= nr; r0 += kGemvRows)
            (two ? gemv_tile<W, A, kGemvRows, 2> : gemv_tile<W, A, kGemvRows, 1>)(k, w + r0 * ws, ws, a + c0 * as, as,
                                                                                 y + c0 * ldy + r0, ldy);
        for (; r0 < nr; ++r0)
            (two ? gemv_tile<W, A, 1, 2> : gemv_tile<W, A, 1, 1>)(k, w + r0 * ws, ws, a + c0 * as, as,
                                                                   y + c0 * ldy + r0, ldy);
    }
}

// ---- packed gemm -------------------------------------------------------------------
constexpr int kMR = 8, kNR = 8, kKC = 256;

template <class E>
void widen(const typename E::T* src, int n, float* dst) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(dst + i, E::load(src + i));
    for (; i < n; ++i) dst[i] = E::one(src[i]);
}

// Panel p[kk * kMR + r] = W[r][k0 + kk] (rows >= rows are zero).
template <class W>
void pack_panel(const uint8_t* w, size_t ws, int rows, int64_t k0, int kc, float* p, float* tmp) {
    for (int r = 0; r < kMR; ++r) {
        if (r < rows)
            widen<W>(reinterpret_cast<const typename W::T*>(w + r * ws) + k0, kc, tmp);
        for (int kk = 0; kk < kc; ++kk) p[kk * kMR + r] = r < rows ? tmp[kk] : 0.0f;
    }
}

template <int NC>
void micro(int kc, const float* p, const float* x, int64_t xs, float* y, int64_t ldy, bool add, int rows) {
    float32x4_t a0[NC], a1[NC];
    for (int c = 0; c < NC; ++c) a0[c] = a1[c] = vdupq_n_f32(0.0f);
    for (int kk = 0; kk < kc; ++kk) {
        const float32x4_t w0 = vld1q_f32(p + kk * kMR), w1 = vld1q_f32(p + kk * kMR + 4);
        for (int c = 0; c < NC; ++c) {
            const float b = x[c * xs + kk];
            a0[c] = vfmaq_n_f32(a0[c], w0, b);
            a1[c] = vfmaq_n_f32(a1[c], w1, b);
        }
    }
    for (int c = 0; c < NC; ++c) {
        float tmp[kMR];
        vst1q_f32(tmp, a0[c]);
        vst1q_f32(tmp + 4, a1[c]);
        float* out = y + c * ldy;
        for (int r = 0; r < rows; ++r) out[r] = add ? out[r] + tmp[r] : tmp[r];
    }
}

using MicroFn = void (*)(int, const float*, const float*, int64_t, float*, int64_t, bool, int);
constexpr MicroFn kMicro[kNR + 1] = {nullptr, micro<1>, micro<2>, micro<3>, micro<4>,
                                     micro<5>, micro<6>, micro<7>, micro<8>};

template <class W, class A>
void gemm_packed(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc,
                 float* y, int64_t ldy) {
    float* panel = static_cast<float*>(matmul_scratch(0, sizeof(float) * (kMR + 1) * kKC));
    float* tmp = panel + kMR * kKC;
    float* xp = static_cast<float*>(matmul_scratch(1, sizeof(float) * kKC * nc));
    for (int64_t k0 = 0; k0 < k; k0 += kKC) {
        const int kc = static_cast<int>(min64(kKC, k - k0));
        for (int64_t c = 0; c < nc; ++c)
            widen<A>(reinterpret_cast<const typename A::T*>(a + c * as) + k0, kc, xp + c * kKC);
        for (int64_t r0 = 0; r0 < nr; r0 += kMR) {
            const int rows = static_cast<int>(min64(kMR, nr - r0));
            pack_panel<W>(w + r0 * ws, ws, rows, k0, kc, panel, tmp);
            for (int64_t c0 = 0; c0 < nc; c0 += kNR) {
                const int cols = static_cast<int>(min64(kNR, nc - c0));
                kMicro[cols](kc, panel, xp + c0 * kKC, kKC, y + c0 * ldy + r0, ldy, k0 > 0, rows);
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
        k.gemm_row_align = 4 * kMR;  // rows per gemm call: 4 panels share each widened activation panel
    }
}

}  // namespace kq::isa_neon
