// Q2_K: super-blocks of 256 = 16 sub-blocks of 16 values, 2.625 bits/weight.
//   x = d * sc[j] * q - dmin * m[j],  q in [0, 3], sc[j] and m[j] 4-bit
//   scales[j]: low nibble sc[j], high nibble m[j]; d, dmin fp16.
//   qs: pack_2bit_256 layout (see kquant_search.h).
//
// Plain path (ggml's quantize_row_q2_K_ref): each sub-block is fitted with
// the asymmetric search weighted by |x| and minimising the absolute error,
// then scales and mins are quantized linearly against their maxima (15 = the
// largest 4-bit value). Imatrix path (quantize_row_q2_K_impl): weights
// imatrix * sqrt(sigma2 + x^2) with sigma2 the block's mean square, squared
// error, and the 4-bit scales/mins themselves searched with make_qp_quants.
// Both paths finish by re-rounding every value against the stored scales.
#include <cmath>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/block_io.h"
#include "quants/kquant_search.h"
#include "quants/ref.h"

namespace kq::ref {
namespace {

constexpr int kSub = 16;                // values per sub-block
constexpr int kNumSub = QK_K / kSub;    // 16 sub-blocks
constexpr float kScaleMax = 15.f;       // largest 4-bit scale / min

// Re-rounds every value to the levels the stored (fp16-rounded) scales
// define; sub-blocks whose scale is 0 keep the search's levels.
void requantize(const float* x, const block_q2_K& b, uint8_t* L) {
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

void quantize_block_plain(const float* x, block_q2_K& b) {
    uint8_t L[QK_K];
    float weights[kSub], scales[kNumSub], mins[kNumSub];
    float max_scale = 0.0f, max_min = 0.0f;  // both non-negative: the min is subtracted
    for (int j = 0; j < kNumSub; ++j) {
        for (int k = 0; k < kSub; ++k) weights[k] = std::fabs(x[kSub * j + k]);
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

void quantize_block_imatrix(const float* x, const float* qw, block_q2_K& b) {
    uint8_t L[QK_K];
    float weight[kSub], scales[kNumSub], mins[kNumSub], sw[kNumSub];
    uint8_t Ls[kNumSub], Lm[kNumSub];
    const float sigma2 = ks::sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < kNumSub; ++j) {
        ks::imatrix_weights(qw + kSub * j, x + kSub * j, kSub, sigma2, weight);
        float s = 0.0f;
        for (int k = 0; k < kSub; ++k) s += weight[k];
        sw[j] = s;
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

}  // namespace

void quantize_row_q2_K(const float* x, void* y, int64_t n, const float* imatrix) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        block_q2_K b;
        if (imatrix)
            quantize_block_imatrix(x + i * QK_K, imatrix + i * QK_K, b);
        else
            quantize_block_plain(x + i * QK_K, b);
        store_block(y, i, b);
    }
}

void dequantize_row_q2_K(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        const auto b = load_block<block_q2_K>(x, i);
        const float d = fp16_to_fp32(b.d);
        const float dmin = fp16_to_fp32(b.dmin);
        // Output order: per half of 128, for each bit pair (shift), the 32
        // bytes give 2 sub-blocks of 16 (bytes 0-15 and 16-31).
        int is = 0;
        for (int half = 0; half < 2; ++half) {
            const uint8_t* q = b.qs + 32 * half;
            for (int shift = 0; shift < 8; shift += 2) {
                for (int part = 0; part < 2; ++part) {
                    const uint8_t sc = b.scales[is++];
                    const float dl = d * static_cast<float>(sc & 0xF);
                    const float ml = dmin * static_cast<float>(sc >> 4);
                    for (int l = 0; l < 16; ++l)
                        *y++ = dl * static_cast<float>((q[16 * part + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

}  // namespace kq::ref
