// Quantized entries of the avx512vnni kernel set: the avx512 kernels
// (isa/avx512/mm512_quant.h, compiled here with this folder's flags) on
// vpdpbusd, one instruction per 64 u8 x s8 products.
#include "isa/avx512/mm512_quant.h"
#include "isa/avx512/mm512_rows.h"
#include "isa/avx512vnni/matmul.h"

namespace kq::isa_avx512vnni {

void register_matmul(KernelSet& ks) {
    isa_avx512::register_quant_kernels<isa_avx512::DotVnni>(ks);
    isa_avx512::register_row_kernels<true>(ks);
    register_matmul_bf16(ks);
}

}  // namespace kq::isa_avx512vnni
