// Q2_K: super-blocks of 256 = 16 sub-blocks of 16 values, 2.625 bits/weight.
//   x = d * sc[j] * q - dmin * m[j],  q in [0, 3], sc[j] and m[j] 4-bit
//   scales[j]: low nibble sc[j], high nibble m[j]; d, dmin fp16.
//   qs: pack_2bit_256 layout (see kquant_search.h).
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

void quantize_row_q2_K(const float* x, void* y, int64_t n, const float* imatrix) {
    quantize_blocks<block_q2_K, QK_K, q2k::quantize>(x, y, n, imatrix);
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
