#include "matmul/matmul.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/threadpool.h"
#include "matmul/packed.h"

namespace kq {
namespace {

// Weight bytes per row chunk of the mat-mat path: the chunk stays in L2 while
// the kernel sweeps the activation columns across it (the kernels block the
// columns themselves). Well under the 1-2 MiB L2 of current cores.
constexpr size_t kWeightBlockBytes = 256 * 1024;
// Mat-vec: weight bytes per task handed to a thread. Large enough to
// amortise the hand-off (~100 ns), small enough to balance the threads.
constexpr size_t kMatVecTaskBytes = 64 * 1024;
// Up to this many activation columns every weight byte is used so few times
// that the product is memory bound: split over rows in small tasks.
constexpr int64_t kMatVecMaxCols = 4;
// Mat-vec: weight bytes per thread below which another thread costs more
// than it saves. The pool's workers poll between jobs (threadpool.cpp), so
// handing one a job costs ~1 us, the time to stream ~16 KiB at 15 GB/s;
// 32 KiB keeps the hand-off under half of the work.
constexpr size_t kMatVecBytesPerThread = 32 * 1024;

int64_t align_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

struct AlignedBuf {
    std::vector<uint8_t> mem;
    void* get(size_t bytes) {
        if (mem.size() < bytes + 64) mem.resize(bytes + 64);
        const uintptr_t p = reinterpret_cast<uintptr_t>(mem.data());
        return reinterpret_cast<void*>((p + 63) & ~static_cast<uintptr_t>(63));
    }
};

thread_local AlignedBuf t_scratch[4];  // matmul_scratch: the ISA kernels' panels
thread_local AlignedBuf t_act;         // the driver's activations (caller thread)
thread_local AlignedBuf t_wpack;       // a row chunk packed for this call
thread_local AlignedBuf t_qrow;        // one quantized activation row before packing

std::string upper(const char* s) {
    std::string u = s;
    for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return u;
}

const TypeKernels& matmul_kernels(const TypeTraits& t, const KernelSet& ks) {
    const TypeKernels& tk = ks[t.id];
    if (!tk.gemm) throw Error("matmul: type " + upper(t.name) + " has no matrix multiplication");
    return tk;
}

}  // namespace

void* matmul_scratch(int slot, size_t bytes) { return t_scratch[slot & 3].get(bytes); }

size_t prepared_row_bytes(const TypeTraits& t, int64_t k, const KernelSet* ks) {
    const TypeKernels& tk = matmul_kernels(t, ks ? *ks : kernels());
    const size_t src = row_size(t, k);  // validates k
    if (!tk.layout) return 0;
    const size_t rb = packed::packed_row_bytes(*tk.layout, k);
    // Rows the layout would pad are multiplied on ggml's rows (gemv_rows)
    // at n <= 4: they are not prepared, so both paths see the same bytes.
    return tk.gemv_rows && rb > src ? 0 : rb;
}

void prepare_weights(const TypeTraits& t, const void* w, int64_t m, int64_t k, void* out, int threads,
                     const KernelSet* ks) {
    const TypeKernels& tk = matmul_kernels(t, ks ? *ks : kernels());
    if (!tk.layout) throw Error("matmul: type " + upper(t.name) + " has no prepared layout in this kernel set");
    const size_t src = row_size(t, k), dst = packed::packed_row_bytes(*tk.layout, k);
    const auto pack = tk.pack_row ? tk.pack_row : tk.layout->pack_row;
    parallel_for(m, std::max<int64_t>(1, static_cast<int64_t>(kMatVecTaskBytes / dst)), threads,
                 [&](int64_t r0, int64_t r1) {
                     for (int64_t r = r0; r < r1; ++r)
                         pack(static_cast<const uint8_t*>(w) + r * src, k, static_cast<uint8_t*>(out) + r * dst);
                 });
}

void matmul(const TypeTraits& t, const void* w, int64_t m, int64_t k, const float* x, int64_t n, float* y,
            int threads, const KernelSet* ks_in, bool w_packed) {
    const KernelSet& ks = ks_in ? *ks_in : kernels();
    const TypeKernels& tk = matmul_kernels(t, ks);
    if (m < 0 || n < 0 || k <= 0) throw Error("matmul: bad shape");
    const size_t src_row = row_size(t, k);
    const bool padded = tk.layout && packed::packed_row_bytes(*tk.layout, k) > src_row;
    // Mat-vec on ggml's rows where packing would pad them (TypeKernels::gemv_rows).
    // Only there: a PreparedWeight gives the same floats as the unprepared
    // call (test_matmul.py), so both sides must take the same kernel. (Rows
    // for every unprepared n = 1 measured faster than packing per call, e.g.
    // Q4_0 m=4096, k=14336 ~30 -> ~44 GFLOPS, but sum in another order than
    // the packed kernel of prepared weights.)
    const bool rows = n <= kMatVecMaxCols && !w_packed && tk.gemv_rows && padded;
    const packed::WeightLayout* L = rows ? nullptr : tk.layout;
    const gemm_fn gemm = rows ? tk.gemv_rows : tk.gemm;
    if (w_packed && !L)
        throw Error("matmul: prepared " + upper(t.name) + " weights need a kernel set with a packed layout (not '" +
                    ks.isa + "')");
    // Mat-mat on padded rows: the whole groups of each row packed as usual
    // (k_main elements), the `tail` remaining lane blocks of 16 rows at a
    // time in tail groups (TypeKernels::gemm_tail).
    const int64_t lane_blocks = L ? k / L->lb : 0;
    const int64_t tail = (L && !w_packed && padded && tk.gemm_tail) ? lane_blocks % packed::kGroup : 0;
    const int64_t k_main = tail ? (lane_blocks - tail) * L->lb : k;
    const size_t w_row = L ? packed::packed_row_bytes(*L, k_main) : src_row;
    const TypeTraits& at = type_traits(L ? L->act : t.vec_dot_type);
    const size_t q_row = row_size(at, k);
    const size_t a_row = L ? packed::act_row_bytes(L->lb, k_main) : q_row;
    const size_t a_tail = static_cast<size_t>(tail) * packed::act_group_bytes(L ? L->lb : 32);  // per column
    if (m == 0 || n == 0) return;
    threads = resolve_threads(threads);

    // 1. Activations -> vec_dot_type (-> packed), once per call. F32 rows
    // are used as they are.
    const uint8_t* a = reinterpret_cast<const uint8_t*>(x);
    const uint8_t* at_tail = nullptr;
    if (L || at.id != TypeId::F32) {
        const quantize_row_fn q = ks[at.id].quantize;
        uint8_t* buf = static_cast<uint8_t*>(t_act.get((a_row + a_tail) * static_cast<size_t>(n)));
        uint8_t* tbuf = buf + a_row * static_cast<size_t>(n);
        parallel_for(n, std::max<int64_t>(1, 16384 / k), threads, [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) {
                if (!L) {
                    q(x + c * k, buf + c * a_row, k, nullptr);
                    continue;
                }
                void* tmp = t_qrow.get(q_row);
                q(x + c * k, tmp, k, nullptr);
                if (k_main) packed::pack_act_row(*L, tmp, k_main, buf + c * a_row);
                if (tail) packed::pack_act_tail(*L, tmp, k_main, tail, tbuf + c * a_tail);
            }
        });
        a = buf;
        at_tail = tbuf;
    }

