// Event timing of enqueued device work, for the bench_* entry points.
#pragma once
#include <functional>

namespace kq::cuda {

// Runs enqueue() once (warm-up, checked), then `iters` times between two
// events on the default stream; returns the average seconds per run.
// enqueue must only queue work (no synchronisation, no allocation).
double time_enqueued(const std::function<void()>& enqueue, int iters, const char* what);

}  // namespace kq::cuda
