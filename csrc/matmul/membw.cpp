#include "matmul/membw.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/threadpool.h"

namespace kq {

double read_bandwidth_gbs(size_t bytes, int threads, int reps) {
    const size_t words = bytes / sizeof(uint64_t) / 64 * 64;
    std::vector<uint64_t> buf(words);
    std::memset(buf.data(), 1, words * sizeof(uint64_t));  // fault the pages in
    const int64_t chunks = static_cast<int64_t>(words / 8192);  // 64 KiB tasks
    volatile uint64_t sink = 0;
    double best = 0.0;
    for (int rep = 0; rep < reps; ++rep) {
        const auto t0 = std::chrono::steady_clock::now();
        parallel_for(chunks, 64, threads, [&](int64_t c0, int64_t c1) {
            // Eight independent XOR chains: the compiler vectorises this into
            // wide loads; the loop is bound by memory, not by the ALU.
            uint64_t acc[8] = {};
            for (size_t i = static_cast<size_t>(c0) * 8192; i < static_cast<size_t>(c1) * 8192; i += 8)
                for (int j = 0; j < 8; ++j) acc[j] ^= buf[i + j];
            uint64_t s = 0;
            for (uint64_t a : acc) s ^= a;
            sink = sink ^ s;
        });
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double gbs = static_cast<double>(chunks) * 8192 * sizeof(uint64_t) / dt / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

}  // namespace kq
