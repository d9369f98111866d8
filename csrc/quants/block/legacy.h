// Block quantizers of the legacy formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1):
// one block of 32 values each, shared by the CPU reference (legacy.cpp, which
// loops over the blocks of a row) and the CUDA quantizers (one GPU thread per
// block, csrc/cuda/quant_legacy.cuh). Layouts in core/blocks.h; the rules
// that keep CPU and GPU bytes equal in quants/kquant_search.h.
//
// Without an imatrix (qw null) these are ggml's round-to-nearest quantizers.
// With one, Q4_0/Q5_0 use the weighted symmetric search and Q4_1/Q5_1 the
// weighted asymmetric search, with weights qw * sqrt(sigma2 + x^2) where
// sigma2 is the mean square of the whole row (computed by the caller: a
// left-to-right sum over the row). Q8_0/Q8_1 ignore the imatrix.
#pragma once
#include <float.h>
#include <math.h>

#include <cstdint>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/kquant_search.h"

namespace kq::ref::legacy {
namespace {

constexpr int kHalf = 16;  // a 32-value block packs values j and j+16 into byte j

// float -> integer by truncation toward zero: the C conversion ggml applies
// ((int8_t)(v + 8.5f), (int8_t)roundf(v), ...). For finite in-range v that is
// plain truncation. A block of fp32 denormals makes 1/d overflow to inf and v
// inf or NaN; C leaves that conversion undefined, and x86 (where the golden
// data comes from) yields INT32_MIN, whose low byte is 0. We return that
// explicitly instead of invoking undefined behaviour.
inline KQ_HD int trunc_to_int(float v) {
    constexpr float kTwo31 = 2147483648.0f;  // 2^31: first float outside int32
    return (v > -kTwo31 && v < kTwo31) ? static_cast<int>(v) : INT32_MIN;
}
// The byte that C's (int8_t)v / (uint8_t)v leaves on x86: the low 8 bits of
// the int32 truncation.
inline KQ_HD int to_int8(float v) { return static_cast<int8_t>(trunc_to_int(v) & 0xFF); }
inline KQ_HD uint8_t to_uint8(float v) { return static_cast<uint8_t>(trunc_to_int(v) & 0xFF); }
inline KQ_HD int min_int(int a, int b) { return a < b ? a : b; }

// The value of largest magnitude with its sign (first one on ties); 0 for
// an all-zero block.
inline KQ_HD float signed_absmax32(const float* x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

inline KQ_HD void min_max32(const float* x, float* mn, float* mx) {
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
inline KQ_HD void pack_5bit(const uint8_t* L, uint8_t* qs, uint8_t* qh_bytes) {
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
        qs[j] = static_cast<uint8_t>((L[j] & 0x0F) | ((L[j + kHalf] & 0x0F) << 4));
        qh |= static_cast<uint32_t>((L[j] & 0x10u) >> 4) << j;
        qh |= static_cast<uint32_t>((L[j + kHalf] & 0x10u) >> 4) << (j + kHalf);
    }
    for (int b = 0; b < 4; ++b) qh_bytes[b] = static_cast<uint8_t>(qh >> (8 * b));
}

// The importance-weighted asymmetric fit of Q4_1 (nmax 15) and Q5_1 (31):
// levels into L, d and m into b. rmin -0.9, rdelta 0.05, 36 steps: ggml's
// trial inverse scales for the weighted legacy/k-quant searches,
// (nmax - 0.9 .. nmax + 0.9)/range.
template <class Block>
inline KQ_HD void affine_weighted(const float* xb, const float* qw, float sigma2, int nmax, uint8_t* L, Block& b) {
    float w[32];
    ks::imatrix_weights(qw, xb, 32, sigma2, w);
    float the_min;
    const float d = ks::make_qkx3_quants(32, nmax, xb, w, L, &the_min, -0.9f, 0.05f, 36, false);
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(-the_min);
}

// ---- Q4_0: x = d * (q - 8) ---------------------------------------------------
inline KQ_HD void quantize_q4_0(const float* xb, const float* qw, float sigma2, block_q4_0& b) {
    if (!qw) {
        // The extreme value maps to level 0 (q - 8 = -8), the one level with
        // no positive twin, so d carries the opposite sign of max.
        const float d = signed_absmax32(xb) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b.d = fp32_to_fp16(d);
        for (int j = 0; j < kHalf; ++j) {
            // +8 recentres [-8, 8] to [0, 16]; +0.5 then truncation rounds.
            const int q0 = min_int(15, to_int8(xb[j] * id + 8.5f));
            const int q1 = min_int(15, to_int8(xb[j + kHalf] * id + 8.5f));
            b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
        return;
    }
    float w[QK4_0];
    int8_t L[QK4_0];
    ks::imatrix_weights(qw, xb, QK4_0, sigma2, w);
    const float d = ks::make_qx_quants(QK4_0, 8, xb, L, w);  // levels 0..15 = q
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < kHalf; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + kHalf] << 4));
}

// ---- Q4_1: x = d * q + m ------------------------------------------------------
inline KQ_HD void quantize_q4_1(const float* xb, const float* qw, float sigma2, block_q4_1& b) {
    if (!qw) {
        float mn, mx;
        min_max32(xb, &mn, &mx);
        const float d = (mx - mn) / 15;  // 15 = 2^4 - 1 steps between min and max
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b.d = fp32_to_fp16(d);
        b.m = fp32_to_fp16(mn);
        for (int j = 0; j < kHalf; ++j) {
            const int q0 = min_int(15, to_int8((xb[j] - mn) * id + 0.5f));
            const int q1 = min_int(15, to_int8((xb[j + kHalf] - mn) * id + 0.5f));
            b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
        }
        return;
    }
    uint8_t L[QK4_1];
    affine_weighted(xb, qw, sigma2, 15, L, b);
    for (int j = 0; j < kHalf; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + kHalf] << 4));
}

