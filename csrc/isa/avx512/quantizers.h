// Fast quantizers of this ISA (lane templates in csrc/quants/lanes/,
// instantiated with this folder's vector type). Byte-identical to the
// reference quantizers, with and without importance weights.
#pragma once
#include "core/kernels.h"

namespace kq::isa_avx512 {

// Sets the quantize entry of every type this ISA accelerates.
void register_quantizers(KernelSet& ks);

}  // namespace kq::isa_avx512
