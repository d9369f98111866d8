// Q6_K: super-blocks of 256 = 16 sub-blocks of 16 values, 6.5625 bits/weight.
//   x = d * sc[j] * (q - 32),  q in [0, 63], sc[j] int8, d fp16.
//   Per half (128 values) the low 4 bits go into 64 ql bytes and the high 2
//   bits into 32 qh bytes: for l = 0..31,
//     ql[l]      = low(v[l])      | low(v[l+64]) << 4
//     ql[l + 32] = low(v[l+32])   | low(v[l+96]) << 4
//     qh[l]      = high(v[l]) | high(v[l+32]) << 2 | high(v[l+64]) << 4 | high(v[l+96]) << 6
//
// Each sub-block is fitted with make_qx_quants (weights x^2 without an
// imatrix, the raw imatrix with one; ggml does not add the sigma2 term for
// Q6_K), then the 16 signed scales are quantized to int8 with the largest-
// magnitude one at -128, and every value is re-rounded against them.
#include <cmath>
#include <cstring>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/block_io.h"
#include "quants/kquant_search.h"
#include "quants/ref.h"

namespace kq::ref {
namespace {

constexpr int kSub = 16;
constexpr int kNumSub = QK_K / kSub;

void quantize_block(const float* x, const float* qw, block_q6_K& b) {
    int8_t L[QK_K];
    float scales[kNumSub];
    float max_scale = 0.0f, max_abs_scale = 0.0f;
    for (int j = 0; j < kNumSub; ++j) {
        // nmax 32: levels -32..31, the 6-bit signed range.
        scales[j] = ks::make_qx_quants(kSub, 32, x + kSub * j, L + kSub * j, qw ? qw + kSub * j : nullptr);
        const float a = std::fabs(scales[j]);
        if (a > max_abs_scale) {
            max_abs_scale = a;
            max_scale = scales[j];
        }
    }
    if (max_abs_scale < ks::kGroupMaxEps) {  // all-zero block: every byte 0 (d = +0)
        std::memset(&b, 0, sizeof b);
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

void quantize_row_q6_K(const float* x, void* y, int64_t n, const float* imatrix) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        block_q6_K b;
        quantize_block(x + i * QK_K, imatrix ? imatrix + i * QK_K : nullptr, b);
        store_block(y, i, b);
    }
}

void dequantize_row_q6_K(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        const auto b = load_block<block_q6_K>(x, i);
        const float d = fp16_to_fp32(b.d);
        for (int half = 0; half < 2; ++half, y += 128) {
            const uint8_t* ql = b.ql + 64 * half;
            const uint8_t* qh = b.qh + 32 * half;
            const int8_t* sc = b.scales + 8 * half;
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;  // sub-block within each run of 32
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                // (d * sc) * q, in that order.
                y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
                y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
                y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
                y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
            }
        }
    }
}

}  // namespace kq::ref
