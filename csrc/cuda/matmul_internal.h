// Internal interface between the matmul dispatcher (matvec.cu) and the
// tensor-core path (matmul_mma.cu).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/traits.h"

namespace kq::cuda {

bool has_mma(TypeId id);
// Queues y[n, m] = x[n, k] @ W[m, k]^T on the tensor cores (no
// synchronisation); arguments already checked (device pointers, row_bytes =
// row_size(t, k)). Throws kq::Error for shapes it cannot launch.
void enqueue_mma(const TypeTraits& t, const void* w, size_t row_bytes, int64_t m, int64_t k, const float* x, int64_t n,
                 float* y, const char* what);

}  // namespace kq::cuda
