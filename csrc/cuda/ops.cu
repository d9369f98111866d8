// Activation ops of a forward pass on the device, with the semantics of the
// CPU ops (csrc/ops/ops.h on the runtime branch): RMSNorm, RoPE, softmax,
// causal grouped-query attention over a KV cache, SwiGLU. Results agree with
// the CPU to float rounding (sums run in another order); the tests bound it.
#include <cuda_runtime.h>

#include <string>

#include "cuda/common.cuh"
#include "gpu/cuda.h"

namespace kq::cuda {
namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kRowThreads = 256;  // threads per row for the row reductions
constexpr int kMaxHeadDim = 256;  // attention keeps hd / 32 values per lane in registers
constexpr int kAttnWarps = 4;

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFull, v, off);
    return v;
}

// Sum over a block of kRowThreads threads; every thread gets the result.
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = op(v, __shfl_xor_sync(kFull, v, off));
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    T r = scratch[0];
    for (int i = 1; i < kRowThreads / 32; ++i) r = op(r, scratch[i]);
    __syncthreads();  // scratch may be reused by the caller
    return r;
}

// Sum of squares in double, as the CPU does.
__global__ void rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ y,
                               int64_t n, float eps) {
    __shared__ double scratch[kRowThreads / 32];
    const float* xr = x + blockIdx.x * n;
    float* yr = y + blockIdx.x * n;
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += kRowThreads) ss += static_cast<double>(xr[i]) * xr[i];
    ss = block_reduce(ss, [](double a, double b) { return a + b; }, scratch);
    const float scale = static_cast<float>(1.0 / sqrt(ss / static_cast<double>(n) + eps));
    for (int64_t i = threadIdx.x; i < n; i += kRowThreads) yr[i] = (xr[i] * scale) * w[i];
}

// One thread per (row, head, pair). theta follows the CPU's recurrence
// theta_i = theta_{i-1} * base^(-2/n_rot), so both round alike.
__global__ void rope_kernel(float* __restrict__ x, const int32_t* __restrict__ pos, int64_t rows, int n_heads,
                            int head_dim, int half, float theta_scale, float freq_scale,
                            const float* __restrict__ freq_factors, bool neox) {
    const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= rows * n_heads * half) return;
    const int i = static_cast<int>(t % half);
    const int64_t rh = t / half;  // row * n_heads + head
    const int64_t r = rh / n_heads;
    float theta = static_cast<float>(pos[r]);
    for (int s = 0; s < i; ++s) theta *= theta_scale;
    const float ff = freq_factors ? freq_factors[i] : 1.0f;
    const float a = freq_scale * (theta / ff);
    const float c = cosf(a), sn = sinf(a);
    float* v = x + rh * head_dim;
    float* p0 = neox ? v + i : v + 2 * i;
    float* p1 = neox ? p0 + half : p0 + 1;
    const float x0 = *p0, x1 = *p1;
    *p0 = x0 * c - x1 * sn;
    *p1 = x0 * sn + x1 * c;
}

__global__ void softmax_kernel(float* __restrict__ x, int64_t n) {
    __shared__ float fscratch[kRowThreads / 32];
    __shared__ double dscratch[kRowThreads / 32];
    float* xr = x + blockIdx.x * n;
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < n; i += kRowThreads) mx = fmaxf(mx, xr[i]);
    mx = block_reduce(mx, [](float a, float b) { return fmaxf(a, b); }, fscratch);
    double sum = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += kRowThreads) {
        const float e = expf(xr[i] - mx);
        xr[i] = e;
        sum += e;
    }
    sum = block_reduce(sum, [](double a, double b) { return a + b; }, dscratch);
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = threadIdx.x; i < n; i += kRowThreads) xr[i] *= inv;
}

