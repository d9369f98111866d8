// Block quantizers of Q4_K and Q5_K (super-blocks of 256 = 8 sub-blocks of
// 32 values), shared by the CPU reference (q4_k.cpp: formats, row loops and
// dequantizers) and the CUDA quantizers (one GPU thread per super-block,
// csrc/cuda/quant_kquants.cuh). The rules that keep CPU and GPU bytes equal
// are in quants/kquant_search.h.
//
// The two formats share their quantizer; they differ only in nmax and the
// search parameters. Plain path (quantize_row_q{4,5}_K_ref): weights
// rms(sub-block) + |x|, squared error, scales/mins quantized linearly against
// their maxima (63 = the largest 6-bit value). Imatrix path (_impl): weights
// imatrix * sqrt(sigma2 + x^2), sigma2 twice the block's mean square, and the
// 6-bit scales/mins searched with make_qp_quants.
#pragma once
#include <math.h>

#include <cstdint>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/kquant_search.h"

namespace kq::ref::q45k {
namespace {

constexpr int kSub = 32;
constexpr int kNumSub = QK_K / kSub;  // 8
constexpr float kScaleMax = 63.f;     // largest 6-bit scale / min

// What differs between Q4_K and Q5_K in the plain search: the trial inverse
// scales (nmax + rmin + rdelta*k)/range for k = 0..nstep.
struct PlainSearch {
    int nmax;
    float rmin, rdelta;
    int nstep;
};
// Functions rather than constants: device code cannot read a host object.
inline KQ_HD PlainSearch q4_plain() { return {15, -1.0f, 0.1f, 20}; }  // (15 - 1 .. 15 + 1)
inline KQ_HD PlainSearch q5_plain() { return {31, -0.5f, 0.1f, 15}; }  // (31 - 0.5 .. 31 + 1)

// Fields common to block_q4_K and block_q5_K.
struct Header {
    half_bits d, dmin;
    uint8_t scales[K_SCALE_SIZE];
};

// Re-rounds every value against the stored scales and mins (sub-blocks with
// scale 0 keep the search's levels).
inline KQ_HD void requantize(const float* x, const Header& h, int nmax, uint8_t* L) {
    const float dall = fp16_to_fp32(h.d);
    const float mall = fp16_to_fp32(h.dmin);
    for (int j = 0; j < kNumSub; ++j) {
        uint8_t sc, m;
        ks::unpack_scale_min_k4(j, h.scales, &sc, &m);
        const float d = dall * static_cast<float>(sc);
        if (d == 0.0f) continue;
        const float dm = mall * static_cast<float>(m);
        for (int k = 0; k < kSub; ++k)
            L[kSub * j + k] = static_cast<uint8_t>(ks::clamp_int(ks::nearest_int((x[kSub * j + k] + dm) / d), 0, nmax));
    }
}

inline KQ_HD void quantize_plain(const float* x, PlainSearch p, Header& h, uint8_t* L) {
    float weights[kSub], scales[kNumSub], mins[kNumSub];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < kNumSub; ++j) {
        const float* xs = x + kSub * j;
        const float av_x = sqrtf(ks::sum_squares(xs, kSub) / kSub);
        for (int k = 0; k < kSub; ++k) weights[k] = av_x + fabsf(xs[k]);
        scales[j] = ks::make_qkx2_quants(kSub, p.nmax, xs, weights, L + kSub * j, &mins[j], p.rmin, p.rdelta, p.nstep,
                                         false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? kScaleMax / max_scale : 0.f;
    const float inv_min = max_min > 0 ? kScaleMax / max_min : 0.f;
    uint8_t ls[kNumSub], lm[kNumSub];
    for (int j = 0; j < kNumSub; ++j) {
        // Byte truncation first, then the clamp, as ggml stores them.
        const uint8_t s = static_cast<uint8_t>(ks::nearest_int(inv_scale * scales[j]));
        const uint8_t m = static_cast<uint8_t>(ks::nearest_int(inv_min * mins[j]));
        ls[j] = s < 63 ? s : 63;
        lm[j] = m < 63 ? m : 63;
    }
    ks::pack_scale_min_k4(ls, lm, h.scales);
    h.d = fp32_to_fp16(max_scale / kScaleMax);
    h.dmin = fp32_to_fp16(max_min / kScaleMax);
    requantize(x, h, p.nmax, L);
}

// clamp_levels: Q5_K clamps the searched 6-bit levels to 63, Q4_K does not
// (they cannot exceed 63 except by wrap-around, which ggml keeps).
inline KQ_HD void quantize_imatrix(const float* x, const float* qw, int nmax, bool clamp_levels, Header& h, uint8_t* L) {
    float weights[kSub], scales[kNumSub], mins[kNumSub], sw[kNumSub];
    const float sigma2 = 2 * ks::sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < kNumSub; ++j) {
        sw[j] = ks::subblock_weights(qw + kSub * j, x + kSub * j, kSub, sigma2, weights);
        // rmin -0.9, rdelta 0.05, 36 steps: (nmax - 0.9 .. nmax + 0.9)/range.
        scales[j] = ks::make_qkx3_quants(kSub, nmax, x + kSub * j, weights, L + kSub * j, &mins[j], -0.9f, 0.05f, 36,
                                         false);
    }
    uint8_t ls[kNumSub], lm[kNumSub];
    const float d_block = ks::make_qp_quants(kNumSub, 63, scales, ls, sw);
    const float m_block = ks::make_qp_quants(kNumSub, 63, mins, lm, sw);
    if (clamp_levels) {
        for (int j = 0; j < kNumSub; ++j) {
            ls[j] = ls[j] < 63 ? ls[j] : 63;
            lm[j] = lm[j] < 63 ? lm[j] : 63;
        }
    }
    ks::pack_scale_min_k4(ls, lm, h.scales);
    h.d = fp32_to_fp16(d_block);
    h.dmin = fp32_to_fp16(m_block);
    requantize(x, h, nmax, L);
}

template <class Block>
inline KQ_HD void set_header(Block& b, const Header& h) {
    b.d = h.d;
    b.dmin = h.dmin;
    for (int j = 0; j < K_SCALE_SIZE; ++j) b.scales[j] = h.scales[j];
}

// The scale search of either format into its header and the levels L.
inline KQ_HD void search(const float* x, const float* qw, int nmax, PlainSearch plain, bool clamp_levels,
                         Header& h, uint8_t* L) {
    if (qw)
        quantize_imatrix(x, qw, nmax, clamp_levels, h, L);
    else
        quantize_plain(x, plain, h, L);
}

// Q4_K: the block of 256 values x; qw: its imatrix slice, or null.
inline KQ_HD void quantize_q4_K(const float* x, const float* qw, block_q4_K& b) {
    uint8_t L[QK_K];
    Header h;
    search(x, qw, 15, q4_plain(), false, h, L);
    set_header(b, h);
    for (int c = 0; c < QK_K / 64; ++c)
        for (int l = 0; l < 32; ++l) b.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + l + 32] << 4));
}

// Q5_K: as Q4_K, with bit 4 of each level in qh.
inline KQ_HD void quantize_q5_K(const float* x, const float* qw, block_q5_K& b) {
    uint8_t L[QK_K];
    Header h;
    search(x, qw, 31, q5_plain(), true, h, L);
    set_header(b, h);
    for (int j = 0; j < QK_K / 8; ++j) b.qh[j] = 0;
    for (int c = 0; c < QK_K / 64; ++c) {
        for (int l = 0; l < 32; ++l) {
            int l1 = L[64 * c + l], l2 = L[64 * c + l + 32];
            if (l1 > 15) {
                l1 -= 16;
                b.qh[l] = static_cast<uint8_t>(b.qh[l] | (1u << (2 * c)));
            }
            if (l2 > 15) {
                l2 -= 16;
                b.qh[l] = static_cast<uint8_t>(b.qh[l] | (2u << (2 * c)));
            }
            b.qs[32 * c + l] = static_cast<uint8_t>(l1 | (l2 << 4));
        }
    }
}

}  // namespace
}  // namespace kq::ref::q45k
