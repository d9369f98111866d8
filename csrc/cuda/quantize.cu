// Quantization on the device, byte-identical to kq::quantize_rows.
//
// One thread quantizes one block (32 values for the legacy formats, a
// super-block of 256 for the k-quants) with the reference's arithmetic, so
// no sum is split across threads. Sources in F16/BF16 are first widened to
// float32 exactly as quants/api.cpp does. The legacy formats' imatrix path
// needs the row's mean square, a left-to-right sum over the whole row: a
// first pass computes it with one thread per row.
#include <cuda_runtime.h>

#include <string>

#include "cuda/buffer.h"
#include "cuda/common.cuh"
#include "cuda/timing.h"
#include "cuda/quant_kquants.cuh"
#include "cuda/quant_legacy.cuh"
#include "cuda/types.cuh"
#include "gpu/cuda.h"

namespace kq::cuda {
namespace {

template <class Q>
__global__ void quantize_blocks(const float* __restrict__ x, uint8_t* __restrict__ y, int64_t rows, int64_t cols,
                                int block_size, size_t row_bytes, const float* __restrict__ qw,
                                const float* __restrict__ sigma2) {
    using Block = typename Q::Block;
    const int64_t nb = cols / block_size;
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= rows * nb) return;
    const int64_t r = idx / nb, i = idx % nb;
    Block b;
    Q::quantize(x + r * cols + i * block_size, b, qw ? qw + i * block_size : nullptr, sigma2 ? sigma2[r] : 0.0f);
    *reinterpret_cast<Block*>(y + r * row_bytes + i * sizeof(Block)) = b;
}

// sum of x^2 left to right, divided by the row length (legacy.cpp row_sigma2).
__global__ void row_mean_square(const float* __restrict__ x, int64_t rows, int64_t cols, float* __restrict__ out) {
    const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const float* row = x + r * cols;
    float s = 0.0f;
    for (int64_t i = 0; i < cols; ++i) s += row[i] * row[i];
    out[r] = s / static_cast<float>(cols);
}

// The float "quantizers": element-wise conversions.
__global__ void to_f16(const float* __restrict__ x, uint16_t* __restrict__ y, int64_t n) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] = dev::fp32_to_fp16(x[i]);
}
__global__ void to_bf16(const float* __restrict__ x, uint16_t* __restrict__ y, int64_t n) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] = dev::fp32_to_bf16(x[i]);
}
// Source widening: F16 / BF16 bits -> float32.
__global__ void widen(const uint16_t* __restrict__ x, float* __restrict__ y, int64_t n, bool bf16) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) y[i] = bf16 ? dev::bf16_to_fp32(x[i]) : dev::fp16_to_fp32(x[i]);
}

using launch_fn = void (*)(const float* x, uint8_t* y, int64_t rows, int64_t cols, int block_size, size_t row_bytes,
                           const float* qw, const float* sigma2);

template <class Q>
void launch(const float* x, uint8_t* y, int64_t rows, int64_t cols, int block_size, size_t row_bytes, const float* qw,
            const float* sigma2) {
    // Block quantizers keep large per-thread arrays (local memory); 64
    // threads per block keep occupancy limits from idling SMs on small inputs.
    constexpr int kQuantThreads = 64;
    const int64_t blocks = rows * (cols / block_size);
    quantize_blocks<Q><<<grid_for(blocks, kQuantThreads), kQuantThreads>>>(x, y, rows, cols, block_size, row_bytes,
                                                                           qw, sigma2);
}

// Float targets: element-wise over all rows * cols values.
void launch_f32(const float* x, uint8_t* y, int64_t rows, int64_t cols, int, size_t, const float*, const float*) {
    check(cudaMemcpy(y, x, static_cast<size_t>(rows * cols) * sizeof(float), cudaMemcpyDeviceToDevice),
          "quantize to f32 (cuda)");
}
void launch_f16(const float* x, uint8_t* y, int64_t rows, int64_t cols, int, size_t, const float*, const float*) {
    to_f16<<<grid_for(rows * cols), kThreads>>>(x, reinterpret_cast<uint16_t*>(y), rows * cols);
}
void launch_bf16(const float* x, uint8_t* y, int64_t rows, int64_t cols, int, size_t, const float*, const float*) {
    to_bf16<<<grid_for(rows * cols), kThreads>>>(x, reinterpret_cast<uint16_t*>(y), rows * cols);
}

