// Q4_K and Q5_K: super-blocks of 256 = 8 sub-blocks of 32 values.
//   x = d * sc[j] * q - dmin * m[j],  sc[j], m[j] 6-bit (pack_scale_min_k4),
//   d, dmin fp16; q in [0, 15] (Q4_K, 4.5 bits/weight) or [0, 31] (Q5_K,
//   5.5 bits/weight).
//   Q4_K qs: per 64 values, 32 bytes: low nibble = value l, high = value l + 32.
//   Q5_K qs: the same for the low 4 bits; qh[l] bit 2k = bit 4 of value
//   64k + l, bit 2k+1 = bit 4 of value 64k + 32 + l.
//
// The two formats share their quantizer, the block code shared with the CUDA
// backend (quants/block/q4_q5_k.h); the row loops and the dequantizers are
// here.
#include <cstdint>
#include <cstring>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/block/q4_q5_k.h"
#include "quants/block_io.h"
#include "quants/kquant_search.h"
#include "quants/ref.h"

namespace kq::ref {
namespace {

using q45k::Header;

template <class Block>
inline Header get_header(const Block& b) {
    Header h;
    h.d = b.d;
    h.dmin = b.dmin;
    std::memcpy(h.scales, b.scales, K_SCALE_SIZE);
    return h;
}

// Per 64 values: d1/m1 for the first 32 and d2/m2 for the next 32.
struct PairScales {
    float d1, m1, d2, m2;
};
inline PairScales pair_scales(const Header& h, int pair) {
    const float d = fp16_to_fp32(h.d);
    const float dmin = fp16_to_fp32(h.dmin);
    uint8_t sc, m;
    PairScales p;
    ks::unpack_scale_min_k4(2 * pair, h.scales, &sc, &m);
    p.d1 = d * static_cast<float>(sc);
    p.m1 = dmin * static_cast<float>(m);
    ks::unpack_scale_min_k4(2 * pair + 1, h.scales, &sc, &m);
    p.d2 = d * static_cast<float>(sc);
    p.m2 = dmin * static_cast<float>(m);
    return p;
}

}  // namespace

// ---- Q4_K -----------------------------------------------------------------------

void quantize_row_q4_K(const float* x, void* y, int64_t n, const float* imatrix) {
    quantize_blocks<block_q4_K, QK_K, q45k::quantize_q4_K>(x, y, n, imatrix);
}

void dequantize_row_q4_K(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        const auto b = load_block<block_q4_K>(x, i);
        const Header h = get_header(b);
        for (int c = 0; c < QK_K / 64; ++c) {
            const PairScales p = pair_scales(h, c);
            const uint8_t* q = b.qs + 32 * c;
            for (int l = 0; l < 32; ++l) *y++ = p.d1 * static_cast<float>(q[l] & 0xF) - p.m1;
            for (int l = 0; l < 32; ++l) *y++ = p.d2 * static_cast<float>(q[l] >> 4) - p.m2;
        }
    }
}

// ---- Q5_K -----------------------------------------------------------------------

void quantize_row_q5_K(const float* x, void* y, int64_t n, const float* imatrix) {
    quantize_blocks<block_q5_K, QK_K, q45k::quantize_q5_K>(x, y, n, imatrix);
}

void dequantize_row_q5_K(const void* x, float* y, int64_t n) {
    const int64_t nb = n / QK_K;
    for (int64_t i = 0; i < nb; ++i) {
        const auto b = load_block<block_q5_K>(x, i);
        const Header h = get_header(b);
        for (int c = 0; c < QK_K / 64; ++c) {
            const PairScales p = pair_scales(h, c);
            const uint8_t* q = b.qs + 32 * c;
            const unsigned lo_bit = 1u << (2 * c), hi_bit = 2u << (2 * c);
            for (int l = 0; l < 32; ++l)
                *y++ = p.d1 * static_cast<float>((q[l] & 0xF) + (b.qh[l] & lo_bit ? 16 : 0)) - p.m1;
            for (int l = 0; l < 32; ++l)
                *y++ = p.d2 * static_cast<float>((q[l] >> 4) + (b.qh[l] & hi_bit ? 16 : 0)) - p.m2;
        }
    }
}

}  // namespace kq::ref
