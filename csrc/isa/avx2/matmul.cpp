#include "isa/avx2/matmul.h"

namespace kq::isa_avx2 {

void register_matmul(KernelSet& ks) {
    register_matmul_float(ks);
    register_matmul_quant(ks);
}

}  // namespace kq::isa_avx2
