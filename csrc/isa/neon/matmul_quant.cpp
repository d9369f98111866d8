// Quantized matmul kernels on AArch64 NEON + dotprod over the packed layouts
// of matmul/packed.h: isa/avx512/mm512_quant.h at 4 lanes. A 16-lane group
// is four quarters q = 0..3 of 4 lanes (16 bytes of every 64-byte vector).
// sdot multiplies int8 x int8, so the stored values (all below 128) and
// Q8_0's signed values need no bias; formats stored with an offset start the
// block sums at -offset * sum(a) as on x86.
#include <arm_neon.h>

#include "core/kernels.h"
#include "isa/neon/matmul.h"
#include "matmul/matmul.h"
#include "matmul/packed.h"

namespace kq::isa_neon {
namespace {

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

inline uint8x16_t ld(const uint8_t* p) { return vld1q_u8(p); }
inline float32x4_t ldf(const uint8_t* p) { return vld1q_f32(reinterpret_cast<const float*>(p)); }
inline float32x4_t f16x4(const uint8_t* p) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p))));
}
inline float32x4_t bcast_f16(const uint8_t* p) {
    uint16_t h;
    __builtin_memcpy(&h, p, 2);
    return vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h)));
}
// 4 bytes at p -> f32 (unsigned / signed).
inline float32x4_t u8x4_f32(const uint8_t* p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return vcvtq_f32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(v))))));
}
inline float32x4_t i8x4_f32(const uint8_t* p) {
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return vcvtq_f32_s32(vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u32(vdup_n_u32(v))))));
}

// Byte shift left (S > 0) or right.
template <int S>
inline uint8x16_t shift8(uint8x16_t v) {
    if constexpr (S > 0) return vshlq_n_u8(v, S);
    else if constexpr (S < 0) return vshrq_n_u8(v, -S);
    else return v;
}
inline uint8x16_t or_masked(uint8x16_t a, uint8x16_t b, uint8_t m) { return vorrq_u8(a, vandq_u8(b, vdupq_n_u8(m))); }

template <int T, bool kQ5>
inline uint8x16_t value_n(const uint8_t* g, int q) {
    const uint8x16_t n = ld(g + 64 * (T & 3) + 16 * q);
    uint8x16_t v = T < 4 ? vandq_u8(n, vdupq_n_u8(0x0F)) : vshrq_n_u8(n, 4);
    if constexpr (kQ5) v = or_masked(v, shift8<4 - T>(ld(g + 256 + 16 * q)), 0x10);
    return v;
}

// ---- decoders (layouts and constants: see isa/avx512/mm512_quant.h) -----------
template <bool kMin, bool kQ5>
struct DecLegacy {
    static constexpr int LB = 32;
    static constexpr size_t kD = kQ5 ? 320 : 256;
    static constexpr size_t kBytes = kD + (kMin ? 64 : 32);
    static constexpr int kOffsetShift = kMin ? -1 : (kQ5 ? 4 : 3);
    static constexpr bool kMinTerm = kMin;
    template <int T>
    static uint8x16_t value(const uint8_t* g, int q) { return value_n<T, kQ5>(g, q); }
    static void scales(const uint8_t* g, int q, float32x4_t& dw, float32x4_t& mw) {
        dw = f16x4(g + kD + 8 * q);
        if constexpr (kMin) mw = f16x4(g + kD + 32 + 8 * q);
    }
};

struct DecQ8_0 {
    static constexpr int LB = 32;
    static constexpr size_t kBytes = 8 * 64 + 32;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMinTerm = false;
    template <int T>
    static uint8x16_t value(const uint8_t* g, int q) { return ld(g + 64 * T + 16 * q); }
    static void scales(const uint8_t* g, int q, float32x4_t& dw, float32x4_t&) { dw = f16x4(g + 512 + 8 * q); }
};

