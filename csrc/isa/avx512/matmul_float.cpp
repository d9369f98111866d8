// F32 / F16 / BF16 entries of the avx512 kernel set (kernels in mm512_float.h).
#include "isa/avx512/matmul.h"
#include "isa/avx512/mm512_float.h"

namespace kq::isa_avx512 {
namespace {

// Four 64-byte loads per 256 bytes, XORed into four chains.
uint64_t stream_read(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 256) {
        a0 = _mm512_xor_si512(a0, _mm512_loadu_si512(b + i));
        a1 = _mm512_xor_si512(a1, _mm512_loadu_si512(b + i + 64));
        a2 = _mm512_xor_si512(a2, _mm512_loadu_si512(b + i + 128));
        a3 = _mm512_xor_si512(a3, _mm512_loadu_si512(b + i + 192));
    }
    const __m512i x = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
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
