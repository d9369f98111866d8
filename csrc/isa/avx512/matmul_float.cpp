// F32 / F16 / BF16 entries of the avx512 kernel set (kernels in mm512_float.h).
#include "isa/avx512/matmul.h"
#include "isa/avx512/mm512_float.h"

namespace kq::isa_avx512 {

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
    }
}

void register_matmul(KernelSet& ks) {
    register_matmul_float(ks);
    register_matmul_quant(ks);
}

}  // namespace kq::isa_avx512