template <bool kQ5>
struct DecK45 {
    static constexpr int LB = 32;
    static constexpr size_t kSC = kQ5 ? 320 : 256, kMN = kSC + 16, kD = kMN + 16;
    static constexpr size_t kBytes = kD + 8;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMinTerm = true;
    template <int T>
    static uint8x16_t value(const uint8_t* g, int q) { return value_n<T, kQ5>(g, q); }
    static void scales(const uint8_t* g, int q, float32x4_t& dw, float32x4_t& mw) {
        const int h = q / 2;  // lanes 0..7: first super-block, 8..15: second
        dw = vmulq_f32(u8x4_f32(g + kSC + 4 * q), bcast_f16(g + kD + 2 * h));
        mw = vmulq_f32(u8x4_f32(g + kMN + 4 * q), vnegq_f32(bcast_f16(g + kD + 4 + 2 * h)));
    }
};

struct DecQ6_K {
    static constexpr int LB = 16;
    static constexpr size_t kBytes = 3 * 64 + 18;
    static constexpr int kOffsetShift = 5;
    static constexpr bool kMinTerm = false;
    template <int T>
    static uint8x16_t value(const uint8_t* g, int q) {
        const uint8x16_t n = ld(g + 64 * (T & 1) + 16 * q);
        const uint8x16_t lo = T < 2 ? vandq_u8(n, vdupq_n_u8(0x0F)) : vshrq_n_u8(n, 4);
        return or_masked(lo, shift8<4 - 2 * T>(ld(g + 128 + 16 * q)), 0x30);
    }
    static void scales(const uint8_t* g, int q, float32x4_t& dw, float32x4_t&) {
        dw = vmulq_f32(i8x4_f32(g + 192 + 4 * q), bcast_f16(g + 208));
    }
};

struct DecQ3_K {
    static constexpr int LB = 16;
    static constexpr size_t kBytes = 64 + 32 + 18;
    static constexpr int kOffsetShift = 2;
    static constexpr bool kMinTerm = false;
    template <int T>
    static uint8x16_t value(const uint8_t* g, int q) {
        const uint8x16_t lo = vandq_u8(shift8<-2 * T>(ld(g + 16 * q)), vdupq_n_u8(3));
        // H3: lanes 0..7 in bits 0..3 of bytes 0..31, lanes 8..15 in bits 4..7.
        uint8x16_t h = ld(g + 64 + 16 * (q & 1));
        if (q >= 2) h = vshrq_n_u8(h, 4);
        return or_masked(lo, shift8<2 - T>(h), 0x04);
    }
    static void scales(const uint8_t* g, int q, float32x4_t& dw, float32x4_t&) {
        dw = vmulq_f32(i8x4_f32(g + 96 + 4 * q), bcast_f16(g + 112));
    }
};

struct DecQ2_K {
    static constexpr int LB = 16;
    static constexpr size_t kBytes = 64 + 20;
    static constexpr int kOffsetShift = -1;
    static constexpr bool kMinTerm = true;
    template <int T>
    static uint8x16_t value(const uint8_t* g, int q) { return vandq_u8(shift8<-2 * T>(ld(g + 16 * q)), vdupq_n_u8(3)); }
    static void scales(const uint8_t* g, int q, float32x4_t& dw, float32x4_t& mw) {
        uint32_t v;
        __builtin_memcpy(&v, g + 64 + 4 * q, 4);
        const uint32x4_t sc = vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(v)))));
        dw = vmulq_f32(vcvtq_f32_u32(vandq_u32(sc, vdupq_n_u32(15))), bcast_f16(g + 80));
        mw = vmulq_f32(vcvtq_f32_u32(vshrq_n_u32(sc, 4)), vnegq_f32(bcast_f16(g + 82)));
    }
};

// ---- the R x C tile -------------------------------------------------------------------
template <class D>
struct QTile {
    static constexpr int NV = D::LB / 4;
    static constexpr size_t kAG = packed::act_group_bytes(D::LB);
    static constexpr size_t kDA = packed::act_da_offset(D::LB), kSA = packed::act_sa_offset(D::LB),
                            kSUM = packed::act_sum_offset(D::LB);

