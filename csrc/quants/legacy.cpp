// Reference quantizers for the legacy block formats: Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0 and the activation format Q8_1, row by row. The block code (shared
// with the CUDA quantizers) is in quants/block/legacy.h, with the rules for
// each format; the dequantizers are here. Blocks of 32 values; layouts in
// core/blocks.h.
#include <cstdint>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/block/legacy.h"
#include "quants/block_io.h"
#include "quants/kquant_search.h"
#include "quants/ref.h"

namespace kq::ref {
namespace {

using legacy::kHalf;

// Quantizes a row block by block with Quantize(xb, qw, sigma2, b); sigma2,
// the row's mean square, enters the imatrix weights only.
template <class Block, int kQK, void (*Quantize)(const float*, const float*, float, Block&)>
void quantize_row(const float* x, void* y, int64_t n, const float* imatrix) {
    const float sigma2 = imatrix ? ks::sum_squares(x, n) / static_cast<float>(n) : 0.0f;
    for (int64_t i = 0; i < n / kQK; ++i) {
        Block b;
        Quantize(x + i * kQK, imatrix ? imatrix + i * kQK : nullptr, sigma2, b);
        store_block(y, i, b);
    }
}

// Q8_0 and Q8_1 dequantize alike (Q8_1's s is not needed): x = q * d.
template <class Block>
void dequantize_q8(const void* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n / 32; ++i, y += 32) {
        const auto b = load_block<Block>(x, i);
        const float d = fp16_to_fp32(b.d);
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
    }
}

inline uint32_t load_qh(const uint8_t* qh_bytes) {
    return static_cast<uint32_t>(qh_bytes[0]) | (static_cast<uint32_t>(qh_bytes[1]) << 8) |
           (static_cast<uint32_t>(qh_bytes[2]) << 16) | (static_cast<uint32_t>(qh_bytes[3]) << 24);
}

}  // namespace

// ---- Q4_0: x = d * (q - 8) ---------------------------------------------------

void quantize_row_q4_0(const float* x, void* y, int64_t n, const float* imatrix) {
    quantize_row<block_q4_0, QK4_0, legacy::quantize_q4_0>(x, y, n, imatrix);
}

void dequantize_row_q4_0(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK4_0;
    for (int64_t i = 0; i < nb; ++i, y += QK4_0) {
        const auto b = load_block<block_q4_0>(x, i);
        const float d = fp16_to_fp32(b.d);
        for (int j = 0; j < kHalf; ++j) {
            y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
            y[j + kHalf] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
        }
    }
}

// ---- Q4_1: x = d * q + m ------------------------------------------------------

void quantize_row_q4_1(const float* x, void* y, int64_t n, const float* imatrix) {
    quantize_row<block_q4_1, QK4_1, legacy::quantize_q4_1>(x, y, n, imatrix);
}

void dequantize_row_q4_1(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK4_1;
    for (int64_t i = 0; i < nb; ++i, y += QK4_1) {
        const auto b = load_block<block_q4_1>(x, i);
        const float d = fp16_to_fp32(b.d);
        const float m = fp16_to_fp32(b.m);
        for (int j = 0; j < kHalf; ++j) {
            y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
            y[j + kHalf] = static_cast<float>(b.qs[j] >> 4) * d + m;
        }
    }
}

// ---- Q5_0: x = d * (q - 16) ---------------------------------------------------

void quantize_row_q5_0(const float* x, void* y, int64_t n, const float* imatrix) {
    quantize_row<block_q5_0, QK5_0, legacy::quantize_q5_0>(x, y, n, imatrix);
}

void dequantize_row_q5_0(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK5_0;
    for (int64_t i = 0; i < nb; ++i, y += QK5_0) {
        const auto b = load_block<block_q5_0>(x, i);
        const float d = fp16_to_fp32(b.d);
        const uint32_t qh = load_qh(b.qh);
        for (int j = 0; j < kHalf; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + kHalf)) & 1u) << 4;
            y[j] = static_cast<float>(((b.qs[j] & 0x0F) | h0) - 16) * d;
            y[j + kHalf] = static_cast<float>(((b.qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

// ---- Q5_1: x = d * q + m ------------------------------------------------------

void quantize_row_q5_1(const float* x, void* y, int64_t n, const float* imatrix) {
    quantize_row<block_q5_1, QK5_1, legacy::quantize_q5_1>(x, y, n, imatrix);
}

void dequantize_row_q5_1(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK5_1;
    for (int64_t i = 0; i < nb; ++i, y += QK5_1) {
        const auto b = load_block<block_q5_1>(x, i);
        const float d = fp16_to_fp32(b.d);
        const float m = fp16_to_fp32(b.m);
        const uint32_t qh = load_qh(b.qh);
        for (int j = 0; j < kHalf; ++j) {
            const int h0 = static_cast<int>((qh >> j) & 1u) << 4;
            const int h1 = static_cast<int>((qh >> (j + kHalf)) & 1u) << 4;
            y[j] = static_cast<float>((b.qs[j] & 0x0F) | h0) * d + m;
            y[j + kHalf] = static_cast<float>((b.qs[j] >> 4) | h1) * d + m;
        }
    }
}

// ---- Q8_0 / Q8_1: x = d * q, q in [-127, 127] ---------------------------------

void quantize_row_q8_0(const float* x, void* y, int64_t n, const float*) {
    quantize_blocks<block_q8_0, QK8_0, legacy::quantize_q8_0>(x, y, n);
}

void dequantize_row_q8_0(const void* x, float* y, int64_t n) { dequantize_q8<block_q8_0>(x, y, n); }

void quantize_row_q8_1(const float* x, void* y, int64_t n, const float*) {
    quantize_blocks<block_q8_1, QK8_1, legacy::quantize_q8_1>(x, y, n);
}

void dequantize_row_q8_1(const void* x, float* y, int64_t n) { dequantize_q8<block_q8_1>(x, y, n); }

}  // namespace kq::ref
