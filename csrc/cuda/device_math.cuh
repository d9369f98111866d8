// Device-side helpers shared by the kernels: unaligned-safe loads and the
// bit-exact fp16/bf16 conversions.
//
// This header and the per-format headers built on it (search.cuh,
// quant_*.cuh, dequant.cuh, vecdot.cuh) use only CUDA intrinsics, no runtime
// API, so tests/cuda_emu can also compile them as host code (with the
// intrinsics emulated) and check them against the CPU reference on machines
// without a GPU.
#pragma once
#include <cstdint>

#include "core/blocks.h"
#include "core/fp16.h"

namespace kq::cuda {

namespace dev {

// ---- loads -----------------------------------------------------------------------
// Blocks of many formats are only 2-byte aligned (block_q4_0 is 18 bytes), so
// 32-bit words inside them are assembled from two 16-bit loads.
__device__ __forceinline__ uint32_t load_u32_a2(const uint8_t* p) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
    return static_cast<uint32_t>(h[0]) | (static_cast<uint32_t>(h[1]) << 16);
}
__device__ __forceinline__ uint32_t load_u32_a4(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

// ---- fp16 / bf16: csrc/core/fp16.h's own conversions (KQ_HD) ----------------------
// Software conversions rather than the cvt instructions: the hardware turns
// every NaN into one canonical NaN, core/fp16.h keeps the payload; for all
// other inputs both are round-to-nearest-even and agree.
using kq::bf16_to_fp32;
using kq::fp16_to_fp32;
using kq::fp32_to_bf16;
using kq::fp32_to_fp16;

}  // namespace dev
}  // namespace kq::cuda