    template <int T, int R, int C>
    [[gnu::always_inline]] static inline void step(int32x4_t (&S)[R][C], const uint8_t* const (&wg)[R],
                                                   const uint8_t* const (&ag)[C], int q) {
        int8x16_t av[C];
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) av[c] = vreinterpretq_s8_u8(ld(ag[c] + 64 * T + 16 * q));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const int8x16_t w = vreinterpretq_s8_u8(D::template value<T>(wg[r], q));
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) S[r][c] = vdotq_s32(S[r][c], w, av[c]);
        }
        if constexpr (T + 1 < NV) step<T + 1, R, C>(S, wg, ag, q);
    }

    template <int R, int C>
    static void run(int64_t ng, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ldy) {
        float32x4_t acc[R][C];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) acc[r][c] = vdupq_n_f32(0.0f);
        for (int64_t gi = 0; gi < ng; ++gi) {
            const uint8_t* wg[R];
            const uint8_t* ag[C];
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) wg[r] = w + r * ws + gi * D::kBytes;
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) ag[c] = a + c * as + gi * kAG;
            for (int q = 0; q < 4; ++q) {
                int32x4_t S[R][C];
#pragma GCC unroll 8
                for (int c = 0; c < C; ++c) {
                    int32x4_t init = vdupq_n_s32(0);
                    if constexpr (D::kOffsetShift >= 0)
                        init = vnegq_s32(vshlq_n_s32(vld1q_s32(reinterpret_cast<const int32_t*>(ag[c] + kSUM + 16 * q)),
                                                     D::kOffsetShift));
#pragma GCC unroll 8
                    for (int r = 0; r < R; ++r) S[r][c] = init;
                }
                step<0, R, C>(S, wg, ag, q);
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) {
                    float32x4_t dw, mw = vdupq_n_f32(0.0f);
                    D::scales(wg[r], q, dw, mw);
#pragma GCC unroll 8
                    for (int c = 0; c < C; ++c) {
                        const float32x4_t scale = vmulq_f32(dw, ldf(ag[c] + kDA + 16 * q));
                        acc[r][c] = vfmaq_f32(acc[r][c], vcvtq_f32_s32(S[r][c]), scale);
                        if constexpr (D::kMinTerm) acc[r][c] = vfmaq_f32(acc[r][c], mw, ldf(ag[c] + kSA + 16 * q));
                    }
                }
            }
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c)
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) y[c * ldy + r] = vaddvq_f32(acc[r][c]);
    }
};

constexpr int kQR = 4, kQC = 2;  // 2 x 4 x 2 accumulators + operands in 32 q registers
constexpr size_t kQActBlock = 512 * 1024;

template <class D>
void gemm_q(int64_t k, const void* w, size_t ws, int64_t nr, const void* a, size_t as, int64_t nc, float* y,
            int64_t ldy) {
    using Tile = QTile<D>;
    using Fn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t);
    static constexpr Fn kTiles[4][2] = {{Tile::template run<1, 1>, Tile::template run<1, 2>},
                                        {Tile::template run<2, 1>, Tile::template run<2, 2>},
                                        {Tile::template run<3, 1>, Tile::template run<3, 2>},
                                        {Tile::template run<4, 1>, Tile::template run<4, 2>}};
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    // (k / LB + 15) / 16, as packed::groups -- computed here, not called: ISA code
    // calls no inline function of shared headers (one copy of it would be
    // kept at link time, possibly the one built with this folder's flags).
    const int64_t ng = (k / D::LB + packed::kGroup - 1) / packed::kGroup;
    const int64_t cb = max64(kQC, static_cast<int64_t>(kQActBlock / as) / kQC * kQC);
    for (int64_t c0 = 0; c0 < nc; c0 += cb) {
        const int64_t c1 = min64(nc, c0 + cb);
        for (int64_t r0 = 0; r0 < nr; r0 += kQR) {
            const int rr = static_cast<int>(min64(kQR, nr - r0));
            for (int64_t c = c0; c < c1; c += kQC) {
                const int cc = static_cast<int>(min64(kQC, c1 - c));
                kTiles[rr - 1][cc - 1](ng, wb + r0 * ws, ws, ab + c * as, as, y + c * ldy + r0, ldy);
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
        k.gemm_row_align = kQR;
    }
}

}  // namespace kq::isa_neon
