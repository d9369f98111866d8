// Reference quantizers for the legacy block formats: Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0 and the activation format Q8_1. Blocks of 32 values; layouts in
// core/blocks.h.
//
// Without an imatrix these are ggml's round-to-nearest quantizers (what
// ggml_quantize_chunk runs when no importance weights are given). With one,
// Q4_0/Q5_0 use the weighted symmetric search and Q4_1/Q5_1 the weighted
// asymmetric search, with weights imatrix * sqrt(sigma2 + x^2) where sigma2
// is the mean square of the whole row. Q8_0/Q8_1 ignore the imatrix.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/block_io.h"
#include "quants/kquant_search.h"
#include "quants/ref.h"

namespace kq::ref {
namespace {

constexpr int kHalf = 16;  // a 32-value block packs values j and j+16 into byte j

// float -> integer by truncation toward zero: the C conversion ggml applies
// ((int8_t)(v + 8.5f), (int8_t)roundf(v), ...). For finite in-range v that is
// plain truncation. A block of fp32 denormals makes 1/d overflow to inf and v
// inf or NaN; C leaves that conversion undefined, and x86 (where the golden
// data comes from) yields INT32_MIN, whose low byte is 0. We return that
// explicitly instead of invoking undefined behaviour.
inline int trunc_to_int(float v) {
    constexpr float kTwo31 = 2147483648.0f;  // 2^31: first float outside int32
    return (v > -kTwo31 && v < kTwo31) ? static_cast<int>(v) : INT32_MIN;
}
// The byte that C's (int8_t)v / (uint8_t)v leaves on x86: the low 8 bits of
// the int32 truncation.
inline int to_int8(float v) { return static_cast<int8_t>(trunc_to_int(v) & 0xFF); }
inline uint8_t to_uint8(float v) { return static_cast<uint8_t>(trunc_to_int(v) & 0xFF); }

// The value of largest magnitude with its sign (first one on ties); 0 for
// an all-zero block.
inline float signed_absmax32(const float* x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
        if (amax < std::fabs(x[j])) {
            amax = std::fabs(x[j]);
            max = x[j];
        }
    }
    return max;
}

inline void min_max32(const float* x, float* mn, float* mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < 32; ++j) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

// Packs 32 levels of 5 bits: low nibbles as Q4_0, bit 4 of level j into bit
// j of the little-endian 32-bit qh.
inline void pack_5bit(const uint8_t* L, uint8_t* qs, uint8_t* qh_bytes) {
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
        qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + kHalf] & 0x0F) << 4));
        qh |= static_cast<uint32_t>((L[j] & 0x10u) >> 4) << j;
        qh |= static_cast<uint32_t>((L[j + kHalf] & 0x10u) >> 4) << (j + kHalf);
    }
    for (int b = 0; b < 4; ++b) qh_bytes[b] = static_cast<uint8_t>(qh >> (8 * b));
}

inline uint32_t load_qh(const uint8_t* qh_bytes) {
    return static_cast<uint32_t>(qh_bytes[0]) | (static_cast<uint32_t>(qh_bytes[1]) << 8) |
           (static_cast<uint32_t>(qh_bytes[2]) << 16) | (static_cast<uint32_t>(qh_bytes[3]) << 24);
}

// Mean square of the row: the sigma2 term of the imatrix weights.
inline float row_sigma2(const float* x, int64_t n) {
    return ks::sum_squares(x, n) / static_cast<float>(n);
}

}  // namespace

// ---- Q4_0: x = d * (q - 8) ---------------------------------------------------

void quantize_row_q4_0(const float* x, void* y, int64_t n, const float* imatrix) {
    const int64_t nb = n / QK4_0;
    if (!imatrix) {
        for (int64_t i = 0; i < nb; ++i) {
            const float* xb = x + i * QK4_0;
            // The extreme value maps to level 0 (q - 8 = -8), the one level
            // with no positive twin, so d carries the opposite sign of max.
            const float d = signed_absmax32(xb) / -8;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            block_q4_0 b;
            b.d = fp32_to_fp16(d);
            for (int j = 0; j < kHalf; ++j) {
                // +8 recentres [-8, 8] to [0, 16]; +0.5 then truncation rounds.
                const int q0 = std::min(15, to_int8(xb[j] * id + 8.5f));
                const int q1 = std::min(15, to_int8(xb[j + kHalf] * id + 8.5f));
                b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
            }
            store_block(y, i, b);
        }
        return;
    }
    const float sigma2 = row_sigma2(x, n);
    float w[QK4_0];
    int8_t L[QK4_0];
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * QK4_0;
        ks::imatrix_weights(imatrix + i * QK4_0, xb, QK4_0, sigma2, w);
        const float d = ks::make_qx_quants(QK4_0, 8, xb, L, w);  // levels 0..15 = q
        block_q4_0 b;
        b.d = fp32_to_fp16(d);
        for (int j = 0; j < kHalf; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + kHalf] << 4));
        store_block(y, i, b);
    }
}

