// Block quantizers of Q2_K and Q3_K (super-blocks of 256 = 16 sub-blocks of
// 16 values), shared by the CPU reference (q2_k.cpp, q3_k.cpp: formats,
// row loops and dequantizers) and the CUDA quantizers (one GPU thread per
// super-block, csrc/cuda/quant_kquants.cuh). The rules that keep CPU and GPU
// bytes equal are in quants/kquant_search.h.
//
// Q2_K plain path (ggml's quantize_row_q2_K_ref): each sub-block is fitted
// with the asymmetric search weighted by |x| and minimising the absolute
// error, then scales and mins are quantized linearly against their maxima (15
// = the largest 4-bit value). Imatrix path (quantize_row_q2_K_impl): weights
// imatrix * sqrt(sigma2 + x^2) with sigma2 the block's mean square, squared
// error, and the 4-bit scales/mins themselves searched with make_qp_quants.
// Both paths finish by re-rounding every value against the stored scales.
//
// Q3_K plain path (quantize_row_q3_K_ref): each sub-block by make_q3_quants
// (symmetric, weights x^2, refined level by level), then the 16 signed scales
// linearly to 6 bits with the largest-magnitude one at -32. Imatrix path
// (quantize_row_q3_K_impl): weights imatrix * sqrt(sigma2 + x^2) with sigma2
// twice the block's mean square, and the scales searched with make_qx_quants.
#pragma once
#include <math.h>

#include <cstdint>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/kquant_search.h"

namespace kq::ref::q2k {
namespace {

constexpr int kSub = 16;                // values per sub-block
constexpr int kNumSub = QK_K / kSub;    // 16 sub-blocks
constexpr float kScaleMax = 15.f;       // largest 4-bit scale / min

// Re-rounds every value to the levels the stored (fp16-rounded) scales
// define; sub-blocks whose scale is 0 keep the search's levels.
inline KQ_HD void requantize(const float* x, const block_q2_K& b, uint8_t* L) {
    const float dall = fp16_to_fp32(b.d);
    const float mall = fp16_to_fp32(b.dmin);
    for (int j = 0; j < kNumSub; ++j) {
        const float d = dall * static_cast<float>(b.scales[j] & 0xF);
        if (d == 0.0f) continue;
        const float m = mall * static_cast<float>(b.scales[j] >> 4);
        for (int k = 0; k < kSub; ++k)
            L[kSub * j + k] = static_cast<uint8_t>(ks::clamp_int(ks::nearest_int((x[kSub * j + k] + m) / d), 0, 3));
    }
}

inline KQ_HD void quantize_plain(const float* x, block_q2_K& b) {
    uint8_t L[QK_K];
    float weights[kSub], scales[kNumSub], mins[kNumSub];
    float max_scale = 0.0f, max_min = 0.0f;  // both non-negative: the min is subtracted
    for (int j = 0; j < kNumSub; ++j) {
        for (int k = 0; k < kSub; ++k) weights[k] = fabsf(x[kSub * j + k]);
        // rmin -0.5, rdelta 0.1, 15 steps: trial inverse scales (3 - 0.5 .. 3 + 1.0)/range.
        scales[j] = ks::make_qkx2_quants(kSub, 3, x + kSub * j, weights, L + kSub * j, &mins[j], -0.5f, 0.1f, 15,
                                         true);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    if (max_scale > 0) {
        const float iscale = kScaleMax / max_scale;
        for (int j = 0; j < kNumSub; ++j) b.scales[j] = static_cast<uint8_t>(ks::nearest_int(iscale * scales[j]));
        b.d = fp32_to_fp16(max_scale / kScaleMax);
    } else {
        for (int j = 0; j < kNumSub; ++j) b.scales[j] = 0;
        b.d = fp32_to_fp16(0.f);
    }
    if (max_min > 0) {
        const float iscale = kScaleMax / max_min;
        for (int j = 0; j < kNumSub; ++j) {
            const auto lm = static_cast<unsigned>(ks::nearest_int(iscale * mins[j]));
            b.scales[j] = static_cast<uint8_t>(b.scales[j] | (lm << 4));
        }
        b.dmin = fp32_to_fp16(max_min / kScaleMax);
    } else {
        b.dmin = fp32_to_fp16(0.f);
    }
    requantize(x, b, L);
    ks::pack_2bit_256(L, b.qs);
}

inline KQ_HD void quantize_imatrix(const float* x, const float* qw, block_q2_K& b) {
    uint8_t L[QK_K];
    float weight[kSub], scales[kNumSub], mins[kNumSub], sw[kNumSub];
    uint8_t Ls[kNumSub], Lm[kNumSub];
    const float sigma2 = ks::sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < kNumSub; ++j) {
        sw[j] = ks::subblock_weights(qw + kSub * j, x + kSub * j, kSub, sigma2, weight);
        // rmin -0.9, rdelta 0.05, 36 steps: (3 - 0.9 .. 3 + 0.9)/range, finer than the plain path.
        scales[j] = ks::make_qkx3_quants(kSub, 3, x + kSub * j, weight, L + kSub * j, &mins[j], -0.9f, 0.05f, 36,
                                         false);
    }
    // The sub-block scales and mins are quantized to 4 bits by a search of
    // their own, weighted by each sub-block's total importance.
    const float dm = ks::make_qp_quants(kNumSub, 15, scales, Ls, sw);
    const float mm = ks::make_qp_quants(kNumSub, 15, mins, Lm, sw);
    b.d = fp32_to_fp16(dm);
    b.dmin = fp32_to_fp16(mm);
    for (int j = 0; j < kNumSub; ++j) b.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
    requantize(x, b, L);
    ks::pack_2bit_256(L, b.qs);
}

// The block of 256 values x; qw: its imatrix slice, or null.
inline KQ_HD void quantize(const float* x, const float* qw, block_q2_K& b) {
    ks::plain_or_weighted<block_q2_K, quantize_plain, quantize_imatrix>(x, qw, b);
}

}  // namespace
}  // namespace kq::ref::q2k

