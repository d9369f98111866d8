// Registers this folder's kernels into a KernelSet (see core/kernels.h).
// Everything in csrc/isa/avx2/ is compiled with the flags listed for
// "avx2" in CMakeLists.txt; nothing else in the project sees them.
#include "core/kernels.h"
#include "isa/avx2/matmul.h"
#include "isa/avx2/quantizers.h"

void kq_register_avx2(kq::KernelSet& ks) {
    kq::isa_avx2::register_quantizers(ks);
    kq::isa_avx2::register_convert(ks);
    kq::isa_avx2::register_matmul(ks);
    kq::isa_avx2::register_softmax(ks);
}
