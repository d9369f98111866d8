// Memory read bandwidth, measured the way a mat-vec reads its weights: one
// streaming pass over a buffer larger than the last-level cache, split over
// `threads` threads of the pool. For benchmarks (benchmarks/bench_matmul.py)
// to express mat-vec throughput as a fraction of what the machine delivers.
#pragma once
#include <cstddef>

namespace kq {

// Best of `reps` passes over `bytes` bytes (allocated and touched first), in
// GB/s (1e9 bytes per second).
double read_bandwidth_gbs(size_t bytes, int threads, int reps);

}  // namespace kq
