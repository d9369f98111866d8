// Integer dot products of weight chunks with 8-bit activations (dp4a).
//
// Activations are quantized per 32 values (quantize_act in matvec.cu):
//   a[l] ~ xd * aq[l],  aq int8, plus the integer sums S0, S1 of aq over the
//   two halves (values 0..15, 16..31).
// Every weight format's chunk of 32 values is unpacked to
//   w[l] = A_h * q[l] + B_h   (h = l / 16, q a small signed integer)
// so that  sum_l w[l] * a[l] = xd * sum_h (A_h * sum_{l in h} q[l]*aq[l] + B_h * S_h),
// with the inner sums done four bytes at a time by __dp4a. q is held as eight
// 32-bit words of signed bytes: words 0..3 are values 0..15, 4..7 values 16..31.
// Bit layouts are those of core/blocks.h (and dequant.cuh, which walks the
// same chunks value by value).
#pragma once
#include <cstdint>

#include "cuda/search.cuh"
#include "quants/block/q2_q3_k.h"

namespace kq::cuda::dev {

struct Unpacked {
    int q[8];
    float A[2], B[2];
};

// Spreads 4 bits (bit i -> bit 8*i) of v, i.e. one bit per byte lane.
__device__ __forceinline__ uint32_t spread4(uint32_t v) {
    return (v & 1u) | ((v & 2u) << 7) | ((v & 4u) << 14) | ((v & 8u) << 21);
}

struct VecQ4_0 {
    using Block = block_q4_0;
    static constexpr int kParts = 1;
    __device__ static void unpack(const Block& b, int, Unpacked& u) {
        const float d = fp16_to_fp32(b.d);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t v = load_u32_a2(b.qs + 4 * i);
            u.q[i] = static_cast<int>(v & 0x0F0F0F0Fu);
            u.q[i + 4] = static_cast<int>((v >> 4) & 0x0F0F0F0Fu);
        }
        u.A[0] = u.A[1] = d;
        u.B[0] = u.B[1] = -8.0f * d;  // levels are stored + 8
    }
};

struct VecQ4_1 {
    using Block = block_q4_1;
    static constexpr int kParts = 1;
    __device__ static void unpack(const Block& b, int, Unpacked& u) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t v = load_u32_a4(b.qs + 4 * i);
            u.q[i] = static_cast<int>(v & 0x0F0F0F0Fu);
            u.q[i + 4] = static_cast<int>((v >> 4) & 0x0F0F0F0Fu);
        }
        u.A[0] = u.A[1] = fp16_to_fp32(b.d);
        u.B[0] = u.B[1] = fp16_to_fp32(b.m);
    }
};

// Q5_0 / Q5_1: bit 4 of value j is bit j of the little-endian qh word.
template <bool kAligned4, class Blk>
__device__ __forceinline__ void unpack5(const Blk& b, Unpacked& u) {
    auto load = [](const uint8_t* p) { return kAligned4 ? load_u32_a4(p) : load_u32_a2(p); };
    const uint32_t qh = load(b.qh);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const uint32_t v = load(b.qs + 4 * i);
        u.q[i] = static_cast<int>((v & 0x0F0F0F0Fu) | (spread4(qh >> (4 * i)) << 4));
        u.q[i + 4] = static_cast<int>(((v >> 4) & 0x0F0F0F0Fu) | (spread4(qh >> (16 + 4 * i)) << 4));
    }
}

struct VecQ5_0 {
    using Block = block_q5_0;
    static constexpr int kParts = 1;
    __device__ static void unpack(const Block& b, int, Unpacked& u) {
        unpack5<false>(b, u);
        const float d = fp16_to_fp32(b.d);
        u.A[0] = u.A[1] = d;
        u.B[0] = u.B[1] = -16.0f * d;  // levels are stored + 16
    }
};

struct VecQ5_1 {
    using Block = block_q5_1;
    static constexpr int kParts = 1;
    __device__ static void unpack(const Block& b, int, Unpacked& u) {
        unpack5<true>(b, u);
        u.A[0] = u.A[1] = fp16_to_fp32(b.d);
        u.B[0] = u.B[1] = fp16_to_fp32(b.m);
    }
};

// Q8_0 (qs at byte 2: 2-byte aligned) and Q8_1 (qs at byte 4).
template <class Blk, bool kAligned4>
struct VecQ8 {
    using Block = Blk;
    static constexpr int kParts = 1;
    __device__ static void unpack(const Block& b, int, Unpacked& u) {
        const uint8_t* qs = reinterpret_cast<const uint8_t*>(b.qs);
#pragma unroll
        for (int i = 0; i < 8; ++i) u.q[i] = static_cast<int>(kAligned4 ? load_u32_a4(qs + 4 * i) : load_u32_a2(qs + 4 * i));
        u.A[0] = u.A[1] = fp16_to_fp32(b.d);
        u.B[0] = u.B[1] = 0.0f;
    }
};
using VecQ8_0 = VecQ8<block_q8_0, false>;
using VecQ8_1 = VecQ8<block_q8_1, true>;

