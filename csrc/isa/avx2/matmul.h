// Matmul kernels of the avx2 folder (see core/kernels.h for the entries).
#pragma once
#include "core/kernels.h"

namespace kq::isa_avx2 {

// Installs this folder's vec_dot / gemm entries into ks.
void register_matmul(KernelSet& ks);

void register_matmul_float(KernelSet& ks);  // matmul_float.cpp
void register_matmul_quant(KernelSet& ks);  // matmul_quant.cpp

// Attention's softmax row (softmax.cpp).
void register_softmax(KernelSet& ks);

}  // namespace kq::isa_avx2
