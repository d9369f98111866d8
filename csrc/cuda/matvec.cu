// kq::cuda::matmul: the mat-vec path (dp4a) and the dispatch to the
// tensor-core path (matmul_mma.cu).
//
// Mat-vec (n <= kMaxCols columns of x per pass):
//   1. x is quantized to 8 bits per chunk of 32 values (one warp per chunk):
//      xd = max|x| / 127, xq = round(x / xd), plus the sums of xq over each
//      half chunk (vecdot.cuh uses them for the formats' offsets and mins);
//   2. one warp per weight row: lane L takes chunks L, L+32, ... of the row,
//      unpacks the weight chunk once and dots it with every column (8 dp4a
//      per column), then the warp reduces. For the k-quants, lanes 8s..8s+7
//      read the 8 chunks of one super-block: neighbouring lanes read
//      neighbouring bytes.
// Float weights (F32/F16/BF16) dot in float32 without quantizing x.
#include <cuda_runtime.h>

#include <string>

#include "cuda/buffer.h"
#include "cuda/common.cuh"
#include "cuda/timing.h"
#include "cuda/matmul_internal.h"
#include "cuda/types.cuh"
#include "gpu/cuda.h"

namespace kq::cuda {
namespace {

constexpr int kMaxCols = 8;        // columns of x per mat-vec pass
constexpr int kWarpsPerBlock = 4;  // weight rows per thread block
constexpr unsigned kFull = 0xffffffffu;

// One warp per chunk of 32 activations.
__global__ void quantize_act(const float* __restrict__ x, int64_t chunks, int8_t* __restrict__ xq,
                             float* __restrict__ xd, int* __restrict__ xs) {
    const int64_t c = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (c >= chunks) return;  // whole warps leave together
    const float v = x[32 * c + lane];
    float amax = fabsf(v);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(kFull, amax, off));
    const float d = amax / 127.0f;
    const int q = amax > 0.0f ? __float2int_rn(v / d) : 0;
    xq[32 * c + lane] = static_cast<int8_t>(q);
    int s = q;  // xor offsets below 16 stay within each half of the warp
#pragma unroll
    for (int off = 8; off > 0; off >>= 1) s += __shfl_xor_sync(kFull, s, off);
    if (lane == 0) {
        xd[c] = d;
        xs[2 * c] = s;
    }
    if (lane == 16) xs[2 * c + 1] = s;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFull, v, off);
    return v;
}

