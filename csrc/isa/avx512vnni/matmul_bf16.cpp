// BF16 x BF16 on AVX512_BF16: vdpbf16ps multiplies 32 bf16 pairs and adds
// each pair's two products to an f32 lane, twice the FMA rate of f32.
//  * gemv (nc <= 4): R = 4 rows x C columns; a 64-byte load of a weight row
//    and of an activation row are 32 consecutive k, already paired.
//  * packed gemm: as isa/avx512/mm512_float.h, but a panel holds k pairs:
//    [k/2][32 rows] dwords, dword = (W[r][2p], W[r][2p+1]); the micro-kernel
//    broadcasts the activation pair (x[2p], x[2p+1]) of each column.
// An odd k's last pair is completed with zeros on both sides (a zero weight
// times a garbage activation could be 0 * inf).
#include "isa/avx512/mm512_float.h"
#include "isa/avx512vnni/matmul.h"

namespace kq::isa_avx512vnni {
namespace {

using isa_avx512::kGemvMaxCols;
using isa_avx512::low_mask16;
using isa_avx512::min64;
using isa_avx512::transpose16;

inline __mmask32 low_mask32(int64_t n) {
    return n >= 32 ? static_cast<__mmask32>(0xFFFFFFFFu) : static_cast<__mmask32>((1u << (n > 0 ? n : 0)) - 1u);
}
inline __m512bh as_bh(__m512i v) { return reinterpret_cast<__m512bh>(v); }

template <int R, int C>
void gemv_tile(int64_t k, const uint8_t* w, size_t ws, const uint8_t* a, size_t as, float* y, int64_t ldy) {
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < k; i += 32) {
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

using GemvFn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t);
constexpr GemvFn kGemv[2][4] = {{gemv_tile<1, 1>, gemv_tile<1, 2>, gemv_tile<1, 3>, gemv_tile<1, 4>},
                                {gemv_tile<4, 1>, gemv_tile<4, 2>, gemv_tile<4, 3>, gemv_tile<4, 4>}};

void gemv(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc, float* y,
          int64_t ldy) {
    int64_t r0 = 0;
    for (; r0 + 4 <= nr; r0 += 4) kGemv[1][nc - 1](k, w + r0 * ws, ws, a, as, y + r0, ldy);
    for (; r0 < nr; ++r0) kGemv[0][nc - 1](k, w + r0 * ws, ws, a, as, y + r0, ldy);
}

constexpr int kMR = 32, kNR = 12, kKC = 512;  // kKC k = 256 pairs: a 32 KiB panel

// p[pp * 32 + r] = W[r][k0 + 2pp .. +1] as one dword; rows >= rows and k
// beyond kc are zero.
void pack_panel(const uint8_t* w, size_t ws, int rows, int64_t k0, int kc, uint32_t* p) {
    const int pairs = (kc + 1) / 2;
    for (int h = 0; h < 2; ++h)
        for (int pp = 0; pp < pairs; pp += 16) {
            const __mmask32 m = low_mask32(kc - 2 * pp);
            __m512 r[16];
            for (int i = 0; i < 16; ++i) {
                const int row = 16 * h + i;
                r[i] = row < rows ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(m, w + row * ws + 2 * (k0 + 2 * pp)))
                                  : _mm512_setzero_ps();
            }
            transpose16(r);
            const int n = static_cast<int>(min64(16, pairs - pp));
            for (int i = 0; i < n; ++i)
                _mm512_store_si512(p + (pp + i) * kMR + 16 * h, _mm512_castps_si512(r[i]));
        }
}

template <int NC>
void micro(int pairs, const uint32_t* p, const uint32_t* x, int64_t xs, float* y, int64_t ldy, bool add,
           __mmask16 m0, __mmask16 m1) {
    __m512 a0[NC], a1[NC];
    for (int c = 0; c < NC; ++c) {
        a0[c] = add ? _mm512_maskz_loadu_ps(m0, y + c * ldy) : _mm512_setzero_ps();
        a1[c] = add ? _mm512_maskz_loadu_ps(m1, y + c * ldy + 16) : _mm512_setzero_ps();
    }
    for (int pp = 0; pp < pairs; ++pp) {
        const __m512i w0 = _mm512_load_si512(p + pp * kMR), w1 = _mm512_load_si512(p + pp * kMR + 16);
        for (int c = 0; c < NC; ++c) {
            const __m512i b = _mm512_set1_epi32(static_cast<int>(x[c * xs + pp]));
            a0[c] = _mm512_dpbf16_ps(a0[c], as_bh(w0), as_bh(b));
            a1[c] = _mm512_dpbf16_ps(a1[c], as_bh(w1), as_bh(b));
        }
    }
    for (int c = 0; c < NC; ++c) {
        _mm512_mask_storeu_ps(y + c * ldy, m0, a0[c]);
        _mm512_mask_storeu_ps(y + c * ldy + 16, m1, a1[c]);
    }
}

using MicroFn = void (*)(int, const uint32_t*, const uint32_t*, int64_t, float*, int64_t, bool, __mmask16, __mmask16);
constexpr MicroFn kMicro[kNR + 1] = {nullptr,   micro<1>, micro<2>, micro<3>,  micro<4>,  micro<5>, micro<6>,
                                     micro<7>,  micro<8>, micro<9>, micro<10>, micro<11>, micro<12>};

void gemm_packed(int64_t k, const uint8_t* w, size_t ws, int64_t nr, const uint8_t* a, size_t as, int64_t nc,
                 float* y, int64_t ldy) {
    constexpr int kPairs = kKC / 2;
    uint32_t* panel = static_cast<uint32_t*>(matmul_scratch(0, sizeof(uint32_t) * kMR * kPairs));
    // Activation pairs per k panel, copied (no L1 aliasing across columns)
    // and zero-padded to whole pairs.
    uint32_t* xp = static_cast<uint32_t*>(matmul_scratch(1, sizeof(uint32_t) * kPairs * nc));
    for (int64_t k0 = 0; k0 < k; k0 += kKC) {
        const int kc = static_cast<int>(min64(kKC, k - k0));
        const int pairs = (kc + 1) / 2;
        for (int64_t c = 0; c < nc; ++c)
            for (int i = 0; i < kc; i += 32)
                _mm512_storeu_si512(xp + c * kPairs + i / 2,
                                    _mm512_maskz_loadu_epi16(low_mask32(kc - i), a + c * as + 2 * (k0 + i)));
        for (int64_t r0 = 0; r0 < nr; r0 += kMR) {
            const int rows = static_cast<int>(min64(kMR, nr - r0));
            pack_panel(w + r0 * ws, ws, rows, k0, kc, panel);
            const __mmask16 m0 = low_mask16(rows), m1 = low_mask16(rows - 16);
            for (int64_t c0 = 0; c0 < nc; c0 += kNR) {
                const int cols = static_cast<int>(min64(kNR, nc - c0));
                kMicro[cols](pairs, panel, xp + c0 * kPairs, kPairs, y + c0 * ldy + r0, ldy, k0 > 0, m0, m1);
            }
        }
    }
}

void gemm_bf16(int64_t k, const void* w, size_t ws, int64_t nr, const void* a, size_t as, int64_t nc, float* y,
               int64_t ldy) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    if (nc <= kGemvMaxCols)
        gemv(k, wb, ws, nr, ab, as, nc, y, ldy);
    else
        gemm_packed(k, wb, ws, nr, ab, as, nc, y, ldy);
}

float vec_dot_bf16(int64_t k, const void* w, const void* a) {
    float y;
    gemv_tile<1, 1>(k, static_cast<const uint8_t*>(w), 0, static_cast<const uint8_t*>(a), 0, &y, 1);
    return y;
}

}  // namespace

void register_matmul_bf16(KernelSet& ks) {
    TypeKernels& k = ks[TypeId::BF16];
    k.vec_dot = vec_dot_bf16;
    k.gemm = gemm_bf16;
    k.gemm_row_align = 4 * kMR;  // rows per gemm call: 4 panels share each activation panel
}

}  // namespace kq::isa_avx512vnni
