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

// ---- fp16 / bf16, bit for bit as csrc/core/fp16.h ----------------------------------
// Software conversions rather than the cvt instructions: the hardware turns
// every NaN into one canonical NaN, core/fp16.h keeps the payload; for all
// other inputs both are round-to-nearest-even and agree.
__device__ __forceinline__ uint16_t fp32_to_fp16(float f) {
    const uint32_t x = __float_as_uint(f);
    const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;   // NaN -> quiet NaN
    if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to inf
    if (a >= 0x38800000u) {                       // normal half: >= 2^-14
        a += 0xfffu + ((a >> 13) & 1u);           // RNE on the 13 dropped bits
        return sign | static_cast<uint16_t>((a - 0x38000000u) >> 13);  // rebias 127 -> 15
    }
    if (a <= 0x33000000u) return sign;            // <= 2^-25 rounds to zero
    const uint32_t e = a >> 23;                   // subnormal half: value / 2^-24, RNE
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;              // e in [102, 112] -> shift in [14, 24]
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
    return sign | static_cast<uint16_t>(r);
}

__device__ __forceinline__ float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    if (e == 0x1f) return __uint_as_float(sign | 0x7f800000u | (m << 13));  // inf / nan, payload kept
    if (e != 0) return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
    if (m == 0) return __uint_as_float(sign);
    // Subnormal half (m in [1, 0x3ff]): shift the leading one to bit 10.
    const int lead = 31 - __clz(m);               // 0..9
    const uint32_t exp = 113u - static_cast<uint32_t>(10 - lead);  // 113 = 127 - 14
    m <<= (10 - lead);
    return __uint_as_float(sign | (exp << 23) | ((m & 0x3ffu) << 13));
}

__device__ __forceinline__ uint16_t fp32_to_bf16(float f) {
    const uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64u);  // quiet NaN
    return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}
__device__ __forceinline__ float bf16_to_fp32(uint16_t h) { return __uint_as_float(static_cast<uint32_t>(h) << 16); }

}  // namespace dev
}  // namespace kq::cuda
