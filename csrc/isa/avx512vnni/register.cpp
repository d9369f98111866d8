// Registers this folder's kernels into a KernelSet (see core/kernels.h).
// Everything in csrc/isa/avx512vnni/ is compiled with the flags listed for
// "avx512vnni" in CMakeLists.txt; nothing else in the project sees them.
#include "core/kernels.h"
#include "isa/avx512vnni/matmul.h"

void kq_register_avx512vnni(kq::KernelSet& ks) {
    kq::isa_avx512vnni::register_matmul(ks);
}