struct QuantEntry {
    TypeId id;
    launch_fn run;
    bool row_sigma2;  // the imatrix path needs the row's mean square
};

#define KQ_Q(ID, Q, D, V) {TypeId::ID, launch<dev::Q>, dev::Q::kRowSigma2},
const QuantEntry kQuantTable[] = {
    {TypeId::F32, launch_f32, false}, {TypeId::F16, launch_f16, false}, {TypeId::BF16, launch_bf16, false},
    KQ_CUDA_QUANT_TYPES(KQ_Q)
};
#undef KQ_Q

const QuantEntry* find_entry(TypeId id) {
    for (const QuantEntry& e : kQuantTable)
        if (e.id == id) return &e;
    return nullptr;
}

}  // namespace

bool has_quantize(TypeId id) { return find_entry(id) != nullptr; }

namespace {

// Argument checks shared by quantize and bench_quantize; returns the row size.
size_t check_args(int64_t rows, int64_t cols, const TypeTraits& t, const void* src, const void* dst,
                  const std::string& what) {
    const size_t rs = row_size(t, cols);
    if (rows < 0) throw Error(what + ": negative row count");
    if (!has_quantize(t.id)) throw Error(what + ": no CUDA quantizer for this type");
    check_aligned(src, 4, what.c_str(), "src");
    check_aligned(dst, 4, what.c_str(), "dst");
    return rs;
}

}  // namespace

void quantize(const void* src, SrcKind kind, int64_t rows, int64_t cols, const TypeTraits& t, const float* imatrix,
              void* dst) {
    require("quantize (device='cuda')");
    const std::string what = std::string("quantize to ") + t.name + " (cuda)";
    const size_t rs = check_args(rows, cols, t, src, dst, what);
    const int64_t n = rows * cols;
    if (n == 0) return;

    // Float32 view of the source.
    const float* x = static_cast<const float*>(src);
    Buffer wide(kind == SrcKind::F32 ? 0 : static_cast<size_t>(n) * sizeof(float));
    if (kind != SrcKind::F32) {
        widen<<<grid_for(n), kThreads>>>(static_cast<const uint16_t*>(src), wide.as<float>(), n,
                                         kind == SrcKind::BF16);
        x = wide.as<float>();
    }

    const QuantEntry& e = *find_entry(t.id);
    const float* qw = t.uses_imatrix ? imatrix : nullptr;
    Buffer sig(qw && e.row_sigma2 ? static_cast<size_t>(rows) * sizeof(float) : 0);
    const float* sigma2 = nullptr;
    if (qw && e.row_sigma2) {
        row_mean_square<<<grid_for(rows, 64), 64>>>(x, rows, cols, sig.as<float>());
        sigma2 = sig.as<float>();
    }
    e.run(x, static_cast<uint8_t*>(dst), rows, cols, static_cast<int>(t.block_size), rs, qw, sigma2);
    check_launch(what.c_str());
}

double bench_quantize(const float* src, int64_t rows, int64_t cols, const TypeTraits& t, void* dst, int iters) {
    require("bench quantize (cuda)");
    const std::string what = std::string("bench quantize to ") + t.name + " (cuda)";
    const size_t rs = check_args(rows, cols, t, src, dst, what);
    const QuantEntry& e = *find_entry(t.id);
    return time_enqueued(
        [&] { e.run(src, static_cast<uint8_t*>(dst), rows, cols, static_cast<int>(t.block_size), rs, nullptr, nullptr); },
        iters, what.c_str());
}

}  // namespace kq::cuda
