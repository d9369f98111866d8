// Bit-exact fp16 / bf16 <-> fp32 conversions, in software.
//
// ggml's reference quantizers (what llama-quantize runs on a baseline build)
// convert with round-to-nearest-even and turn every NaN into a quiet NaN.
// These functions reproduce that exactly for all 2^32 inputs, independent of
// the host's F16C support, so quantized bytes never depend on the CPU.
//
// KQ_HD: also compiled for the GPU, where the shared block quantizers
// (quants/block/) call them.
#pragma once
#include <string.h>

#include <cstdint>

#include "core/hostdev.h"

namespace kq {

inline KQ_HD uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
inline KQ_HD float f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

// binary32 -> binary16, round to nearest even.
inline KQ_HD uint16_t fp32_to_fp16(float f) {
    const uint32_t x = f32_bits(f);
    const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;   // NaN -> quiet NaN
    if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to inf
    if (a >= 0x38800000u) {                       // normal half: >= 2^-14
        a += 0xfffu + ((a >> 13) & 1u);           // RNE on the 13 dropped bits
        return sign | static_cast<uint16_t>((a - 0x38000000u) >> 13);  // rebias 127 -> 15
    }
    if (a <= 0x33000000u) return sign;            // <= 2^-25 rounds to zero (tie -> even 0)
    // Subnormal half: value / 2^-24, rounded to nearest even.
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;              // e in [102, 112] -> shift in [14, 24]
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
    return sign | static_cast<uint16_t>(r);
}

// binary16 -> binary32 (exact).
inline KQ_HD float fp16_to_fp32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu;
    const uint32_t m = h & 0x3ffu;
    if (e == 0x1f) return f32_from_bits(sign | 0x7f800000u | (m << 13));  // inf / nan
    if (e != 0) return f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
    // Subnormal (or zero): m * 2^-24, exact in float (m < 2^10 and the
    // product is a normal float or 0), then the sign; no loop or branch, the
    // same on the GPU.
    return f32_from_bits(sign | f32_bits(static_cast<float>(m) * 0x1p-24f));
}

// binary32 -> bfloat16, round to nearest even; NaN kept quiet (bit 6 set).
inline KQ_HD uint16_t fp32_to_bf16(float f) {
    const uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64u);
    return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

inline KQ_HD float bf16_to_fp32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

}  // namespace kq
