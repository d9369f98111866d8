// Device quantizers of the legacy formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q8_1) and Q8_K: ports of csrc/quants/legacy.cpp and q8_k.cpp, one thread per
// block. Each `quantize(x, b, qw, sigma2)` fills block b from the block's
// values x; qw is the block's slice of the imatrix (nullptr: none) and sigma2
// the row's mean square (only read when qw is set; computed by a separate
// pass because it is a left-to-right sum over the whole row).
#pragma once
#include <climits>
#include <cstdint>

#include "cuda/search.cuh"

namespace kq::cuda::dev {

constexpr int kHalf = 16;  // a 32-value block packs values j and j+16 into byte j

// C's float -> int8/uint8 conversion as x86 performs it (see legacy.cpp):
// truncation, INT32_MIN (low byte 0) outside the int32 range or for NaN.
__device__ __forceinline__ int trunc_to_int(float v) {
    constexpr float kTwo31 = 2147483648.0f;
    return (v > -kTwo31 && v < kTwo31) ? static_cast<int>(v) : INT_MIN;
}
__device__ __forceinline__ int to_int8(float v) { return static_cast<int8_t>(trunc_to_int(v) & 0xFF); }
__device__ __forceinline__ uint8_t to_uint8(float v) { return static_cast<uint8_t>(trunc_to_int(v) & 0xFF); }

__device__ inline float signed_absmax32(const float* x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

__device__ inline void min_max32(const float* x, float* mn, float* mx) {
    float lo = 3.402823466e+38f, hi = -3.402823466e+38f;  // FLT_MAX
    for (int j = 0; j < 32; ++j) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

// 5-bit levels: low nibbles as Q4_0, bit 4 of level j -> bit j of the LE uint32 qh.
__device__ inline void pack_5bit(const uint8_t* L, uint8_t* qs, uint8_t* qh_bytes) {
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
        qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + kHalf] & 0x0F) << 4));
        qh |= static_cast<uint32_t>((L[j] & 0x10u) >> 4) << j;
        qh |= static_cast<uint32_t>((L[j + kHalf] & 0x10u) >> 4) << (j + kHalf);
    }
    for (int b = 0; b < 4; ++b) qh_bytes[b] = static_cast<uint8_t>(qh >> (8 * b));
}

struct QuantQ4_0 {
    using Block = block_q4_0;
    static constexpr bool kRowSigma2 = true;  // imatrix path needs the row's mean square
    __device__ static void quantize(const float* xb, Block& b, const float* qw, float sigma2) {
        if (!qw) {
            const float d = signed_absmax32(xb) / -8;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            b.d = fp32_to_fp16(d);
            for (int j = 0; j < kHalf; ++j) {
                const int q0 = min(15, to_int8(xb[j] * id + 8.5f));
                const int q1 = min(15, to_int8(xb[j + kHalf] * id + 8.5f));
                b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
            }
            return;
        }
        float w[QK4_0];
        int8_t L[QK4_0];
        imatrix_weights(qw, xb, QK4_0, sigma2, w);
        const float d = make_qx_quants(QK4_0, 8, xb, L, w);
        b.d = fp32_to_fp16(d);
        for (int j = 0; j < kHalf; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + kHalf] << 4));
    }
};

struct QuantQ4_1 {
    using Block = block_q4_1;
    static constexpr bool kRowSigma2 = true;
    __device__ static void quantize(const float* xb, Block& b, const float* qw, float sigma2) {
        if (!qw) {
            float mn, mx;
            min_max32(xb, &mn, &mx);
            const float d = (mx - mn) / 15;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            b.d = fp32_to_fp16(d);
            b.m = fp32_to_fp16(mn);
            for (int j = 0; j < kHalf; ++j) {
                const int q0 = min(15, to_int8((xb[j] - mn) * id + 0.5f));
                const int q1 = min(15, to_int8((xb[j + kHalf] - mn) * id + 0.5f));
                b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
            }
            return;
        }
        float w[QK4_1];
        uint8_t L[QK4_1];
        imatrix_weights(qw, xb, QK4_1, sigma2, w);
        float the_min;
        const float d = make_qkx_quants<true>(QK4_1, 15, xb, w, L, &the_min, -0.9f, 0.05f, 36, false);
        b.d = fp32_to_fp16(d);
        b.m = fp32_to_fp16(-the_min);
        for (int j = 0; j < kHalf; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + kHalf] << 4));
    }
};

