// Q3_K: super-blocks of 256 = 16 sub-blocks of 16 values, 3.4375 bits/weight.
//   x = d * (sc[j] - 32) * (q - 4),  q in [0, 7], sc[j] 6-bit, d fp16.
//   q's low 2 bits: qs in the pack_2bit_256 layout; q's bit 2: hmask[l] bit k
//   is that bit of value l + 32*k (l = 0..31, k = 0..7).
//   scales (12 bytes): low nibbles of sc[0..7] in bytes 0..7 bits 0-3, of
//   sc[8..15] in bytes 0..7 bits 4-7; the top 2 bits of sc[j] in byte
//   8 + j%4 at bits 2*(j/4)..2*(j/4)+1.
//
// Plain path (quantize_row_q3_K_ref): each sub-block by make_q3_quants
// (symmetric, weights x^2, refined level by level), then the 16 signed scales
// linearly to 6 bits with the largest-magnitude one at -32. Imatrix path
// (quantize_row_q3_K_impl): weights imatrix * sqrt(sigma2 + x^2) with sigma2
// twice the block's mean square, and the scales searched with make_qx_quants.
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

// Stores the 6-bit value l (0..63) of sub-block j into the packed scales,
// which must start zeroed.
inline void put_scale(uint8_t* scales, int j, int l) {
    if (j < 8)
        scales[j] = static_cast<uint8_t>(l & 0xF);
    else
        scales[j - 8] = static_cast<uint8_t>(scales[j - 8] | ((l & 0xF) << 4));
    scales[8 + j % 4] = static_cast<uint8_t>(scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
}

// The signed scale sc[j] - 32 of sub-block j.
inline int get_scale(const uint8_t* scales, int j) {
    const int lo = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
    const int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

// Re-rounds each value against the stored scale (sub-blocks with scale 0 keep
// the search's levels), then splits q into hmask bits and 2-bit qs.
void finish_block(const float* x, int8_t* L, block_q3_K& b) {
    const float dall = fp16_to_fp32(b.d);
    for (int j = 0; j < kNumSub; ++j) {
        const float d = dall * static_cast<float>(static_cast<int8_t>(get_scale(b.scales, j)));
        if (d == 0.0f) continue;
        for (int k = 0; k < kSub; ++k) {
            const int l = ks::clamp_int(ks::nearest_int(x[kSub * j + k] / d), -4, 3);
            L[kSub * j + k] = static_cast<int8_t>(l + 4);
        }
    }
    std::memset(b.hmask, 0, sizeof b.hmask);
    for (int j = 0; j < QK_K; ++j) {
        if (L[j] > 3) {
            b.hmask[j % 32] = static_cast<uint8_t>(b.hmask[j % 32] | (1u << (j / 32)));
            L[j] = static_cast<int8_t>(L[j] - 4);
        }
    }
    ks::pack_2bit_256(reinterpret_cast<const uint8_t*>(L), b.qs);
}

void quantize_block_plain(const float* x, block_q3_K& b) {
    int8_t L[QK_K];
    float scales[kNumSub];
    float max_scale = 0.0f, amax = 0.0f;  // signed scale of largest magnitude
    for (int j = 0; j < kNumSub; ++j) {
        scales[j] = ks::make_q3_quants(kSub, 4, x + kSub * j, L + kSub * j);
        const float a = std::fabs(scales[j]);
        if (a > amax) {
            amax = a;
            max_scale = scales[j];
        }
    }
    std::memset(b.scales, 0, sizeof b.scales);
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

void quantize_block_imatrix(const float* x, const float* qw, block_q3_K& b) {
    int8_t L[QK_K];
    float scales[kNumSub], weight[kSub], sw[kNumSub];
    int8_t Ls[kNumSub];
    const float sigma2 = 2 * ks::sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < kNumSub; ++j) {
        ks::imatrix_weights(qw + kSub * j, x + kSub * j, kSub, sigma2, weight);
        float s = 0.0f;
        for (int k = 0; k < kSub; ++k) s += weight[k];
        sw[j] = s;
        scales[j] = ks::make_qx_quants(kSub, 4, x + kSub * j, L + kSub * j, weight);
    }
    std::memset(b.scales, 0, sizeof b.scales);
    // 6-bit signed scales: levels 0..63 stand for -32..31.
    const float d_block = ks::make_qx_quants(kNumSub, 32, scales, Ls, sw);
    for (int j = 0; j < kNumSub; ++j) put_scale(b.scales, j, Ls[j]);
    b.d = fp32_to_fp16(d_block);
    finish_block(x, L, b);
}

}  // namespace

void quantize_row_q3_K(const float* x, void* y, int64_t n, const float* imatrix) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        block_q3_K b;
        if (imatrix)
            quantize_block_imatrix(x + i * QK_K, imatrix + i * QK_K, b);
        else
            quantize_block_plain(x + i * QK_K, b);
        store_block(y, i, b);
    }
}

void dequantize_row_q3_K(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        const auto b = load_block<block_q3_K>(x, i);
        const float dall = fp16_to_fp32(b.d);
        // Same traversal as Q2_K: per half, per bit pair, two sub-blocks of 16;
        // the hmask bit advances with every bit pair across both halves.
        int is = 0;
        unsigned hbit = 0;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* q = b.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2, ++hbit) {
                for (int part = 0; part < 2; ++part) {
                    const float dl = dall * static_cast<float>(get_scale(b.scales, is++));
                    for (int l = 16 * part; l < 16 * part + 16; ++l) {
                        const int low = (q[l] >> shift) & 3;
                        const int high_missing = (b.hmask[l] >> hbit) & 1 ? 0 : 4;
                        *y++ = dl * static_cast<float>(low - high_missing);
                    }
                }
            }
        }
    }
}

}  // namespace kq::ref
