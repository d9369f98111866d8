// Shared helpers of the CUDA backend's host code: error checks and launch
// geometry. Device-side helpers are in device_math.cuh.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/error.h"
#include "core/traits.h"
#include "cuda/device_math.cuh"

namespace kq::cuda {

// Throws kq::Error "<what>: <CUDA error>" when e is not cudaSuccess.
void check(cudaError_t e, const char* what);
// After a launch: reports launch errors and, after synchronising the default
// stream, errors the kernel hit while running.
void check_launch(const char* what);
// Throws kq::Error unless p is aligned to `align` bytes.
void check_aligned(const void* p, size_t align, const char* what, const char* arg);

// Threads per block of the simple element/block-parallel kernels.
constexpr int kThreads = 128;
inline unsigned grid_for(int64_t items, int threads = kThreads) {
    return static_cast<unsigned>((items + threads - 1) / threads);
}

}  // namespace kq::cuda
