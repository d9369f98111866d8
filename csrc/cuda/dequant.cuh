// Device dequantizers: for every quantized format, the 32 values of chunk
// `part` of a block (part in [0, block_size / 32)), computed with the same
// float operations as the reference (csrc/quants/*.cpp dequantize_row_*), so
// F32 results are bit-identical. Used by the dequantize kernels and by the
// tensor-core matmul, which dequantizes weight tiles on the fly.
//
// Chunk c of a k-quant super-block is values 32c .. 32c+31, i.e. (for the
// 16-value sub-block formats) sub-blocks 2c and 2c+1.
#pragma once
#include <cstdint>

#include "cuda/search.cuh"
#include "quants/block/q2_q3_k.h"

namespace kq::cuda::dev {

struct DeqQ4_0 {
    using Block = block_q4_0;
    static constexpr int kParts = 1;
    __device__ static void dq32(const Block& b, int, float* y) {
        const float d = fp16_to_fp32(b.d);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const uint8_t q = b.qs[j];
            y[j] = static_cast<float>((q & 0x0F) - 8) * d;
            y[j + 16] = static_cast<float>((q >> 4) - 8) * d;
        }
    }
};

struct DeqQ4_1 {
    using Block = block_q4_1;
    static constexpr int kParts = 1;
    __device__ static void dq32(const Block& b, int, float* y) {
        const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const uint8_t q = b.qs[j];
            y[j] = static_cast<float>(q & 0x0F) * d + m;
            y[j + 16] = static_cast<float>(q >> 4) * d + m;
        }
    }
};

__device__ __forceinline__ uint32_t qh_word(const uint8_t* qh) {
    return static_cast<uint32_t>(qh[0]) | (static_cast<uint32_t>(qh[1]) << 8) | (static_cast<uint32_t>(qh[2]) << 16) |
           (static_cast<uint32_t>(qh[3]) << 24);
}

struct DeqQ5_0 {
    using Block = block_q5_0;
    static constexpr int kParts = 1;
    __device__ static void dq32(const Block& b, int, float* y) {
        const float d = fp16_to_fp32(b.d);
        const uint32_t qh = qh_word(b.qh);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
            y[j] = static_cast<float>(((b.qs[j] & 0x0F) | h0) - 16) * d;
            y[j + 16] = static_cast<float>(((b.qs[j] >> 4) | h1) - 16) * d;
        }
    }
};

struct DeqQ5_1 {
    using Block = block_q5_1;
    static constexpr int kParts = 1;
    __device__ static void dq32(const Block& b, int, float* y) {
        const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
        const uint32_t qh = qh_word(b.qh);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + 16)) & 1u) << 4;
            y[j] = static_cast<float>((b.qs[j] & 0x0F) | h0) * d + m;
            y[j + 16] = static_cast<float>((b.qs[j] >> 4) | h1) * d + m;
        }
    }
};

template <class B>
struct DeqQ8 {  // Q8_0, Q8_1: x = d * q
    using Block = B;
    static constexpr int kParts = 1;
    __device__ static void dq32(const Block& b, int, float* y) {
        const float d = fp16_to_fp32(b.d);
#pragma unroll
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
    }
};

struct DeqQ2_K {
    using Block = block_q2_K;
    static constexpr int kParts = 8;
    // Chunk c: half c/4, bit pair 2*(c%4) of bytes 0..31 of that half;
    // sub-blocks 2c (bytes 0..15) and 2c+1 (bytes 16..31).
    __device__ static void dq32(const Block& b, int c, float* y) {
        const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
        const uint8_t* q = b.qs + 32 * (c / 4);
        const int shift = 2 * (c % 4);
#pragma unroll
        for (int part = 0; part < 2; ++part) {
            const uint8_t sc = b.scales[2 * c + part];
            const float dl = d * static_cast<float>(sc & 0xF);
            const float ml = dmin * static_cast<float>(sc >> 4);
#pragma unroll
            for (int l = 0; l < 16; ++l)
                y[16 * part + l] = dl * static_cast<float>((q[16 * part + l] >> shift) & 3) - ml;
        }
    }
};

