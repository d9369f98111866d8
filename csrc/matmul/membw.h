// Memory read bandwidth, measured the way a mat-vec reads its weights: one
// streaming pass over a buffer larger than the last-level cache, split over
// `threads` threads of the pool. For benchmarks (benchmarks/bench_matmul.py)
// to express mat-vec throughput as a fraction of what the machine delivers.
#pragma once
#include <cstddef>
#include <cstdint>

namespace kq {

// The baseline KernelSet::stream_read (64-bit words, vectorised by the compiler).
uint64_t stream_read_ref(const void* p, size_t n);

// Best of `reps` passes over `bytes` bytes (allocated and touched first), in
// GB/s (1e9 bytes per second), with the active kernel set's stream_read.
double read_bandwidth_gbs(size_t bytes, int threads, int reps);

}  // namespace kq
