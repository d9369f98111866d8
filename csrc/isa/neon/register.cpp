// Registers the NEON kernels (AArch64 only; see CMakeLists.txt).
#include "core/kernels.h"

void kq_register_neon(kq::KernelSet& ks) {
    (void)ks;
}
