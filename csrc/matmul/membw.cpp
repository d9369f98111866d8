#include "matmul/membw.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/kernels.h"
#include "core/threadpool.h"

namespace kq {

uint64_t stream_read_ref(const void* p, size_t n) {
    const uint64_t* w = static_cast<const uint64_t*>(p);
    uint64_t acc[8] = {};  // independent chains; the compiler vectorises them
    for (size_t i = 0; i < n / 8; i += 8)
        for (int j = 0; j < 8; ++j) acc[j] ^= w[i + j];
    uint64_t s = 0;
    for (uint64_t a : acc) s ^= a;
    return s;
}

double read_bandwidth_gbs(size_t bytes, int threads, int reps) {
    constexpr size_t kTask = 64 * 1024;  // bytes per task handed to a thread
    const size_t tasks = bytes / kTask;
    std::vector<uint64_t> buf(tasks * kTask / sizeof(uint64_t) + 8);
    uint8_t* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
    std::memset(base, 1, tasks * kTask);  // fault the pages in
    const stream_read_fn read = kernels().stream_read;
    volatile uint64_t sink = 0;
    double best = 0.0;
    for (int rep = 0; rep < reps; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        parallel_for(static_cast<int64_t>(tasks), 64, threads, [&](int64_t c0, int64_t c1) {
            sink = sink ^ read(base + c0 * kTask, static_cast<size_t>(c1 - c0) * kTask);
        });
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, static_cast<double>(tasks * kTask) / dt / 1e9);
    }
    return best;
}

}  // namespace kq
