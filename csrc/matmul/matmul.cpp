#include "matmul/matmul.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/threadpool.h"

namespace kq {
namespace {

// Cache budgets of the blocking below. They are deliberately well under the
// L2 of current cores (1-2 MiB): a row chunk of weights (kWeightBlockBytes)
// and a column block of activations (kActBlockBytes) stay in L2 while the
// kernel sweeps one across the other, with room for the output tile.
constexpr size_t kWeightBlockBytes = 256 * 1024;
constexpr size_t kActBlockBytes = 512 * 1024;
// Mat-vec: weight bytes per task handed to a thread. Large enough to
// amortise the hand-off (~100 ns), small enough to balance the threads.
constexpr size_t kMatVecTaskBytes = 64 * 1024;
// Below this many activation columns the weights are streamed once
// (mat-vec path: memory bound, split over rows only).
constexpr int64_t kMatVecMaxCols = 4;

int64_t align_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

struct AlignedBuf {
    std::vector<uint8_t> mem;
    void* get(size_t bytes) {
        if (mem.size() < bytes + 64) mem.resize(bytes + 64);
        const uintptr_t p = reinterpret_cast<uintptr_t>(mem.data());
        return reinterpret_cast<void*>((p + 63) & ~static_cast<uintptr_t>(63));
    }
};

thread_local AlignedBuf t_scratch[4];
thread_local AlignedBuf t_act;  // the driver's activation buffer (caller thread)

std::string upper(const char* s) {
    std::string u = s;
    for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return u;
}

}  // namespace

void* matmul_scratch(int slot, size_t bytes) { return t_scratch[slot & 3].get(bytes); }

void matmul(const TypeTraits& t, const void* w, int64_t m, int64_t k, const float* x, int64_t n, float* y,
            int threads, const KernelSet* ks_in) {
    const KernelSet& ks = ks_in ? *ks_in : kernels();
    const TypeKernels& tk = ks[t.id];
    if (!tk.gemm) throw Error("matmul: type " + upper(t.name) + " has no matrix multiplication");
    if (m < 0 || n < 0 || k <= 0) throw Error("matmul: bad shape");
    const size_t w_row = row_size(t, k);
    const TypeTraits& at = type_traits(t.vec_dot_type);
    const size_t a_row = row_size(at, k);
    if (m == 0 || n == 0) return;
    threads = resolve_threads(threads);

    // 1. Activations -> vec_dot_type, once per call (F32 needs no copy).
    const uint8_t* a = reinterpret_cast<const uint8_t*>(x);
    if (at.id != TypeId::F32) {
        const quantize_row_fn q = ks[at.id].quantize;
        uint8_t* buf = static_cast<uint8_t*>(t_act.get(a_row * static_cast<size_t>(n)));
        parallel_for(n, std::max<int64_t>(1, 16384 / k), threads, [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) q(x + c * k, buf + c * a_row, k, nullptr);
        });
        a = buf;
    }
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const int64_t align = std::max(1, tk.gemm_row_align);

    // 2a. Mat-vec: every weight byte is used n <= 4 times; split rows only.
    if (n <= kMatVecMaxCols) {
        const int64_t grain = align_up(std::max<int64_t>(1, static_cast<int64_t>(kMatVecTaskBytes / w_row)), align);
        parallel_for(m, grain, threads, [&](int64_t r0, int64_t r1) {
            tk.gemm(k, wb + r0 * w_row, w_row, r1 - r0, a, a_row, n, y + r0, m);
        });
        return;
    }

    // 2b. Mat-mat: a thread takes a chunk of rows (kept in L2) and sweeps the
    // activation columns in L2-sized blocks across it; the kernel tiles rows x
    // columns in registers.
    int64_t rc = align_up(std::max<int64_t>(1, static_cast<int64_t>(kWeightBlockBytes / w_row)), align);
    const int64_t balanced = align_up((m + 4 * threads - 1) / (4 * threads), align);  // >= 4 tasks per thread
    rc = std::max(align, std::min(rc, balanced));
    int64_t cb = n;
    if (!tk.gemm_blocks_k) cb = std::max<int64_t>(4, static_cast<int64_t>(kActBlockBytes / a_row) / 4 * 4);
    parallel_for(m, rc, threads, [&](int64_t r0, int64_t r1) {
        for (int64_t c0 = 0; c0 < n; c0 += cb)
            tk.gemm(k, wb + r0 * w_row, w_row, r1 - r0, a + c0 * a_row, a_row, std::min(cb, n - c0),
                    y + c0 * m + r0, m);
    });
}

}  // namespace kq
