// Registers this folder's kernels into a KernelSet (see core/kernels.h).
// Everything in csrc/isa/avx512/ is compiled with the flags listed for
// "avx512" in CMakeLists.txt; nothing else in the project sees them.
#include "core/kernels.h"
#include "isa/avx512/matmul.h"
#include "isa/avx512/quantizers.h"

void kq_register_avx512(kq::KernelSet& ks) {
    kq::isa_avx512::register_quantizers(ks);
    kq::isa_avx512::register_matmul(ks);
}