struct DeqQ3_K {
    using Block = block_q3_K;
    static constexpr int kParts = 8;
    // The signed 6-bit scale of sub-block j (quants/block/q2_q3_k.h).
    __device__ static int get_scale(const uint8_t* scales, int j) { return ref::q3k::get_scale(scales, j); }
    // As Q2_K; the hmask bit of chunk c is bit c.
    __device__ static void dq32(const Block& b, int c, float* y) {
        const float dall = fp16_to_fp32(b.d);
        const uint8_t* q = b.qs + 32 * (c / 4);
        const int shift = 2 * (c % 4);
#pragma unroll
        for (int part = 0; part < 2; ++part) {
            const float dl = dall * static_cast<float>(get_scale(b.scales, 2 * c + part));
#pragma unroll
            for (int i = 0; i < 16; ++i) {
                const int l = 16 * part + i;
                const int low = (q[l] >> shift) & 3;
                const int high_missing = (b.hmask[l] >> c) & 1 ? 0 : 4;
                y[l] = dl * static_cast<float>(low - high_missing);
            }
        }
    }
};

// Q4_K / Q5_K: chunk c is sub-block c; low nibbles of qs[32*(c/2) ..] for even
// c, high nibbles for odd c; Q5_K's fifth bit is bit c of qh[l].
template <class B, bool kHigh>
struct DeqQ45_K {
    using Block = B;
    static constexpr int kParts = 8;
    __device__ static void dq32(const Block& b, int c, float* y) {
        uint8_t sc, m;
        unpack_scale_min_k4(c, b.scales, &sc, &m);
        const float d = fp16_to_fp32(b.d) * static_cast<float>(sc);
        const float mn = fp16_to_fp32(b.dmin) * static_cast<float>(m);
        const uint8_t* q = b.qs + 32 * (c / 2);
        const int shift = 4 * (c % 2);
#pragma unroll
        for (int l = 0; l < 32; ++l) {
            int v = (q[l] >> shift) & 0xF;
            if constexpr (kHigh) v += (b.qh[l] >> c) & 1 ? 16 : 0;
            y[l] = d * static_cast<float>(v) - mn;
        }
    }
};
using DeqQ4_K = DeqQ45_K<block_q4_K, false>;
using DeqQ5_K = DeqQ45_K<block_q5_K, true>;

struct DeqQ6_K {
    using Block = block_q6_K;
    static constexpr int kParts = 8;
    // Chunk c: half c/4, group g = c%4 of that half (values 32g .. 32g+31).
    __device__ static void dq32(const Block& b, int c, float* y) {
        const float d = fp16_to_fp32(b.d);
        const int half = c / 4, g = c % 4;
        const uint8_t* ql = b.ql + 64 * half + 32 * (g & 1);
        const uint8_t* qh = b.qh + 32 * half;
        const int8_t* sc = b.scales + 8 * half + 2 * g;
        const int lshift = 4 * (g >> 1), hshift = 2 * g;
#pragma unroll
        for (int l = 0; l < 32; ++l) {
            const int q = (((ql[l] >> lshift) & 0xF) | (((qh[l] >> hshift) & 3) << 4)) - 32;
            y[l] = d * static_cast<float>(sc[l / 16]) * static_cast<float>(q);
        }
    }
};

struct DeqQ8_K {
    using Block = block_q8_K;
    static constexpr int kParts = 8;
    __device__ static void dq32(const Block& b, int c, float* y) {
#pragma unroll
        for (int l = 0; l < 32; ++l) y[l] = b.d * static_cast<float>(b.qs[32 * c + l]);
    }
};

// Float weights (F32 / F16 / BF16): element-wise; kParts = 0 marks them.
template <int kKind>  // 0 = F32, 1 = F16, 2 = BF16
struct DeqFloat {
    static constexpr int kParts = 0;
    __device__ static float load(const uint8_t* row, int64_t i) {
        if constexpr (kKind == 0) return reinterpret_cast<const float*>(row)[i];
        if constexpr (kKind == 1) return fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[i]);
        return bf16_to_fp32(reinterpret_cast<const uint16_t*>(row)[i]);
    }
};
using DeqF32 = DeqFloat<0>;
using DeqF16 = DeqFloat<1>;
using DeqBF16 = DeqFloat<2>;

// Values 32c .. 32c+31 of a row of k values (zero past k, which only float
// rows can have).
template <class D>
__device__ __forceinline__ void load_chunk(const uint8_t* row, int64_t k, int64_t c, float* v) {
    if constexpr (D::kParts == 0) {
#pragma unroll
        for (int l = 0; l < 32; ++l) v[l] = 32 * c + l < k ? D::load(row, 32 * c + l) : 0.0f;
    } else {
        using Block = typename D::Block;
        const Block& b = reinterpret_cast<const Block*>(row)[c / D::kParts];
        D::dq32(b, static_cast<int>(c % D::kParts), v);
    }
}

}  // namespace kq::cuda::dev
