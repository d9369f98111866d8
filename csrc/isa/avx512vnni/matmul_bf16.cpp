// BF16 x BF16 on AVX512_BF16: vdpbf16ps multiplies 32 bf16 pairs and adds
// each pair's two products to an f32 lane.
//  * gemv (nc <= 4): R = 4 rows x C columns; a 64-byte load of a weight row
//    and of an activation row are 32 consecutive k, already paired, so no
//    conversion at all. Tails: masked loads (zeros on both sides).
//  * mat-mat, where vdpbf16ps issues at the FMA rate (CpuFeatures::
//    fast_dpbf16, AMD Zen 4+): the outer-product kernel of mm512_float.h on
//    k pairs. A panel of 32 rows x kKC k is stored as [k pair][32 rows] of
//    32-bit bf16 pairs (the 16x16 transpose of 32-bit elements, applied to
//    rows of 32 bf16, gives exactly that); per pair the kernel broadcasts
//    one activation pair per column and does 2 vdpbf16ps per column, for 12
//    columns: twice the multiply-adds of the f32 kernel per instruction.
//    Elsewhere (Intel: 87 against 117 GFLOPS for the f32 FMAs on the
//    reference machine, 1 thread, m=4096, k=14336, n=512) the f32 kernel.
#include "isa/avx512/mm512_float.h"
#include "isa/avx512vnni/matmul.h"
#include "core/cpu.h"

namespace kq::isa_avx512vnni {
namespace {

using isa_avx512::kGemvMaxCols;

inline __mmask32 low_mask32(int64_t n) {
    return n >= 32 ? static_cast<__mmask32>(0xFFFFFFFFu) : static_cast<__mmask32>((1u << (n > 0 ? n : 0)) - 1u);
}
inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh>(v); }

// pf: null, or the next tile's first row, fetched into L2 a line per row
// per step while this tile computes (as the avx512 float mat-vec).
template <int R, int C>
void gemv_tile(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ldy,
               const uint8_t* pf) {
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k; i += 32) {
        if (pf)
            for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(pf + r * ws + 2 * i), _MM_HINT_T1);
        const __mmask32 m = low_mask32(k - i);
        __m512i av[C];
        for (int c = 0; c < C; ++c) av[c] = _mm512_maskz_loadu_epi16(m, a + c * as + 2 * i);
        for (int r = 0; r < R; ++r) {
            const __m512i wv = _mm512_maskz_loadu_epi16(m, w + r * ws + 2 * i);
            for (int c = 0; c < C; ++c) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], as_bh(wv), as_bh(av[c]));
        }
    }
    for (int c = 0; c < C; ++c)
        for (int r = 0; r < R; ++r) y[c * ldy + r] = _mm512_reduce_add_ps(acc[r][c]);
}

using GemvFn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t, const uint8_t*);
constexpr GemvFn kGemv[2][4] = {{gemv_tile<1, 1>, gemv_tile<1, 2>, gemv_tile<1, 3>, gemv_tile<1, 4>},
                                {gemv_tile<4, 1>, gemv_tile<4, 2>, gemv_tile<4, 3>, gemv_tile<4, 4>}};

void gemv(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc, float* y,
          int64_t ldy) {
    int64_t r0 = 0;
    for (; r0 + 4 <= nr; r0 += 4)
        kGemv[1][nc - 1](k, w + r0 * ws, ws, a, as, y + r0, ldy, nc == 1 && r0 + 8 <= nr ? w + (r0 + 4) * ws : nullptr);
    for (; r0 < nr; ++r0) kGemv[0][nc - 1](k, w + r0 * ws, ws, a, as, y + r0, ldy, nullptr);
}

// ---- packed mat-mat on k pairs ------------------------------------------------
using isa_avx512::kKC;
using isa_avx512::kMR;
using isa_avx512::kNR;
constexpr int kKP = kKC / 2;  // k pairs per panel: 32 rows x 128 pairs x 4 B = 16 KiB

// Rows [0, rows) x k [k0, k0 + kc) of W into p[kp * 32 + r] (bf16 pairs;
// rows >= rows and an odd k's missing partner are zeros).
void pack_panel_bf16(const uint8_t* w, size_t ws, int rows, int64_t k0, int kc, uint32_t* p) {
    for (int h = 0; h < 2; ++h) {
        for (int kk = 0; kk < kc; kk += 32) {
            const __mmask32 m = low_mask32(kc - kk);
            __m512 r[16];
            for (int i = 0; i < 16; ++i) {
                const int row = 16 * h + i;
                r[i] = row < rows ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, w + row * ws + 2 * (k0 + kk)))
                                  : _mm512_setzero_ps();
            }
            isa_avx512::transpose16(r);  // r[j]: pair j (k = kk + 2j, kk + 2j + 1) of the 16 rows
            const int np = (static_cast<int>(isa_avx512::min64(32, kc - kk)) + 1) / 2;
            for (int j = 0; j < np; ++j) _mm512_store_ps(reinterpret_cast<float*>(p + (kk / 2 + j) * kMR + 16 * h), r[j]);
        }
    }
}