// One block per (query row i, head h); each warp streams over every
// kAttnWarps-th key with an online softmax (running max m, sum l, output o),
// lanes holding dims lane, lane+32, ...; the warps' states are merged at the end.
__global__ void attention_kernel(const float* __restrict__ q, const float* __restrict__ k,
                                 const float* __restrict__ v, int64_t kv_stride, float* __restrict__ out,
                                 int64_t n_past, int n_head, int n_kv, int hd, float scale) {
    constexpr int kPer = kMaxHeadDim / 32;
    __shared__ float sm[kAttnWarps], sl[kAttnWarps];
    __shared__ float so[kAttnWarps][kMaxHeadDim];
    const int64_t i = blockIdx.x / n_head;
    const int h = static_cast<int>(blockIdx.x % n_head);
    const int kvh = h / (n_head / n_kv);
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t q_stride = static_cast<int64_t>(n_head) * hd;
    const float* qi = q + i * q_stride + static_cast<int64_t>(h) * hd;
    float qv[kPer], o[kPer];
#pragma unroll
    for (int t = 0; t < kPer; ++t) {
        const int d = lane + 32 * t;
        qv[t] = d < hd ? qi[d] : 0.0f;
        o[t] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    const int64_t n_keys = n_past + i + 1;  // causal
    for (int64_t j = warp; j < n_keys; j += kAttnWarps) {
        const float* kj = k + j * kv_stride + static_cast<int64_t>(kvh) * hd;
        const float* vj = v + j * kv_stride + static_cast<int64_t>(kvh) * hd;
        float s = 0.0f;
#pragma unroll
        for (int t = 0; t < kPer; ++t) {
            const int d = lane + 32 * t;
            if (d < hd) s += qv[t] * kj[d];
        }
        s = warp_sum(s) * scale;
        const float m_new = fmaxf(m, s);
        const float corr = expf(m - m_new);  // 0 on the first key (m = -inf)
        const float p = expf(s - m_new);
        l = l * corr + p;
#pragma unroll
        for (int t = 0; t < kPer; ++t) {
            const int d = lane + 32 * t;
            if (d < hd) o[t] = o[t] * corr + p * vj[d];
        }
        m = m_new;
    }
    if (lane == 0) {
        sm[warp] = m;
        sl[warp] = l;
    }
#pragma unroll
    for (int t = 0; t < kPer; ++t) {
        const int d = lane + 32 * t;
        if (d < hd) so[warp][d] = o[t];
    }
    __syncthreads();
    float M = sm[0];
    for (int w = 1; w < kAttnWarps; ++w) M = fmaxf(M, sm[w]);
    float L = 0.0f;
    float f[kAttnWarps];
    for (int w = 0; w < kAttnWarps; ++w) {
        f[w] = sl[w] > 0.0f ? expf(sm[w] - M) : 0.0f;  // warps that saw no key contribute nothing
        L += sl[w] * f[w];
    }
    float* oi = out + i * q_stride + static_cast<int64_t>(h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.0f;
        for (int w = 0; w < kAttnWarps; ++w) acc += so[w][d] * f[w];
        oi[d] = acc / L;
    }
}

__global__ void swiglu_kernel(float* __restrict__ g, const float* __restrict__ u, int64_t n) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

}  // namespace

void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
    require("rmsnorm (cuda)");
    if (rows < 0 || n <= 0) throw Error("rmsnorm (cuda): need rows >= 0 and n > 0");
    if (rows == 0) return;
    rmsnorm_kernel<<<static_cast<unsigned>(rows), kRowThreads>>>(x, w, y, n, eps);
    check_launch("rmsnorm (cuda)");
}

void rope(float* x, const int32_t* pos, int64_t rows, int n_heads, int head_dim, const RopeArgs& p) {
    require("rope (cuda)");
    if (p.n_rot <= 0 || p.n_rot % 2 || p.n_rot > head_dim || n_heads <= 0 || rows < 0)
        throw Error("rope (cuda): need an even n_rot in (0, head_dim], n_heads > 0, rows >= 0 (n_rot " +
                    std::to_string(p.n_rot) + ", head_dim " + std::to_string(head_dim) + ")");
    const int half = p.n_rot / 2;
    const int64_t items = rows * n_heads * half;
    if (items == 0) return;
    const float theta_scale = powf(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
    rope_kernel<<<grid_for(items), kThreads>>>(x, pos, rows, n_heads, head_dim, half, theta_scale, p.freq_scale,
                                               p.freq_factors, p.neox);
    check_launch("rope (cuda)");
}

void softmax(float* x, int64_t rows, int64_t n) {
    require("softmax (cuda)");
    if (rows < 0 || n <= 0) throw Error("softmax (cuda): need rows >= 0 and n > 0");
    if (rows == 0) return;
    softmax_kernel<<<static_cast<unsigned>(rows), kRowThreads>>>(x, n);
    check_launch("softmax (cuda)");
}

void attention(const float* q, const float* k, const float* v, int64_t kv_stride, float* out, int64_t n,
               int64_t n_past, int n_head, int n_kv, int hd) {
    require("attention (cuda)");
    if (n_head <= 0 || n_kv <= 0 || n_head % n_kv || hd <= 0 || hd > kMaxHeadDim || n < 0 || n_past < 0 ||
        kv_stride < static_cast<int64_t>(n_kv) * hd)
        throw Error("attention (cuda): need n_head a multiple of n_kv, 0 < head_dim <= " +
                    std::to_string(kMaxHeadDim) + ", kv_stride >= n_kv * head_dim (n_head " + std::to_string(n_head) +
                    ", n_kv " + std::to_string(n_kv) + ", head_dim " + std::to_string(hd) + ")");
    if (n == 0) return;
    const float scale = 1.0f / sqrtf(static_cast<float>(hd));
    attention_kernel<<<static_cast<unsigned>(n * n_head), 32 * kAttnWarps>>>(q, k, v, kv_stride, out, n_past, n_head,
                                                                           n_kv, hd, scale);
    check_launch("attention (cuda)");
}

void swiglu(float* g, const float* u, int64_t n) {
    require("swiglu (cuda)");
    if (n <= 0) return;
    swiglu_kernel<<<grid_for(n), kThreads>>>(g, u, n);
    check_launch("swiglu (cuda)");
}

}  // namespace kq::cuda