// ---- Q5_0: x = d * (q - 16) ---------------------------------------------------
inline KQ_HD void quantize_q5_0(const float* xb, const float* qw, float sigma2, block_q5_0& b) {
    uint8_t L[QK5_0];
    float d;
    if (!qw) {
        d = signed_absmax32(xb) / -16;  // extreme value -> level 0 (q - 16 = -16)
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < QK5_0; ++j) L[j] = static_cast<uint8_t>(min_int(31, to_int8(xb[j] * id + 16.5f)));
    } else {
        float w[QK5_0];
        int8_t Ls[QK5_0];
        ks::imatrix_weights(qw, xb, QK5_0, sigma2, w);
        d = ks::make_qx_quants(QK5_0, 16, xb, Ls, w);  // levels 0..31 = q
        for (int j = 0; j < QK5_0; ++j) L[j] = static_cast<uint8_t>(Ls[j]);
    }
    b.d = fp32_to_fp16(d);
    pack_5bit(L, b.qs, b.qh);
}

// ---- Q5_1: x = d * q + m ------------------------------------------------------
inline KQ_HD void quantize_q5_1(const float* xb, const float* qw, float sigma2, block_q5_1& b) {
    uint8_t L[QK5_1];
    if (!qw) {
        float mn, mx;
        min_max32(xb, &mn, &mx);
        const float d = (mx - mn) / 31;  // 31 = 2^5 - 1 steps
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        // No clamp to 31, as in ggml: (x - min) * id exceeds 31 by rounding
        // error at most, so the +0.5 truncation stays <= 31.
        for (int j = 0; j < QK5_1; ++j) L[j] = to_uint8((xb[j] - mn) * id + 0.5f);
        b.d = fp32_to_fp16(d);
        b.m = fp32_to_fp16(mn);
    } else {
        affine_weighted(xb, qw, sigma2, 31, L, b);
    }
    pack_5bit(L, b.qs, b.qh);
}

// ---- Q8_0 / Q8_1: x = d * q, q in [-127, 127] ---------------------------------
// d = amax / 127 (the symmetric int8 range), q = round-half-away(x / d).
template <class Block>
inline KQ_HD float quantize_q8(const float* xb, Block& b) {
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

inline KQ_HD void quantize_q8_0(const float* xb, block_q8_0& b) { quantize_q8(xb, b); }

// s = d * sum(q), with the unrounded fp32 d (as ggml), stored in fp16: the
// Q4_1/Q5_1 dot products use it to apply the block offset m.
inline KQ_HD void quantize_q8_1(const float* xb, block_q8_1& b) {
    const float d = quantize_q8(xb, b);
    int sum = 0;
    for (int j = 0; j < QK8_1; ++j) sum += b.qs[j];
    b.s = fp32_to_fp16(static_cast<float>(sum) * d);
}

}  // namespace
}  // namespace kq::ref::legacy