    // 2. Weights: chunks of rows per task, packed on the fly unless prepared.
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const bool pack = L && !w_packed;
    const auto pack_row = pack ? (tk.pack_row ? tk.pack_row : L->pack_row) : nullptr;
    // Tail groups hold 16 rows: chunks start on multiples of 16 then.
    const int64_t align = rows ? 1 : std::max<int64_t>(tail ? packed::kGroup : 1, tk.gemm_row_align);
    const size_t chunk_row = w_row + (tail ? static_cast<size_t>(tail) * L->group_bytes / packed::kGroup : 0);
    int64_t grain;
    if (n <= kMatVecMaxCols) {
        // Mat-vec: every weight byte is used n times; small tasks over rows,
        // and no more threads than the bytes keep busy.
        grain = align_up(std::max<int64_t>(1, static_cast<int64_t>(kMatVecTaskBytes / chunk_row)), align);
        const size_t bytes = static_cast<size_t>(m) * chunk_row;
        threads = static_cast<int>(std::min<size_t>(threads, std::max<size_t>(1, bytes / kMatVecBytesPerThread)));
    } else {
        // Mat-mat: L2-sized row chunks (or the kernel's minimum), at least 4
        // per thread for balance.
        grain = std::max<int64_t>({1, static_cast<int64_t>(kWeightBlockBytes / chunk_row), tk.gemm_min_rows});
        grain = align_up(std::min(grain, (m + 4 * threads - 1) / (4 * threads)), align);
        // Prepared (or unpacked) weights: nothing to keep in L2 between a
        // pack and its multiply, and every gemm call streams all n
        // activation columns once, so a task takes a large share of the
        // rows (two per thread) in one call. At k=14336, n=512, 22-row
        // calls re-read the 13 MB of activations 47 times per 1024 rows.
        if (!pack) grain = align_up(std::max(grain, (m + 2 * threads - 1) / (2 * threads)), align);
    }
    // A task packs and multiplies `grain` rows at a time even when it was
    // handed more (one thread runs the whole range): the packed rows stay in
    // L2 between the two steps.
    auto run = [&](int64_t r_begin, int64_t r_end) {
        const int64_t step = pack ? grain : r_end - r_begin;
        for (int64_t r0 = r_begin; r0 < r_end; r0 += step) {
            const int64_t r1 = std::min(r_end, r0 + step), nr = r1 - r0;
            const uint8_t* wrows = w_packed ? wb + r0 * w_row : wb + r0 * src_row;
            const size_t main_bytes = w_row * static_cast<size_t>(nr);
            if (pack) {
                const int64_t tiles = (nr + packed::kGroup - 1) / packed::kGroup;
                uint8_t* p = static_cast<uint8_t*>(
                    t_wpack.get(main_bytes + static_cast<size_t>(tiles * tail) * L->group_bytes));
                if (k_main)
                    for (int64_t r = r0; r < r1; ++r) pack_row(wb + r * src_row, k_main, p + (r - r0) * w_row);
                if (tail)
                    packed::pack_weight_tail(*L, pack_row, wb + r0 * src_row, src_row, nr, k_main, tail,
                                             p + main_bytes);
                wrows = p;
            }
            if (k_main)
                gemm(k_main, wrows, w_row, nr, a, a_row, n, y + r0, m);
            else  // all of k in the tail, which adds to y
                for (int64_t c = 0; c < n; ++c) std::fill(y + c * m + r0, y + c * m + r1, 0.0f);
            if (tail) tk.gemm_tail(tail, wrows + main_bytes, nr, at_tail, a_tail, n, y + r0, m);
        }
    };
    parallel_for(m, grain, threads, run);
}

}  // namespace kq
