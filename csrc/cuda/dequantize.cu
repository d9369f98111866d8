// Dequantization on the device to float32 (bit-identical to the reference)
// or float16 (that value, rounded to nearest even). One thread per chunk of
// 32 values (dequant.cuh); float source types convert element-wise.
#include <cuda_runtime.h>

#include <string>

#include "cuda/common.cuh"
#include "cuda/types.cuh"
#include "gpu/cuda.h"

namespace kq::cuda {
namespace {

template <class D, bool kHalfOut>
__global__ void dequant_chunks(const uint8_t* __restrict__ src, int64_t rows, int64_t cols, size_t row_bytes,
                               void* __restrict__ dst) {
    const int64_t cpr = (cols + 31) / 32;  // chunks per row
    const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (idx >= rows * cpr) return;
    const int64_t r = idx / cpr, c = idx % cpr;
    float v[32];
    dev::load_chunk<D>(src + r * row_bytes, cols, c, v);
    const int64_t base = r * cols + 32 * c;
    const int count = static_cast<int>(cols - 32 * c < 32 ? cols - 32 * c : 32);
#pragma unroll
    for (int l = 0; l < 32; ++l) {
        if (l < count) {
            if constexpr (kHalfOut)
                static_cast<uint16_t*>(dst)[base + l] = dev::fp32_to_fp16(v[l]);
            else
                static_cast<float*>(dst)[base + l] = v[l];
        }
    }
}

using launch_fn = void (*)(const uint8_t* src, int64_t rows, int64_t cols, size_t row_bytes, void* dst, bool half);

template <class D>
void launch(const uint8_t* src, int64_t rows, int64_t cols, size_t row_bytes, void* dst, bool half) {
    const int64_t chunks = rows * ((cols + 31) / 32);
    if (half)
        dequant_chunks<D, true><<<grid_for(chunks), kThreads>>>(src, rows, cols, row_bytes, dst);
    else
        dequant_chunks<D, false><<<grid_for(chunks), kThreads>>>(src, rows, cols, row_bytes, dst);
}

struct DequantEntry {
    TypeId id;
    launch_fn run;
};

#define KQ_DQ_Q(ID, Q, D, V) {TypeId::ID, launch<dev::D>},
#define KQ_DQ_F(ID, D) {TypeId::ID, launch<dev::D>},
const DequantEntry kDequantTable[] = {KQ_CUDA_FLOAT_TYPES(KQ_DQ_F) KQ_CUDA_QUANT_TYPES(KQ_DQ_Q)};
#undef KQ_DQ_Q
#undef KQ_DQ_F

}  // namespace

void dequantize(const void* src, int64_t rows, int64_t cols, const TypeTraits& t, void* dst, FloatKind out) {
    require("dequantize (device='cuda')");
    const std::string what = std::string("dequantize ") + t.name + " (cuda)";
    const size_t rs = row_size(t, cols);
    if (rows < 0) throw Error(what + ": negative row count");
    check_aligned(src, 4, what.c_str(), "src");
    check_aligned(dst, 4, what.c_str(), "dst");
    for (const DequantEntry& e : kDequantTable) {
        if (e.id != t.id) continue;
        if (rows * cols == 0) return;
        e.run(static_cast<const uint8_t*>(src), rows, cols, rs, dst, out == FloatKind::F16);
        check_launch(what.c_str());
        return;
    }
    throw Error(what + ": no CUDA dequantizer for this type");
}

}  // namespace kq::cuda
