// BF16 x BF16 on AVX512_BF16: vdpbf16ps multiplies 32 bf16 pairs and adds
// each pair's two products to an f32 lane.
//  * gemv (nc <= 4): R = 4 rows x C columns; a 64-byte load of a weight row
//    and of an activation row are 32 consecutive k, already paired, so no
//    conversion at all. Tails: masked loads (zeros on both sides).
//  * mat-mat: the avx512 f32 outer-product kernel (mm512_float.h). A
//    vdpbf16ps version of it (panels of k pairs, activation pairs broadcast)
//    ran at 87 GFLOPS against 117 for the f32 FMAs on the reference machine
//    (1 thread, m=4096, k=14336, n=512): vdpbf16ps does not issue at the
//    FMA rate there, so the f32 kernel stays.
#include "isa/avx512/mm512_float.h"
#include "isa/avx512vnni/matmul.h"

namespace kq::isa_avx512vnni {
namespace {

using isa_avx512::kGemvMaxCols;

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

void gemm_bf16(int64_t k, const void* w, size_t ws, int64_t nr, const void* a, size_t as, int64_t nc, float* y,
               int64_t ldy) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    if (nc <= kGemvMaxCols)
        gemv(k, wb, ws, nr, ab, as, nc, y, ldy);
    else
        isa_avx512::gemm_packed<isa_avx512::EBF16, isa_avx512::EBF16>(k, wb, ws, nr, ab, as, nc, y, ldy);
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
    k.gemm_row_align = 4 * isa_avx512::kMR;  // as the avx512 float kernels
}

}  // namespace kq::isa_avx512vnni
