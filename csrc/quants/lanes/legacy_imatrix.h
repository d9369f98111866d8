// Importance-weighted rows of the 32-element formats (ggml's
// quantize_row_q{4,5}_{0,1}_impl), one block per lane.
//
// Weights: imatrix * sqrt(sigma2 + x^2), sigma2 the mean square of the whole
// row. Q4_0/Q5_0: make_qx_quants (symmetric, 19 trial scales); Q4_1/Q5_1:
// make_qkx3_quants (scale and offset, 37 trial scales). The searches are
// search.h's, as for the k-quants; see lane_api.h for V.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/blocks.h"
#include "quants/lanes/kchunk.h"
#include "quants/lanes/lane_api.h"
#include "quants/lanes/search.h"

namespace kq::lanes {

// Blocks [b_begin, b_end) of 32 of a weighted row, V::N per vector (V may be
// a Pack): kAffine ? make_qkx3_quants with nmax (rmin -0.9, rdelta 0.05, 36
// steps: (nmax - 0.9 .. nmax + 0.9)/range) : make_qx_quants with nmax. Calls
// pack(block index, scale, the_min, levels of the block) for each block.
template <class V, bool kAffine, int kNmax, class Pack>
inline void weighted_blocks32(const float* x, const float* qw, int64_t b_begin, int64_t b_end, float sigma2,
                              Pack pack) {
    using F = typename V::F;
    const F s2 = V::fset(sigma2);
    for (int64_t b0 = b_begin; b0 < b_end; b0 += V::N) {
        const int lanes = static_cast<int>(std::min<int64_t>(V::N, b_end - b0));
        F xt[32], wt[32];
        load_transposed<V, 32>(x + b0 * 32, lanes, xt);
        load_transposed<V, 32>(qw + b0 * 32, lanes, wt);
        for (int i = 0; i < 32; ++i) wt[i] = wt[i] * V::sqrt(s2 + xt[i] * xt[i]);
        F scale = V::fset(0.f), mn = V::fset(0.f);
        typename V::I L[32];
        if constexpr (kAffine) {
            qkx2_search<V, 32, false, true>(xt, wt, kNmax, -0.9f, 0.05f, 36, scale, mn, L);
        } else {
            qx_search_any<V, 32>(xt, kNmax, scale, L, wt);
        }
        alignas(64) int32_t lv[32][V::N];
        alignas(64) float sc[V::N], mi[V::N];
        for (int i = 0; i < 32; ++i) V::store_i32(lv[i], L[i]);
        V::store(sc, scale);
        V::store(mi, mn);
        for (int l = 0; l < lanes; ++l) {
            uint8_t q[32];
            for (int i = 0; i < 32; ++i) q[i] = static_cast<uint8_t>(lv[i][l]);
            pack(b0 + l, sc[l], mi[l], q);
        }
    }
}

// A weighted row: sigma2 = (sum of x^2 over the row, left to right) / n; the
// blocks that fill whole vectors of VS, the rest on V alone (short rows).
template <class V, class VS, bool kAffine, int kNmax, class Pack>
inline void weighted_row32(const float* x, const float* qw, int64_t n, Pack pack) {
    float sumsq = 0.f;
    for (int64_t i = 0; i < n; ++i) sumsq += x[i] * x[i];
    const float sigma2 = sumsq / static_cast<float>(n);
    const int64_t nb = n / 32, head = nb / VS::N * VS::N;
    weighted_blocks32<VS, kAffine, kNmax>(x, qw, 0, head, sigma2, pack);
    weighted_blocks32<V, kAffine, kNmax>(x, qw, head, nb, sigma2, pack);
}

// Low nibbles: byte j = level j | level j+16 << 4; Q5: bit 4 of level j in
// bit j of the little-endian qh.
template <class V>
inline void pack_nibbles32(const uint8_t* q, uint8_t* qs, uint8_t* qh) {
    uint32_t high = 0;
    for (int j = 0; j < 16; ++j) {
        qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4));
        high |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
        high |= static_cast<uint32_t>((q[j + 16] >> 4) & 1) << (j + 16);
    }
    if (qh) std::memcpy(qh, &high, 4);
}

// Q4_0 / Q5_0: x = d * (q - 2^(b-1)); make_qx_quants with nmax 8 / 16.
// VS: the lane type of the search (V or a Pack of V).
template <class V, class VS, int kBits, class Block>
void quantize_sym_weighted(const float* x, void* vy, int64_t n, const float* qw) {
    constexpr int kNmax = 1 << (kBits - 1);
    auto* y = static_cast<Block*>(vy);
    auto pack = [y](int64_t i, float d, float, const uint8_t* q) {
        y[i].d = V::half(d);
        if constexpr (kBits == 4) {
            for (int j = 0; j < 16; ++j) y[i].qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
        } else {
            pack_nibbles32<V>(q, y[i].qs, y[i].qh);
        }
    };
    weighted_row32<V, VS, false, kNmax>(x, qw, n, pack);
}

// Q4_1 / Q5_1: x = d * q + m; make_qkx3_quants with nmax 15 / 31, m = -the_min.
template <class V, class VS, int kBits, class Block>
void quantize_affine_weighted(const float* x, void* vy, int64_t n, const float* qw) {
    constexpr int kNmax = (1 << kBits) - 1;
    auto* y = static_cast<Block*>(vy);
    auto pack = [y](int64_t i, float d, float the_min, const uint8_t* q) {
        y[i].d = V::half(d);
        y[i].m = V::half(-the_min);
        if constexpr (kBits == 4) {
            for (int j = 0; j < 16; ++j) y[i].qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
        } else {
            pack_nibbles32<V>(q, y[i].qs, y[i].qh);
        }
    };
    weighted_row32<V, VS, true, kNmax>(x, qw, n, pack);
}

}  // namespace kq::lanes