struct VecQ2_K {
    using Block = block_q2_K;
    static constexpr int kParts = 8;
    __device__ static void unpack(const Block& b, int c, Unpacked& u) {
        const uint8_t* q = b.qs + 32 * (c / 4);
        const int shift = 2 * (c % 4);
#pragma unroll
        for (int i = 0; i < 8; ++i) u.q[i] = static_cast<int>((load_u32_a4(q + 4 * i) >> shift) & 0x03030303u);
        const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const uint8_t sc = b.scales[2 * c + h];
            u.A[h] = d * static_cast<float>(sc & 0xF);
            u.B[h] = -(dmin * static_cast<float>(sc >> 4));
        }
    }
};

struct VecQ3_K {
    using Block = block_q3_K;
    static constexpr int kParts = 8;
    // The signed 6-bit scale of sub-block j (quants/block/q2_q3_k.h).
    __device__ static int get_scale(const uint8_t* scales, int j) { return ref::q3k::get_scale(scales, j); }
    __device__ static void unpack(const Block& b, int c, Unpacked& u) {
        const uint8_t* q = b.qs + 32 * (c / 4);
        const int shift = 2 * (c % 4);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t low = (load_u32_a2(q + 4 * i) >> shift) & 0x03030303u;
            const uint32_t hbit = (load_u32_a2(b.hmask + 4 * i) >> c) & 0x01010101u;
            // value = low - 4 where the high bit is clear: per-byte subtract.
            u.q[i] = static_cast<int>(__vsub4(low, (hbit ^ 0x01010101u) << 2));
        }
        const float d = fp16_to_fp32(b.d);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            u.A[h] = d * static_cast<float>(get_scale(b.scales, 2 * c + h));
            u.B[h] = 0.0f;
        }
    }
};

// Q4_K / Q5_K chunk c = sub-block c (nibble c%2 of bytes 32*(c/2)...; Q5_K bit c of qh).
template <class Blk, bool kHigh>
struct VecQ45_K {
    using Block = Blk;
    static constexpr int kParts = 8;
    __device__ static void unpack(const Block& b, int c, Unpacked& u) {
        const uint8_t* q = b.qs + 32 * (c / 2);
        const int shift = 4 * (c % 2);
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            uint32_t v = (load_u32_a4(q + 4 * i) >> shift) & 0x0F0F0F0Fu;
            if constexpr (kHigh) v |= ((load_u32_a4(b.qh + 4 * i) >> c) & 0x01010101u) << 4;
            u.q[i] = static_cast<int>(v);
        }
        uint8_t sc, m;
        unpack_scale_min_k4(c, b.scales, &sc, &m);
        u.A[0] = u.A[1] = fp16_to_fp32(b.d) * static_cast<float>(sc);
        u.B[0] = u.B[1] = -(fp16_to_fp32(b.dmin) * static_cast<float>(m));
    }
};
using VecQ4_K = VecQ45_K<block_q4_K, false>;
using VecQ5_K = VecQ45_K<block_q5_K, true>;

struct VecQ6_K {
    using Block = block_q6_K;
    static constexpr int kParts = 8;
    __device__ static void unpack(const Block& b, int c, Unpacked& u) {
        const int half = c / 4, g = c % 4;
        const uint8_t* ql = b.ql + 64 * half + 32 * (g & 1);
        const uint8_t* qh = b.qh + 32 * half;
        const int lshift = 4 * (g >> 1), hshift = 2 * g;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t lo = (load_u32_a2(ql + 4 * i) >> lshift) & 0x0F0F0F0Fu;
            const uint32_t hi = (load_u32_a2(qh + 4 * i) >> hshift) & 0x03030303u;
            u.q[i] = static_cast<int>(__vsub4(lo | (hi << 4), 0x20202020u));  // q - 32
        }
        const float d = fp16_to_fp32(b.d);
        const int8_t* sc = b.scales + 8 * half + 2 * g;
        u.A[0] = d * static_cast<float>(sc[0]);
        u.A[1] = d * static_cast<float>(sc[1]);
        u.B[0] = u.B[1] = 0.0f;
    }
};

struct VecQ8_K {
    using Block = block_q8_K;
    static constexpr int kParts = 8;
    __device__ static void unpack(const Block& b, int c, Unpacked& u) {
        const uint8_t* qs = reinterpret_cast<const uint8_t*>(b.qs) + 32 * c;
#pragma unroll
        for (int i = 0; i < 8; ++i) u.q[i] = static_cast<int>(load_u32_a4(qs + 4 * i));
        u.A[0] = u.A[1] = b.d;
        u.B[0] = u.B[1] = 0.0f;
    }
};

// sum_l w[l] * a[l] for one chunk: aq = the activation chunk as 8 words.
__device__ __forceinline__ float chunk_dot(const Unpacked& u, const int* aq, float xd, int s0, int s1) {
    int i0 = 0, i1 = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        i0 = __dp4a(u.q[i], aq[i], i0);
        i1 = __dp4a(u.q[i + 4], aq[i + 4], i1);
    }
    return xd * (u.A[0] * static_cast<float>(i0) + u.B[0] * static_cast<float>(s0) + u.A[1] * static_cast<float>(i1) +
                 u.B[1] * static_cast<float>(s1));
}

}  // namespace kq::cuda::dev
