// Q4_K and Q5_K: super-blocks of 256 = 8 sub-blocks of 32 values.
//   x = d * sc[j] * q - dmin * m[j],  sc[j], m[j] 6-bit (pack_scale_min_k4),
//   d, dmin fp16; q in [0, 15] (Q4_K, 4.5 bits/weight) or [0, 31] (Q5_K,
//   5.5 bits/weight).
//   Q4_K qs: per 64 values, 32 bytes: low nibble = value l, high = value l + 32.
//   Q5_K qs: the same for the low 4 bits; qh[l] bit 2k = bit 4 of value
//   64k + l, bit 2k+1 = bit 4 of value 64k + 32 + l.
//
// The two formats share their quantizer; they differ only in nmax and the
// search parameters. Plain path (quantize_row_q{4,5}_K_ref): weights
// rms(sub-block) + |x|, squared error, scales/mins quantized linearly against
// their maxima (63 = the largest 6-bit value). Imatrix path (_impl): weights
// imatrix * sqrt(sigma2 + x^2), sigma2 twice the block's mean square, and the
// 6-bit scales/mins searched with make_qp_quants.
#include <cmath>
#include <cstring>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/block_io.h"
#include "quants/kquant_search.h"
#include "quants/ref.h"

namespace kq::ref {
namespace {

constexpr int kSub = 32;
constexpr int kNumSub = QK_K / kSub;  // 8
constexpr float kScaleMax = 63.f;     // largest 6-bit scale / min

// What differs between Q4_K and Q5_K in the plain search: the trial inverse
// scales (nmax + rmin + rdelta*k)/range for k = 0..nstep.
struct PlainSearch {
    int nmax;
    float rmin, rdelta;
    int nstep;
};
constexpr PlainSearch kQ4Plain{15, -1.0f, 0.1f, 20};  // (15 - 1 .. 15 + 1)
constexpr PlainSearch kQ5Plain{31, -0.5f, 0.1f, 15};  // (31 - 0.5 .. 31 + 1)

// Fields common to block_q4_K and block_q5_K.
struct Header {
    half_bits d, dmin;
    uint8_t scales[K_SCALE_SIZE];
};

// Re-rounds every value against the stored scales and mins (sub-blocks with
// scale 0 keep the search's levels).
void requantize(const float* x, const Header& h, int nmax, uint8_t* L) {
    const float dall = fp16_to_fp32(h.d);
    const float mall = fp16_to_fp32(h.dmin);
    for (int j = 0; j < kNumSub; ++j) {
        uint8_t sc, m;
        ks::unpack_scale_min_k4(j, h.scales, &sc, &m);
        const float d = dall * static_cast<float>(sc);
        if (d == 0.0f) continue;
        const float dm = mall * static_cast<float>(m);
        for (int k = 0; k < kSub; ++k)
            L[kSub * j + k] = static_cast<uint8_t>(ks::clamp_int(ks::nearest_int((x[kSub * j + k] + dm) / d), 0, nmax));
    }
}

void quantize_plain(const float* x, const PlainSearch& p, Header& h, uint8_t* L) {
    float weights[kSub], scales[kNumSub], mins[kNumSub];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < kNumSub; ++j) {
        const float* xs = x + kSub * j;
        const float av_x = std::sqrt(ks::sum_squares(xs, kSub) / kSub);
        for (int k = 0; k < kSub; ++k) weights[k] = av_x + std::fabs(xs[k]);
        scales[j] = ks::make_qkx2_quants(kSub, p.nmax, xs, weights, L + kSub * j, &mins[j], p.rmin, p.rdelta, p.nstep,
                                         false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? kScaleMax / max_scale : 0.f;
    const float inv_min = max_min > 0 ? kScaleMax / max_min : 0.f;
    uint8_t ls[kNumSub], lm[kNumSub];
    for (int j = 0; j < kNumSub; ++j) {
        // Byte truncation first, then the clamp, as ggml stores them.
        const uint8_t s = static_cast<uint8_t>(ks::nearest_int(inv_scale * scales[j]));
        const uint8_t m = static_cast<uint8_t>(ks::nearest_int(inv_min * mins[j]));
        ls[j] = s < 63 ? s : 63;
        lm[j] = m < 63 ? m : 63;
    }
    ks::pack_scale_min_k4(ls, lm, h.scales);
    h.d = fp32_to_fp16(max_scale / kScaleMax);
    h.dmin = fp32_to_fp16(max_min / kScaleMax);
    requantize(x, h, p.nmax, L);
}

// clamp_levels: Q5_K clamps the searched 6-bit levels to 63, Q4_K does not
// (they cannot exceed 63 except by wrap-around, which ggml keeps).
void quantize_imatrix(const float* x, const float* qw, int nmax, bool clamp_levels, Header& h, uint8_t* L) {
    float weights[kSub], scales[kNumSub], mins[kNumSub], sw[kNumSub];
    const float sigma2 = 2 * ks::sum_squares(x, QK_K) / QK_K;
    for (int j = 0; j < kNumSub; ++j) {
        ks::imatrix_weights(qw + kSub * j, x + kSub * j, kSub, sigma2, weights);
        float s = 0.0f;
        for (int k = 0; k < kSub; ++k) s += weights[k];
        sw[j] = s;
        // rmin -0.9, rdelta 0.05, 36 steps: (nmax - 0.9 .. nmax + 0.9)/range.
        scales[j] = ks::make_qkx3_quants(kSub, nmax, x + kSub * j, weights, L + kSub * j, &mins[j], -0.9f, 0.05f, 36,
                                         false);
    }
    uint8_t ls[kNumSub], lm[kNumSub];
    const float d_block = ks::make_qp_quants(kNumSub, 63, scales, ls, sw);
    const float m_block = ks::make_qp_quants(kNumSub, 63, mins, lm, sw);
    if (clamp_levels) {
        for (int j = 0; j < kNumSub; ++j) {
            ls[j] = ls[j] < 63 ? ls[j] : 63;
            lm[j] = lm[j] < 63 ? lm[j] : 63;
        }
    }
    ks::pack_scale_min_k4(ls, lm, h.scales);
    h.d = fp32_to_fp16(d_block);
    h.dmin = fp32_to_fp16(m_block);
    requantize(x, h, nmax, L);
}

template <class Block>
inline void set_header(Block& b, const Header& h) {
    b.d = h.d;
    b.dmin = h.dmin;
    std::memcpy(b.scales, h.scales, K_SCALE_SIZE);
}

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
    const int64_t nb = n / QK_K;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * QK_K;
        Header h;
        if (imatrix)
            quantize_imatrix(xb, imatrix + i * QK_K, 15, false, h, L);
        else
            quantize_plain(xb, kQ4Plain, h, L);
        block_q4_K b;
        set_header(b, h);
        for (int c = 0; c < QK_K / 64; ++c)
            for (int l = 0; l < 32; ++l)
                b.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + l + 32] << 4));
        store_block(y, i, b);
    }
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
    const int64_t nb = n / QK_K;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; ++i) {
        const float* xb = x + i * QK_K;
        Header h;
        if (imatrix)
            quantize_imatrix(xb, imatrix + i * QK_K, 31, true, h, L);
        else
            quantize_plain(xb, kQ5Plain, h, L);
        block_q5_K b;
        set_header(b, h);
        std::memset(b.qh, 0, sizeof b.qh);
        for (int c = 0; c < QK_K / 64; ++c) {
            for (int l = 0; l < 32; ++l) {
                int l1 = L[64 * c + l], l2 = L[64 * c + l + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    b.qh[l] = static_cast<uint8_t>(b.qh[l] | (1u << (2 * c)));
                }
                if (l2 > 15) {
                    l2 -= 16;
                    b.qh[l] = static_cast<uint8_t>(b.qh[l] | (2u << (2 * c)));
                }
                b.qs[32 * c + l] = static_cast<uint8_t>(l1 | (l2 << 4));
            }
        }
        store_block(y, i, b);
    }
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
