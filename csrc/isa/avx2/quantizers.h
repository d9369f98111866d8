// Fast quantizers of this ISA (lane templates in csrc/quants/lanes/,
// instantiated with this folder's vector type). Byte-identical to the
// reference quantizers, with and without importance weights.
#pragma once
#include "core/kernels.h"

namespace kq::isa_avx2 {

// Sets the quantize entry of every type this ISA accelerates.
void register_quantizers(KernelSet& ks);

// Sets the dequantize entries of F16 and BF16 (convert.cpp).
void register_convert(KernelSet& ks);

}  // namespace kq::isa_avx2