void dequantize_row_q4_0(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
        const auto b = load_block<block_q4_0>(x, i);
        const float d = fp16_to_fp32(b.d);
        for (int j = 0; j < kHalf; ++j) {
            y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
            y[j + kHalf] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
        }
    }
}

// ---- Q4_1: x = d * q + m ------------------------------------------------------

void quantize_row_q4_1(const float* x, void* y, int64_t n, const float* imatrix) {
    const int64_t nb = n / QK4_1;
    if (!imatrix) {
        for (int64_t i = 0; i < nb; ++i) {
            const float* xb = x + i * QK4_1;
            float mn, mx;
            min_max32(xb, &mn, &mx);
            const float d = (mx - mn) / 15;  // 15 = 2^4 - 1 steps between min and max
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            block_q4_1 b;
            b.d = fp32_to_fp16(d);
            b.m = fp32_to_fp16(mn);
            for (int j = 0; j < kHalf; ++j) {
                const int q0 = std::min(15, to_int8((xb[j] - mn) * id + 0.5f));
                const int q1 = std::min(15, to_int8((xb[j + kHalf] - mn) * id + 0.5f));
                b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
            }
            store_block(y, i, b);
        }
        return;
    }
    const float sigma2 = row_sigma2(x, n);
    float w[QK4_1];
    uint8_t L[QK4_1];
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * QK4_1;
        ks::imatrix_weights(imatrix + i * QK4_1, xb, QK4_1, sigma2, w);
        float the_min;
        // rmin -0.9, rdelta 0.05, 36 steps: ggml's trial inverse scales for
        // the weighted legacy/k-quant searches, (nmax - 0.9 .. nmax + 0.9)/range.
        const float d = ks::make_qkx3_quants(QK4_1, 15, xb, w, L, &the_min, -0.9f, 0.05f, 36, false);
        block_q4_1 b;
        b.d = fp32_to_fp16(d);
        b.m = fp32_to_fp16(-the_min);
        for (int j = 0; j < kHalf; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + kHalf] << 4));
        store_block(y, i, b);
    }
}

void dequantize_row_q4_1(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; ++i, y += QK4_1) {
        const auto b = load_block<block_q4_1>(x, i);
        const float d = fp16_to_fp32(b.d);
        const float m = fp16_to_fp32(b.m);
        for (int j = 0; j < kHalf; ++j) {
            y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
            y[j + kHalf] = static_cast<float>(b.qs[j] >> 4) * d + m;
        }
    }
}

// ---- Q5_0: x = d * (q - 16) ---------------------------------------------------

void quantize_row_q5_0(const float* x, void* y, int64_t n, const float* imatrix) {
    const int64_t nb = n / QK5_0;
    uint8_t L[QK5_0];
    if (!imatrix) {
        for (int64_t i = 0; i < nb; ++i) {
            const float* xb = x + i * QK5_0;
            const float d = signed_absmax32(xb) / -16;  // extreme value -> level 0 (q - 16 = -16)
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            for (int j = 0; j < QK5_0; ++j)
                L[j] = static_cast<uint8_t>(std::min(31, to_int8(xb[j] * id + 16.5f)));
            block_q5_0 b;
            b.d = fp32_to_fp16(d);
            pack_5bit(L, b.qs, b.qh);
            store_block(y, i, b);
        }
        return;
    }
    const float sigma2 = row_sigma2(x, n);
    float w[QK5_0];
    int8_t Ls[QK5_0];
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * QK5_0;
        ks::imatrix_weights(imatrix + i * QK5_0, xb, QK5_0, sigma2, w);
        const float d = ks::make_qx_quants(QK5_0, 16, xb, Ls, w);  // levels 0..31 = q
        for (int j = 0; j < QK5_0; ++j) L[j] = static_cast<uint8_t>(Ls[j]);
        block_q5_0 b;
        b.d = fp32_to_fp16(d);
        pack_5bit(L, b.qs, b.qh);
        store_block(y, i, b);
    }
}

