// Matmul kernels of the avx512 folder (see core/kernels.h for the entries).
#pragma once
#include "core/kernels.h"

namespace kq::isa_avx512 {

// Installs this folder's vec_dot / gemm entries into ks.
void register_matmul(KernelSet& ks);

// Per type family, called by register_matmul (matmul_*.cpp).
void register_matmul_float(KernelSet& ks);
void register_matmul_quant(KernelSet& ks);
// Attention's softmax row (softmax.cpp).
void register_softmax(KernelSet& ks);

}  // namespace kq::isa_avx512
