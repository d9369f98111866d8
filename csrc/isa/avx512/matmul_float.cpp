// F32 / F16 / BF16 entries of the avx512 kernel set (kernels in mm512_float.h).
#include "isa/avx512/matmul.h"
#include "isa/avx512/mm512_float.h"

namespace kq::isa_avx512 {
namespace {

// 16 streams side by side: the buffer in 16 equal parts, 64 bytes of each per
// step, as a mat-vec reads a tile of weight rows (plus the next tile's,
// prefetched) at once. One sequential stream per thread read 22-24 GB/s on
// Zen 4 (1 thread) where the mat-vec kernels stream 30+: 8 streams gave
// 25-30 GB/s, 16 streams 29-30 (2 threads: 34-36 -> 38-43).
constexpr int kStreams = 16;
uint64_t stream_read(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    const size_t part = n / kStreams / 64 * 64;
    __m512i a[kStreams];
    for (int s = 0; s < kStreams; ++s) a[s] = _mm512_setzero_si512();
    for (size_t i = 0; i < part; i += 64)
        for (int s = 0; s < kStreams; ++s) a[s] = _mm512_xor_si512(a[s], _mm512_loadu_si512(b + s * part + i));
    __m512i x = a[0];
    for (int s = 1; s < kStreams; ++s) x = _mm512_xor_si512(x, a[s]);
    for (size_t i = kStreams * part; i + 64 <= n; i += 64) x = _mm512_xor_si512(x, _mm512_loadu_si512(b + i));
    alignas(64) uint64_t w[8];
    _mm512_store_si512(w, x);
    return w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4] ^ w[5] ^ w[6] ^ w[7];
}

}  // namespace

void register_matmul_float(KernelSet& ks) {
    // Activations are the vec_dot_type of each row of the traits table:
    // F32 x F32, F16 x F16, BF16 x BF16.
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

void register_matmul(KernelSet& ks) {
    ks.stream_read = stream_read;
    register_matmul_float(ks);
    register_matmul_quant(ks);
    register_softmax(ks);
}

}  // namespace kq::isa_avx512
