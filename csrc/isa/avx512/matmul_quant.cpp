// Quantized entries of the avx512 kernel set: packed layouts (matmul/packed.h)
// with pmaddubsw/pmaddwd dot products (kernels in mm512_quant.h), and the
// legacy formats' mat-vec on ggml rows (mm512_rows.h).
#include "isa/avx512/matmul.h"
#include "isa/avx512/mm512_quant.h"
#include "isa/avx512/mm512_rows.h"

namespace kq::isa_avx512 {

void register_matmul_quant(KernelSet& ks) {
    register_quant_kernels<DotBw>(ks);
    register_row_kernels<false>(ks);
}

}  // namespace kq::isa_avx512
