// Q8_K: the activation format of the k-quant dot products.
// Super-blocks of 256: x = d * q with an fp32 d, q in [-128, 127], plus the
// sums of q over each 16 values (bsums) that the Q2_K..Q6_K dot products use
// to apply sub-block offsets without touching every q again.
// The imatrix is ignored (activations have no importance weights). The block
// quantizer, shared with the CUDA backend, is in quants/block/q6_q8_k.h.
#include <cstdint>

#include "core/blocks.h"
#include "quants/block/q6_q8_k.h"
#include "quants/block_io.h"
#include "quants/ref.h"

namespace kq::ref {

void quantize_row_q8_K(const float* x, void* y, int64_t n, const float*) {
    quantize_blocks<block_q8_K, QK_K, q8k::quantize>(x, y, n);
}

void dequantize_row_q8_K(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i, y += QK_K) {
        const auto b = load_block<block_q8_K>(x, i);
        for (int j = 0; j < QK_K; ++j) y[j] = b.d * static_cast<float>(b.qs[j]);
    }
}

}  // namespace kq::ref
