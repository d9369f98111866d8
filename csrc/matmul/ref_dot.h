// Scalar reference dot products: the oracle of every ISA matmul kernel.
//
// One function per weight type, dot(weight row, activation row) with the
// activation row in the type's vec_dot_type (see core/traits.h), computed
// the way ggml's generic C code does: exact integer sums per block, scaled in
// float. The generic gemm is these dot products in a double loop.
#pragma once
#include <cstdint>

#include "core/kernels.h"
#include "core/traits.h"

namespace kq::ref {

struct MatmulKernels {
    TypeId id;
    vec_dot_fn vec_dot;
    gemm_fn gemm;
};

// The reference entries of weight type `id`, or nullptr when the type has no
// matmul (the activation-only formats Q8_1 and Q8_K).
const MatmulKernels* matmul_kernels(TypeId id);

}  // namespace kq::ref
