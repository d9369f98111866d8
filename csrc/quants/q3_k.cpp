// Q3_K: super-blocks of 256 = 16 sub-blocks of 16 values, 3.4375 bits/weight.
//   x = d * (sc[j] - 32) * (q - 4),  q in [0, 7], sc[j] 6-bit, d fp16.
//   q's low 2 bits: qs in the pack_2bit_256 layout; q's bit 2: hmask[l] bit k
//   is that bit of value l + 32*k (l = 0..31, k = 0..7).
//   scales (12 bytes): low nibbles of sc[0..7] in bytes 0..7 bits 0-3, of
//   sc[8..15] in bytes 0..7 bits 4-7; the top 2 bits of sc[j] in byte
//   8 + j%4 at bits 2*(j/4)..2*(j/4)+1.
//
// The quantizer (plain and imatrix paths) is the block code shared with the
// CUDA backend, quants/block/q2_q3_k.h; the row loop and the dequantizer are
// here.
#include <cstdint>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/block/q2_q3_k.h"
#include "quants/block_io.h"
#include "quants/ref.h"

namespace kq::ref {

void quantize_row_q3_K(const float* x, void* y, int64_t n, const float* imatrix) {
    quantize_blocks<block_q3_K, QK_K, q3k::quantize>(x, y, n, imatrix);
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
                    const float dl = dall * static_cast<float>(q3k::get_scale(b.scales, is++));
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