struct QuantQ5_0 {
    using Block = block_q5_0;
    static constexpr bool kRowSigma2 = true;
    __device__ static void quantize(const float* xb, Block& b, const float* qw, float sigma2) {
        uint8_t L[QK5_0];
        float d;
        if (!qw) {
            d = signed_absmax32(xb) / -16;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            for (int j = 0; j < QK5_0; ++j) L[j] = static_cast<uint8_t>(min(31, to_int8(xb[j] * id + 16.5f)));
        } else {
            float w[QK5_0];
            int8_t Ls[QK5_0];
            imatrix_weights(qw, xb, QK5_0, sigma2, w);
            d = make_qx_quants(QK5_0, 16, xb, Ls, w);
            for (int j = 0; j < QK5_0; ++j) L[j] = static_cast<uint8_t>(Ls[j]);
        }
        b.d = fp32_to_fp16(d);
        pack_5bit(L, b.qs, b.qh);
    }
};

struct QuantQ5_1 {
    using Block = block_q5_1;
    static constexpr bool kRowSigma2 = true;
    __device__ static void quantize(const float* xb, Block& b, const float* qw, float sigma2) {
        uint8_t L[QK5_1];
        if (!qw) {
            float mn, mx;
            min_max32(xb, &mn, &mx);
            const float d = (mx - mn) / 31;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            for (int j = 0; j < QK5_1; ++j) L[j] = to_uint8((xb[j] - mn) * id + 0.5f);
            b.d = fp32_to_fp16(d);
            b.m = fp32_to_fp16(mn);
        } else {
            float w[QK5_1];
            imatrix_weights(qw, xb, QK5_1, sigma2, w);
            float the_min;
            const float d = make_qkx_quants<true>(QK5_1, 31, xb, w, L, &the_min, -0.9f, 0.05f, 36, false);
            b.d = fp32_to_fp16(d);
            b.m = fp32_to_fp16(-the_min);
        }
        pack_5bit(L, b.qs, b.qh);
    }
};

// Q8_0 / Q8_1 share the block body: d = amax / 127, q = round-half-away(x / d).
template <class B>
__device__ inline float quantize_q8_block(const float* xb, B& b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) {
        const float a = fabsf(xb[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(to_int8(roundf(xb[j] * id)));
    return d;
}

struct QuantQ8_0 {
    using Block = block_q8_0;
    static constexpr bool kRowSigma2 = false;  // ignores the imatrix
    __device__ static void quantize(const float* xb, Block& b, const float*, float) { quantize_q8_block(xb, b); }
};

struct QuantQ8_1 {
    using Block = block_q8_1;
    static constexpr bool kRowSigma2 = false;
    __device__ static void quantize(const float* xb, Block& b, const float*, float) {
        const float d = quantize_q8_block(xb, b);
        int sum = 0;
        for (int j = 0; j < QK8_1; ++j) sum += b.qs[j];
        b.s = fp32_to_fp16(static_cast<float>(sum) * d);
    }
};

struct QuantQ8_K {
    using Block = block_q8_K;
    static constexpr bool kRowSigma2 = false;
    __device__ static void quantize(const float* x, Block& b, const float*, float) {
        b.d = 0.0f;
        for (int j = 0; j < QK_K; ++j) b.qs[j] = 0;
        for (int g = 0; g < QK_K / 16; ++g) b.bsums[g] = 0;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; ++j) {
            const float a = fabsf(x[j]);
            if (a > amax) {
                amax = a;
                max = x[j];
            }
        }
        if (amax != 0.0f) {
            const float iscale = -127.f / max;
            for (int j = 0; j < QK_K; ++j) {
                const int v = nearest_int(iscale * x[j]);
                b.qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
            }
            for (int g = 0; g < QK_K / 16; ++g) {
                int sum = 0;
                for (int l = 0; l < 16; ++l) sum += b.qs[16 * g + l];
                b.bsums[g] = static_cast<int16_t>(sum);
            }
            b.d = 1 / iscale;
        }
    }
};

}  // namespace kq::cuda::dev
