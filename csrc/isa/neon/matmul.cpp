#include "isa/neon/matmul.h"

namespace kq::isa_neon {

void register_matmul(KernelSet& ks) {
    register_matmul_float(ks);
    register_matmul_quant(ks);
}

}  // namespace kq::isa_neon
