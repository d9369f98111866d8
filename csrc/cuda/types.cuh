// The CUDA backend's list of types: one row per type with device kernels,
// naming its quantizer (quant_*.cuh), chunk dequantizer (dequant.cuh) and
// dp4a unpacker (vecdot.cuh); "-" columns are filled by the float paths.
// Each kernel file builds its dispatch table from this list, so a type is
// added here once. Type facts (block and row sizes) come from the traits
// table (core/traits.h).
#pragma once

#include "cuda/dequant.cuh"
#include "cuda/quant_kquants.cuh"
#include "cuda/quant_legacy.cuh"
#include "cuda/vecdot.cuh"

// X(ID, Quantizer, Dequantizer, VecDot)
#define KQ_CUDA_QUANT_TYPES(X)                         \
    X(Q4_0, QuantQ4_0, DeqQ4_0, VecQ4_0)               \
    X(Q4_1, QuantQ4_1, DeqQ4_1, VecQ4_1)               \
    X(Q5_0, QuantQ5_0, DeqQ5_0, VecQ5_0)               \
    X(Q5_1, QuantQ5_1, DeqQ5_1, VecQ5_1)               \
    X(Q8_0, QuantQ8_0, DeqQ8<block_q8_0>, VecQ8_0)     \
    X(Q8_1, QuantQ8_1, DeqQ8<block_q8_1>, VecQ8_1)     \
    X(Q2_K, QuantQ2_K, DeqQ2_K, VecQ2_K)               \
    X(Q3_K, QuantQ3_K, DeqQ3_K, VecQ3_K)               \
    X(Q4_K, QuantQ4_K, DeqQ4_K, VecQ4_K)               \
    X(Q5_K, QuantQ5_K, DeqQ5_K, VecQ5_K)               \
    X(Q6_K, QuantQ6_K, DeqQ6_K, VecQ6_K)               \
    X(Q8_K, QuantQ8_K, DeqQ8_K, VecQ8_K)

// X(ID, Dequantizer) for the float weight types.
#define KQ_CUDA_FLOAT_TYPES(X) \
    X(F32, DeqF32)             \
    X(F16, DeqF16)             \
    X(BF16, DeqBF16)