// acc (+)= panel x columns; x: column c's pairs at x + c * kKP.
template <int NC>
void micro_bf16(int np, const uint32_t* p, const uint32_t* x, float* y, int64_t ldy, bool add, __mmask16 m0,
                __mmask16 m1, const isa_avx512::NextTile& next) {
    isa_avx512::micro_tile<NC>(np, y, ldy, add, m0, m1, [&](int kp, __m512 (&a0)[NC], __m512 (&a1)[NC]) {
        const __m512i w0 = _mm512_load_si512(p + kp * kMR), w1 = _mm512_load_si512(p + kp * kMR + 16);
        for (int c = 0; c < NC; ++c) {
            const __m512i b = _mm512_set1_epi32(static_cast<int>(x[c * kKP + kp]));
            a0[c] = _mm512_dpbf16_ps(a0[c], as_bh(w0), as_bh(b));
            a1[c] = _mm512_dpbf16_ps(a1[c], as_bh(w1), as_bh(b));
        }
    }, next);
}

using MicroFn = void (*)(int, const uint32_t*, const uint32_t*, float*, int64_t, bool, __mmask16, __mmask16,
                        const isa_avx512::NextTile&);
constexpr MicroFn kMicro[kNR + 1] = {nullptr,       micro_bf16<1>, micro_bf16<2>,  micro_bf16<3>, micro_bf16<4>,
                                     micro_bf16<5>, micro_bf16<6>, micro_bf16<7>,  micro_bf16<8>, micro_bf16<9>,
                                     micro_bf16<10>, micro_bf16<11>, micro_bf16<12>};

void gemm_packed_bf16(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc,
                      float* y, int64_t ldy) {
    auto* panel = static_cast<uint32_t*>(matmul_scratch(0, sizeof(uint32_t) * kMR * kKP));
    // Activations copied per k panel (zero-padded to whole pairs): rows of a
    // large power-of-two stride would alias in L1.
    auto* xp = static_cast<uint32_t*>(matmul_scratch(1, sizeof(uint32_t) * kKP * nc));
    for (int64_t k0 = 0; k0 < k; k0 += kKC) {
        const int kc = static_cast<int>(isa_avx512::min64(kKC, k - k0));
        for (int64_t c = 0; c < nc; ++c)
            for (int kk = 0; kk < kc; kk += 32)
                _mm512_store_si512(xp + c * kKP + kk / 2, _mm512_maskz_loadu_epi16(low_mask32(kc - kk), a + c * as + 2 * (k0 + kk)));
        const int np = (kc + 1) / 2;
        for (int64_t r0 = 0; r0 < nr; r0 += kMR) {
            const int rows = static_cast<int>(isa_avx512::min64(kMR, nr - r0));
            pack_panel_bf16(w + r0 * ws, ws, rows, k0, kc, panel);
            const __mmask16 m0 = isa_avx512::low_mask16(rows), m1 = isa_avx512::low_mask16(rows - 16);
            // The next panel's rows (32 x kc bf16, 8 lines each at kc = 256)
            // are fetched into L2 a row per column tile, ahead of its packing.
            const uint8_t* ahead = r0 + 2 * kMR <= nr ? w + (r0 + kMR) * ws + 2 * k0 : nullptr;
            for (int64_t c0 = 0, t = 0; c0 < nc; c0 += kNR, ++t) {
                if (ahead && t < kMR)
                    for (int o = 0; o < 2 * kc; o += 64) _mm_prefetch(reinterpret_cast<const char*>(ahead + t * ws + o), _MM_HINT_T1);
                const int cols = static_cast<int>(isa_avx512::min64(kNR, nc - c0));
                // 512-byte columns: 8 lines (log2 3)
                const isa_avx512::NextTile next =
                    isa_avx512::next_tile(xp, kKP * sizeof(uint32_t), 3, y + r0, ldy, c0, nc, k0 > 0);
                kMicro[cols](np, panel, xp + c0 * kKP, y + c0 * ldy + r0, ldy, k0 > 0, m0, m1, next);
            }
        }
    }
}

void gemm_bf16(int64_t k, const void* w, size_t ws, int64_t nr, const void* a, size_t as, int64_t nc, float* y,
               int64_t ldy) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    static const bool fast_dp = cpu_features().fast_dpbf16;
    if (nc <= kGemvMaxCols)
        gemv(k, wb, ws, nr, ab, as, nc, y, ldy);
    else if (fast_dp)
        gemm_packed_bf16(k, wb, ws, nr, ab, as, nc, y, ldy);
    else
        isa_avx512::gemm_packed<isa_avx512::EBF16, isa_avx512::EBF16>(k, wb, ws, nr, ab, as, nc, y, ldy);
}

float vec_dot_bf16(int64_t k, const void* w, const void* a) {
    float y;
    gemv_tile<1, 1>(k, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, &y, 1, nullptr);
    return y;
}

}  // namespace

void register_matmul_bf16(KernelSet& ks) {
    TypeKernels& k = ks[TypeId::BF16];
    k.vec_dot = vec_dot_bf16;
    k.gemm = gemm_bf16;
    k.gemm_row_align = isa_avx512::kMR;  // as the avx512 float kernels
    k.gemm_min_rows = 16 * isa_avx512::kMR;
}

}  // namespace kq::isa_avx512vnni
