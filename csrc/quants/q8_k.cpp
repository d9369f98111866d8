// Q8_K: the activation format of the k-quant dot products.
// Super-blocks of 256: x = d * q with an fp32 d, q in [-128, 127], plus the
// sums of q over each 16 values (bsums) that the Q2_K..Q6_K dot products use
// to apply sub-block offsets without touching every q again.
// The imatrix is ignored (activations have no importance weights).
#include <cmath>

#include "core/blocks.h"
#include "quants/block_io.h"
#include "quants/kquant_search.h"
#include "quants/ref.h"

namespace kq::ref {

void quantize_row_q8_K(const float* x, void* y, int64_t n, const float*) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i, x += QK_K) {
        block_q8_K b{};  // all-zero block: d = 0, q = 0, bsums = 0
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; ++j) {
            const float a = std::fabs(x[j]);
            if (a > amax) {
                amax = a;
                max = x[j];
            }
        }
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
        store_block(y, i, b);
    }
}

void dequantize_row_q8_K(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i, y += QK_K) {
        const auto b = load_block<block_q8_K>(x, i);
        for (int j = 0; j < QK_K; ++j) y[j] = b.d * static_cast<float>(b.qs[j]);
    }
}

}  // namespace kq::ref
