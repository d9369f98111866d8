// Registers the NEON kernels (AArch64 only; see CMakeLists.txt).
#include "core/kernels.h"
#include "isa/neon/matmul.h"

void kq_register_neon(kq::KernelSet& ks) {
    kq::isa_neon::register_matmul(ks);
}