namespace kq::ref::q3k {
namespace {

constexpr int kSub = 16;
constexpr int kNumSub = QK_K / kSub;

// Stores the 6-bit value l (0..63) of sub-block j into the packed scales,
// which must start zeroed.
inline KQ_HD void put_scale(uint8_t* scales, int j, int l) {
    if (j < 8)
        scales[j] = static_cast<uint8_t>(l & 0xF);
    else
        scales[j - 8] = static_cast<uint8_t>(scales[j - 8] | ((l & 0xF) << 4));
    scales[8 + j % 4] = static_cast<uint8_t>(scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
}

// The signed scale sc[j] - 32 of sub-block j.
inline KQ_HD int get_scale(const uint8_t* scales, int j) {
    const int lo = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
    const int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

// Re-rounds each value against the stored scale (sub-blocks with scale 0 keep
// the search's levels), then splits q into hmask bits and 2-bit qs.
inline KQ_HD void finish_block(const float* x, int8_t* L, block_q3_K& b) {
    const float dall = fp16_to_fp32(b.d);
    for (int j = 0; j < kNumSub; ++j) {
        const float d = dall * static_cast<float>(static_cast<int8_t>(get_scale(b.scales, j)));
        if (d == 0.0f) continue;
        for (int k = 0; k < kSub; ++k) {
            const int l = ks::clamp_int(ks::nearest_int(x[kSub * j + k] / d), -4, 3);
            L[kSub * j + k] = static_cast<int8_t>(l + 4);
        }
    }
    for (int j = 0; j < QK_K / 8; ++j) b.hmask[j] = 0;
    for (int j = 0; j < QK_K; ++j) {
        if (L[j] > 3) {
            b.hmask[j % 32] = static_cast<uint8_t>(b.hmask[j % 32] | (1u << (j / 32)));
            L[j] = static_cast<int8_t>(L[j] - 4);
        }
    }
    ks::pack_2bit_256(reinterpret_cast<const uint8_t*>(L), b.qs);
}

inline KQ_HD void quantize_plain(const float* x, block_q3_K& b) {
    int8_t L[QK_K];
    float scales[kNumSub];
    float max_scale = 0.0f, amax = 0.0f;  // signed scale of largest magnitude
    for (int j = 0; j < kNumSub; ++j) {
        scales[j] = ks::make_q3_quants(kSub, 4, x + kSub * j, L + kSub * j);
        const float a = fabsf(scales[j]);
        if (a > amax) {
            amax = a;
            max_scale = scales[j];
        }
    }
    for (int j = 0; j < K_SCALE_SIZE; ++j) b.scales[j] = 0;
    if (max_scale != 0.0f) {
        // The extreme scale maps to -32, the 6-bit level without a +32 twin.
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < kNumSub; ++j) {
            int8_t l = static_cast<int8_t>(ks::nearest_int(iscale * scales[j]));
            l = static_cast<int8_t>(ks::clamp_int(l, -32, 31) + 32);
            put_scale(b.scales, j, l);
        }
        b.d = fp32_to_fp16(1 / iscale);
    } else {
        b.d = fp32_to_fp16(0.f);
    }
    finish_block(x, L, b);
}

inline KQ_HD void quantize_imatrix(const float* x, const float* qw, block_q3_K& b) {
    int8_t L[QK_K];
    float scales[kNumSub], weight[kSub], sw[kNumSub];
    int8_t Ls[kNumSub];
    const float sigma2 = 2 * ks::sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < kNumSub; ++j) {
        sw[j] = ks::subblock_weights(qw + kSub * j, x + kSub * j, kSub, sigma2, weight);
        scales[j] = ks::make_qx_quants(kSub, 4, x + kSub * j, L + kSub * j, weight);
    }
    for (int j = 0; j < K_SCALE_SIZE; ++j) b.scales[j] = 0;
    // 6-bit signed scales: levels 0..63 stand for -32..31.
    const float d_block = ks::make_qx_quants(kNumSub, 32, scales, Ls, sw);
    for (int j = 0; j < kNumSub; ++j) put_scale(b.scales, j, Ls[j]);
    b.d = fp32_to_fp16(d_block);
    finish_block(x, L, b);
}

// The block of 256 values x; qw: its imatrix slice, or null.
inline KQ_HD void quantize(const float* x, const float* qw, block_q3_K& b) {
    ks::plain_or_weighted<block_q3_K, quantize_plain, quantize_imatrix>(x, qw, b);
}

}  // namespace
}  // namespace kq::ref::q3k
