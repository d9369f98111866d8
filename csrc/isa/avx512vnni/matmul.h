// Matmul kernels of the avx512vnni folder (see core/kernels.h for the entries).
// Registered after the avx512 folder's: entries set here replace those.
#pragma once
#include "core/kernels.h"

namespace kq::isa_avx512vnni {

void register_matmul(KernelSet& ks);      // matmul_quant.cpp: all of this folder's entries
void register_matmul_bf16(KernelSet& ks);  // matmul_bf16.cpp

}  // namespace kq::isa_avx512vnni
