// Q6_K: super-blocks of 256 = 16 sub-blocks of 16 values, 6.5625 bits/weight.
//   x = d * sc[j] * (q - 32),  q in [0, 63], sc[j] int8, d fp16.
//   Per half (128 values) the low 4 bits go into 64 ql bytes and the high 2
//   bits into 32 qh bytes: for l = 0..31,
//     ql[l]      = low(v[l])      | low(v[l+64]) << 4
//     ql[l + 32] = low(v[l+32])   | low(v[l+96]) << 4
//     qh[l]      = high(v[l]) | high(v[l+32]) << 2 | high(v[l+64]) << 4 | high(v[l+96]) << 6
//
// The quantizer is the block code shared with the CUDA backend,
// quants/block/q6_q8_k.h; the row loop and the dequantizer are here.
#include <cstdint>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/block/q6_q8_k.h"
#include "quants/block_io.h"
#include "quants/ref.h"

namespace kq::ref {

void quantize_row_q6_K(const float* x, void* y, int64_t n, const float* imatrix) {
    quantize_blocks<block_q6_K, QK_K, q6k::quantize>(x, y, n, imatrix);
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
