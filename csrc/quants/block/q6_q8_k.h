// Block quantizers of Q6_K and Q8_K (super-blocks of 256), shared by the
// CPU reference (q6_k.cpp, q8_k.cpp: formats, row loops and dequantizers)
// and the CUDA quantizers (one GPU thread per super-block,
// csrc/cuda/quant_kquants.cuh, quant_legacy.cuh). The rules that keep CPU and
// GPU bytes equal are in quants/kquant_search.h.
//
// Q6_K: each sub-block of 16 is fitted with make_qx_quants (weights x^2
// without an imatrix, the raw imatrix with one; ggml does not add the sigma2
// term for Q6_K), then the 16 signed scales are quantized to int8 with the
// largest-magnitude one at -128, and every value is re-rounded against them.
//
// Q8_K, the activation format of the k-quant dot products: x = d * q with an
// fp32 d, q in [-128, 127], plus the sums of q over each 16 values (bsums).
// The imatrix does not apply (activations have no importance weights).
#pragma once
#include <math.h>

#include <cstddef>
#include <cstdint>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/kquant_search.h"

namespace kq::ref::q6k {
namespace {

constexpr int kSub = 16;
constexpr int kNumSub = QK_K / kSub;

// The block of 256 values x; qw: its imatrix slice, or null.
inline KQ_HD void quantize(const float* x, const float* qw, block_q6_K& b) {
    int8_t L[QK_K];
    float scales[kNumSub];
    float max_scale = 0.0f, max_abs_scale = 0.0f;
    for (int j = 0; j < kNumSub; ++j) {
        // nmax 32: levels -32..31, the 6-bit signed range.
        scales[j] = ks::make_qx_quants(kSub, 32, x + kSub * j, L + kSub * j, qw ? qw + kSub * j : nullptr);
        const float a = fabsf(scales[j]);
        if (a > max_abs_scale) {
            max_abs_scale = a;
            max_scale = scales[j];
        }
    }
    if (max_abs_scale < ks::kGroupMaxEps) {  // all-zero block: every byte 0 (d = +0)
        uint8_t* p = reinterpret_cast<uint8_t*>(&b);
        for (size_t i = 0; i < sizeof b; ++i) p[i] = 0;
        return;
    }
    // -128 is the int8 level without a +128 twin; it takes the extreme scale.
    const float iscale = -128.f / max_scale;
    b.d = fp32_to_fp16(1 / iscale);
    for (int j = 0; j < kNumSub; ++j) {
        const int s = ks::nearest_int(iscale * scales[j]);
        b.scales[j] = static_cast<int8_t>(s < 127 ? s : 127);
    }
    const float dall = fp16_to_fp32(b.d);
    for (int j = 0; j < kNumSub; ++j) {
        const float d = dall * static_cast<float>(b.scales[j]);
        if (d == 0.0f) continue;  // keeps the search's levels
        for (int k = 0; k < kSub; ++k) {
            const int l = ks::clamp_int(ks::nearest_int(x[kSub * j + k] / d), -32, 31);
            L[kSub * j + k] = static_cast<int8_t>(l + 32);
        }
    }
    for (int half = 0; half < 2; ++half) {
        const int8_t* v = L + 128 * half;
        uint8_t* ql = b.ql + 64 * half;
        uint8_t* qh = b.qh + 32 * half;
        for (int l = 0; l < 32; ++l) {
            ql[l] = static_cast<uint8_t>((v[l] & 0xF) | ((v[l + 64] & 0xF) << 4));
            ql[l + 32] = static_cast<uint8_t>((v[l + 32] & 0xF) | ((v[l + 96] & 0xF) << 4));
            qh[l] = static_cast<uint8_t>((v[l] >> 4) | ((v[l + 32] >> 4) << 2) | ((v[l + 64] >> 4) << 4) |
                                         ((v[l + 96] >> 4) << 6));
        }
    }
}

}  // namespace
}  // namespace kq::ref::q6k

namespace kq::ref::q8k {
namespace {

inline KQ_HD void quantize(const float* x, block_q8_K& b) {
    b.d = 0.0f;  // an all-zero block: d = 0, q = 0, bsums = 0
    for (int j = 0; j < QK_K; ++j) b.qs[j] = 0;
    for (int g = 0; g < QK_K / 16; ++g) b.bsums[g] = 0;
    float amax;
    const float max = ks::signed_absmax(QK_K, x, &amax);
    if (amax != 0.0f) {
        // The extreme value maps to -127 (not -128): ggml keeps the range
        // symmetric so that the IQ dot products can negate freely.
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; ++j) {
            const int v = ks::nearest_int(iscale * x[j]);
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

}  // namespace
}  // namespace kq::ref::q8k
