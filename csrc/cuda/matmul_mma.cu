// Tensor-core matmul for prompt batches: y[n, m] = x[n, k] @ W[m, k]^T.
//
// Each thread block computes a BM x BN tile of W-rows x tokens. Per step of
// BK = 32 along k, threads 0..63 dequantize one 32-value chunk of one weight
// row each (dequant.cuh) into shared memory as fp16, threads 64..127 convert
// the matching 32 floats of one token row; then the four warps (2 x 2, each a
// 32 x 32 sub-tile) run 16x16x16 fp16 MMAs (WMMA API) with fp32 accumulation.
// The tile goes through shared memory to the output so edges are masked and
// stores are coalesced along m.
//
// fp16 holds weights exactly enough (dequantized values carry <= 11
// significant bits for the 4-6 bit formats) but x is rounded to 11 bits and
// limited to |x| < 65504; the tests bound the error relative to sum |w*x|.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include "cuda/common.cuh"
#include "cuda/matmul_internal.h"
#include "cuda/types.cuh"

namespace kq::cuda {
namespace {

constexpr int BM = 64, BN = 64, BK = 32;
constexpr int kLdAB = BK + 8;  // fp16 row pitch: multiple of 8 (WMMA), 80 bytes skews the banks
constexpr int kLdC = BN + 4;   // fp32 row pitch: multiple of 4 (WMMA)
constexpr int kMmaThreads = 128;

template <class D>
__global__ void __launch_bounds__(kMmaThreads)
    mm_wmma(const uint8_t* __restrict__ w, size_t row_bytes, int64_t m, int64_t k, const float* __restrict__ x,
            int64_t n, float* __restrict__ y) {
    using namespace nvcuda;
    __shared__ __align__(32) half Ws[BM * kLdAB];
    __shared__ __align__(32) half Xs[BN * kLdAB];
    __shared__ __align__(32) float Cs[BM * kLdC];

    const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;
    const int64_t n0 = static_cast<int64_t>(blockIdx.y) * BN;
    const int tid = threadIdx.x, warp = tid / 32;
    const int wm = warp / 2, wn = warp % 2;  // this warp's 32 x 32 sub-tile

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    const int64_t nchunks = (k + BK - 1) / BK;
    for (int64_t c = 0; c < nchunks; ++c) {
        float v[32];
        if (tid < BM) {
            const int64_t r = m0 + tid;
            if (r < m) {
                dev::load_chunk<D>(w + r * row_bytes, k, c, v);
            } else {
#pragma unroll
                for (int l = 0; l < 32; ++l) v[l] = 0.0f;
            }
#pragma unroll
            for (int l = 0; l < 32; ++l) Ws[tid * kLdAB + l] = __float2half_rn(v[l]);
        } else {
            const int rr = tid - BM;
            const int64_t j = n0 + rr;
#pragma unroll
            for (int l = 0; l < 32; ++l) {
                const int64_t col = BK * c + l;
                Xs[rr * kLdAB + l] = __float2half_rn(j < n && col < k ? x[j * k + col] : 0.0f);
            }
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> b[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], Ws + (wm * 32 + 16 * i) * kLdAB + kk, kLdAB);
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], Xs + (wn * 32 + 16 * j) * kLdAB + kk, kLdAB);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(Cs + (wm * 32 + 16 * i) * kLdC + wn * 32 + 16 * j, acc[i][j], kLdC,
                                    wmma::mem_row_major);
    __syncthreads();
    for (int idx = tid; idx < BM * BN; idx += kMmaThreads) {
        const int ml = idx % BM, nl = idx / BM;
        if (m0 + ml < m && n0 + nl < n) y[(n0 + nl) * m + m0 + ml] = Cs[ml * kLdC + nl];
    }
}

using mma_fn = void (*)(const uint8_t* w, size_t row_bytes, int64_t m, int64_t k, const float* x, int64_t n,
                        float* y);

template <class D>
void launch(const uint8_t* w, size_t row_bytes, int64_t m, int64_t k, const float* x, int64_t n, float* y) {
    const dim3 grid(static_cast<unsigned>((m + BM - 1) / BM), static_cast<unsigned>((n + BN - 1) / BN));
    mm_wmma<D><<<grid, kMmaThreads>>>(w, row_bytes, m, k, x, n, y);
}

struct MmaEntry {
    TypeId id;
    mma_fn run;
};

#define KQ_MMA_Q(ID, Q, D, V) {TypeId::ID, launch<dev::D>},
#define KQ_MMA_F(ID, D) {TypeId::ID, launch<dev::D>},
const MmaEntry kMmaTable[] = {KQ_CUDA_FLOAT_TYPES(KQ_MMA_F) KQ_CUDA_QUANT_TYPES(KQ_MMA_Q)};
#undef KQ_MMA_Q
#undef KQ_MMA_F

const MmaEntry* find_mma(TypeId id) {
    for (const MmaEntry& e : kMmaTable)
        if (e.id == id) return &e;
    return nullptr;
}

}  // namespace

bool has_mma(TypeId id) { return find_mma(id) != nullptr; }

void enqueue_mma(const TypeTraits& t, const void* w, size_t row_bytes, int64_t m, int64_t k, const float* x, int64_t n,
                 float* y, const char* what) {
    const MmaEntry* e = find_mma(t.id);
    if (!e) throw Error(std::string(what) + ": no tensor-core matmul for this type");
    if ((n + BN - 1) / BN > 65535) throw Error(std::string(what) + ": too many columns for one launch");
    e->run(static_cast<const uint8_t*>(w), row_bytes, m, k, x, n, y);
}

}  // namespace kq::cuda