template <class V>
__global__ void matvec_q(const uint8_t* __restrict__ w, size_t row_bytes, int64_t m, int64_t k,
                         const int8_t* __restrict__ xq, const float* __restrict__ xd, const int* __restrict__ xs,
                         int ncols, float* __restrict__ y) {
    using Block = typename V::Block;
    const int lane = threadIdx.x % 32;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (row >= m) return;
    const int64_t nchunks = k / 32;
    const Block* wr = reinterpret_cast<const Block*>(w + row * row_bytes);
    float acc[kMaxCols];
#pragma unroll
    for (int j = 0; j < kMaxCols; ++j) acc[j] = 0.0f;
    for (int64_t c = lane; c < nchunks; c += 32) {
        dev::Unpacked u;
        V::unpack(wr[c / V::kParts], static_cast<int>(c % V::kParts), u);
#pragma unroll
        for (int j = 0; j < kMaxCols; ++j) {
            if (j < ncols) {
                const int4* ap = reinterpret_cast<const int4*>(xq + j * k + 32 * c);  // 32-byte aligned
                const int4 a0 = ap[0], a1 = ap[1];
                const int a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
                const int64_t sc = j * nchunks + c;
                acc[j] += dev::chunk_dot(u, a, xd[sc], xs[2 * sc], xs[2 * sc + 1]);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < kMaxCols; ++j) {
        if (j < ncols) {
            const float s = warp_sum(acc[j]);
            if (lane == 0) y[j * m + row] = s;
        }
    }
}

template <class D>
__global__ void matvec_f(const uint8_t* __restrict__ w, size_t row_bytes, int64_t m, int64_t k,
                         const float* __restrict__ x, int ncols, float* __restrict__ y) {
    const int lane = threadIdx.x % 32;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
    if (row >= m) return;
    const uint8_t* wr = w + row * row_bytes;
    float acc[kMaxCols];
#pragma unroll
    for (int j = 0; j < kMaxCols; ++j) acc[j] = 0.0f;
    for (int64_t i = lane; i < k; i += 32) {
        const float wv = D::load(wr, i);
#pragma unroll
        for (int j = 0; j < kMaxCols; ++j)
            if (j < ncols) acc[j] += wv * x[j * k + i];
    }
#pragma unroll
    for (int j = 0; j < kMaxCols; ++j) {
        if (j < ncols) {
            const float s = warp_sum(acc[j]);
            if (lane == 0) y[j * m + row] = s;
        }
    }
}

// Runs columns [j0, j0 + ncols) of one call. act: the quantized x of the
// whole call (quantized types) or nullptr (float types).
struct ActQ8 {
    int8_t* xq;
    float* xd;
    int* xs;
};
using vec_fn = void (*)(const uint8_t* w, size_t row_bytes, int64_t m, int64_t k, const float* x, const ActQ8* act,
                        int64_t j0, int ncols, float* y);

template <class V>
void launch_q(const uint8_t* w, size_t row_bytes, int64_t m, int64_t k, const float*, const ActQ8* a, int64_t j0,
              int ncols, float* y) {
    const int64_t nchunks = k / 32;
    matvec_q<V><<<grid_for(m, kWarpsPerBlock), 32 * kWarpsPerBlock>>>(
        w, row_bytes, m, k, a->xq + j0 * k, a->xd + j0 * nchunks, a->xs + 2 * j0 * nchunks, ncols, y + j0 * m);
}

template <class D>
void launch_f(const uint8_t* w, size_t row_bytes, int64_t m, int64_t k, const float* x, const ActQ8*, int64_t j0,
              int ncols, float* y) {
    matvec_f<D><<<grid_for(m, kWarpsPerBlock), 32 * kWarpsPerBlock>>>(w, row_bytes, m, k, x + j0 * k, ncols,
                                                                     y + j0 * m);
}

struct VecEntry {
    TypeId id;
    vec_fn run;
    bool quantized;  // needs x quantized to 8 bits
};

#define KQ_VEC_Q(ID, Q, D, V) {TypeId::ID, launch_q<dev::V>, true},
#define KQ_VEC_F(ID, D) {TypeId::ID, launch_f<dev::D>, false},
const VecEntry kVecTable[] = {KQ_CUDA_FLOAT_TYPES(KQ_VEC_F) KQ_CUDA_QUANT_TYPES(KQ_VEC_Q)};
#undef KQ_VEC_Q
#undef KQ_VEC_F

const VecEntry* find_vec(TypeId id) {
    for (const VecEntry& e : kVecTable)
        if (e.id == id) return &e;
    return nullptr;
}

// Scratch for x quantized to 8 bits (empty for float weights).
struct ActScratch {
    Buffer q, d, s;
    ActScratch(const VecEntry& e, int64_t n, int64_t k)
        : q(e.quantized ? static_cast<size_t>(n * k) : 0),
          d(e.quantized ? static_cast<size_t>(n * (k / 32)) * sizeof(float) : 0),
          s(e.quantized ? static_cast<size_t>(2 * n * (k / 32)) * sizeof(int) : 0) {}
    ActQ8 act() const { return ActQ8{q.as<int8_t>(), d.as<float>(), s.as<int>()}; }
};

// Queues the mat-vec passes (no synchronisation).
void enqueue_matvec(const VecEntry& e, const void* w, size_t row_bytes, int64_t m, int64_t k, const float* x,
                    int64_t n, float* y, const ActQ8& act) {
    const int64_t chunks = n * (k / 32);
    if (e.quantized)
        quantize_act<<<grid_for(chunks, kWarpsPerBlock), 32 * kWarpsPerBlock>>>(x, chunks, act.xq, act.xd, act.xs);
    for (int64_t j0 = 0; j0 < n; j0 += kMaxCols) {
        const int cols = static_cast<int>(n - j0 < kMaxCols ? n - j0 : kMaxCols);
        e.run(static_cast<const uint8_t*>(w), row_bytes, m, k, x, &act, j0, cols, y);
    }
}

// Checks the arguments; returns the type's entry and resolves path.
const VecEntry& check_matmul(const TypeTraits& t, const void* w, int64_t m, int64_t k, const float* x, int64_t n,
                             float* y, MatmulPath& path, const std::string& what) {
    if (m < 0 || n < 0 || k <= 0) throw Error(what + ": shapes must be m >= 0, n >= 0, k > 0");
    row_size(t, k);  // throws unless k is a multiple of the block size
    const VecEntry* e = find_vec(t.id);
    if (!e) throw Error(what + ": no CUDA matmul for this type");
    check_aligned(w, 4, what.c_str(), "w");
    check_aligned(x, 4, what.c_str(), "x");
    check_aligned(y, 4, what.c_str(), "y");
    if (path == MatmulPath::Auto) path = n <= kMaxCols ? MatmulPath::Vec : MatmulPath::MMA;
    return *e;
}

}  // namespace

bool has_matmul(TypeId id) { return find_vec(id) != nullptr && has_mma(id); }

void matmul(const TypeTraits& t, const void* w, int64_t m, int64_t k, const float* x, int64_t n, float* y,
            MatmulPath path) {
    require("matmul (device='cuda')");
    const std::string what = std::string("matmul ") + t.name + " (cuda)";
    const VecEntry& e = check_matmul(t, w, m, k, x, n, y, path, what);
    if (m == 0 || n == 0) return;
    const size_t rs = row_size(t, k);
    if (path == MatmulPath::Vec) {
        const ActScratch scratch(e, n, k);
        enqueue_matvec(e, w, rs, m, k, x, n, y, scratch.act());
    } else {
        enqueue_mma(t, w, rs, m, k, x, n, y, what.c_str());
    }
    check_launch(what.c_str());
}

double bench_matmul(const TypeTraits& t, const void* w, int64_t m, int64_t k, const float* x, int64_t n, float* y,
                    MatmulPath path, int iters) {
    require("bench matmul (cuda)");
    const std::string what = std::string("bench matmul ") + t.name + " (cuda)";
    const VecEntry& e = check_matmul(t, w, m, k, x, n, y, path, what);
    if (m == 0 || n == 0) return 0.0;
    const size_t rs = row_size(t, k);
    if (path == MatmulPath::Vec) {
        const ActScratch scratch(e, n, k);
        const ActQ8 act = scratch.act();
        return time_enqueued([&] { enqueue_matvec(e, w, rs, m, k, x, n, y, act); }, iters, what.c_str());
    }
    return time_enqueued([&] { enqueue_mma(t, w, rs, m, k, x, n, y, what.c_str()); }, iters, what.c_str());
}

}  // namespace kq::cuda