void dequantize_row_q5_0(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; ++i, y += QK5_0) {
        const auto b = load_block<block_q5_0>(x, i);
        const float d = fp16_to_fp32(b.d);
        const uint32_t qh = load_qh(b.qh);
        for (int j = 0; j < kHalf; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + kHalf)) & 1u) << 4;
            y[j] = static_cast<float>(((b.qs[j] & 0x0F) | h0) - 16) * d;
            y[j + kHalf] = static_cast<float>(((b.qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

// ---- Q5_1: x = d * q + m ------------------------------------------------------

void quantize_row_q5_1(const float* x, void* y, int64_t n, const float* imatrix) {
    const int64_t nb = n / QK5_1;
    uint8_t L[QK5_1];
    if (!imatrix) {
        for (int64_t i = 0; i < nb; ++i) {
            const float* xb = x + i * QK5_1;
            float mn, mx;
            min_max32(xb, &mn, &mx);
            const float d = (mx - mn) / 31;  // 31 = 2^5 - 1 steps
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            // No clamp to 31, as in ggml: (x - min) * id exceeds 31 by
            // rounding error at most, so the +0.5 truncation stays <= 31.
            for (int j = 0; j < QK5_1; ++j)
                L[j] = to_uint8((xb[j] - mn) * id + 0.5f);
            block_q5_1 b;
            b.d = fp32_to_fp16(d);
            b.m = fp32_to_fp16(mn);
            pack_5bit(L, b.qs, b.qh);
            store_block(y, i, b);
        }
        return;
    }
    const float sigma2 = row_sigma2(x, n);
    float w[QK5_1];
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * QK5_1;
        ks::imatrix_weights(imatrix + i * QK5_1, xb, QK5_1, sigma2, w);
        float the_min;
        const float d = ks::make_qkx3_quants(QK5_1, 31, xb, w, L, &the_min, -0.9f, 0.05f, 36, false);
        block_q5_1 b;
        b.d = fp32_to_fp16(d);
        b.m = fp32_to_fp16(-the_min);
        pack_5bit(L, b.qs, b.qh);
        store_block(y, i, b);
    }
}

void dequantize_row_q5_1(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; ++i, y += QK5_1) {
        const auto b = load_block<block_q5_1>(x, i);
        const float d = fp16_to_fp32(b.d);
        const float m = fp16_to_fp32(b.m);
        const uint32_t qh = load_qh(b.qh);
        for (int j = 0; j < kHalf; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + kHalf)) & 1u) << 4;
            y[j] = static_cast<float>((b.qs[j] & 0x0F) | h0) * d + m;
            y[j + kHalf] = static_cast<float>((b.qs[j] >> 4) | h1) * d + m;
        }
    }
}

// ---- Q8_0 / Q8_1: x = d * q, q in [-127, 127] ---------------------------------

namespace {

// d = amax / 127 (the symmetric int8 range), q = round-half-away(x / d).
template <class Block>
inline float quantize_q8_block(const float* xb, Block& b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) {
        const float a = std::fabs(xb[j]);
        amax = amax > a ? amax : a;
    }
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(to_int8(std::round(xb[j] * id)));
    return d;
}

}  // namespace

void quantize_row_q8_0(const float* x, void* y, int64_t n, const float*) {
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; ++i) {
        block_q8_0 b;
        quantize_q8_block(x + i * QK8_0, b);
        store_block(y, i, b);
    }
}

void dequantize_row_q8_0(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK8_0;
    for (int64_t i = 0; i < nb; ++i, y += QK8_0) {
        const auto b = load_block<block_q8_0>(x, i);
        const float d = fp16_to_fp32(b.d);
        for (int j = 0; j < QK8_0; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
    }
}

void quantize_row_q8_1(const float* x, void* y, int64_t n, const float*) {
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; ++i) {
        block_q8_1 b;
        const float d = quantize_q8_block(x + i * QK8_1, b);
        // s = d * sum(q), with the unrounded fp32 d (as ggml), stored in fp16:
        // the Q4_1/Q5_1 dot products use it to apply the block offset m.
        int sum = 0;
        for (int j = 0; j < QK8_1; ++j) sum += b.qs[j];
        b.s = fp32_to_fp16(static_cast<float>(sum) * d);
        store_block(y, i, b);
    }
}

void dequantize_row_q8_1(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK8_1;
    for (int64_t i = 0; i < nb; ++i, y += QK8_1) {
        const auto b = load_block<block_q8_1>(x, i);
        const float d = fp16_to_fp32(b.d);
        for (int j = 0; j < QK8_1; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
    }
}

}  // namespace kq::ref
