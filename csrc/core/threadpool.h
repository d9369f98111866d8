// A persistent thread pool. Workers are created once (grown lazily to the
// largest thread count ever asked for); between jobs they poll for the next
// one for a short while, then sleep on a condition variable. No threads are
// created per call.
#pragma once
#include <cstdint>
#include <functional>

namespace kq {

// Default thread count: KQUANTS_THREADS if set, else the hardware concurrency.
int default_threads();
// threads <= 0 means default_threads().
int resolve_threads(int threads);

// Runs fn(begin, end) over [0, n) split into chunks of `grain` items, on up to
// `threads` threads (the caller is one of them). Chunks are handed out
// dynamically. The first exception thrown by fn is rethrown in the caller
// after all workers have stopped. Not re-entrant: a nested call runs serially.
void parallel_for(int64_t n, int64_t grain, int threads,
                  const std::function<void(int64_t begin, int64_t end)>& fn);

// Runs fn(thread_index, n_threads) once on each of n_threads threads.
void parallel_run(int n_threads, const std::function<void(int ith, int nth)>& fn);

}  // namespace kq
