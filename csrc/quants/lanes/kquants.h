// Lane-template k-quant quantizers (Q2_K .. Q6_K, no importance weights).
//
// Each super-block of 256 is cut into sub-blocks (16 of 16 for Q2/Q3/Q6_K,
// 8 of 32 for Q4/Q5_K). Step 1 runs ggml's scale search with one sub-block
// per lane (search.h), as many super-blocks at once as fill the lanes (a
// "chunk": 2 Q4_K super-blocks on 16 lanes; half a Q6_K super-block per
// vector on 8). Step 2 is ggml's per-super-block bookkeeping (max scale,
// 6/4-bit scale codes, fp16 d), scalar and in ggml's order. Step 3
// re-quantizes each sub-block with its final scale, element-wise in natural
// layout, and packs the bits with vector loads. See lane_api.h for V.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/blocks.h"
#include "quants/lanes/lane_api.h"
#include "quants/lanes/q3_search.h"
#include "quants/lanes/search.h"

namespace kq::lanes {

// Search results of one chunk of super-blocks: by default as many as fill
// the lanes once (at least one).
template <class V, int SUB, int NSUB, int SUPER = (V::N >= NSUB ? V::N / NSUB : 1)>
struct Chunk {
    static constexpr int kSuper = SUPER;                             // super-blocks per chunk
    static constexpr int kNsub = NSUB;                               // sub-blocks per super-block
    static constexpr int kLanes = kSuper * NSUB;                     // sub-blocks per chunk
    static constexpr int kGroups = kLanes / V::N;                    // vector searches per chunk
    alignas(64) float scale[kLanes];
    alignas(64) float min[kLanes];
    alignas(64) int32_t L[kGroups][SUB][V::N];  // levels, transposed as searched
    // Level i of chunk sub-block s, as the search left it.
    int32_t level(int s, int i) const { return L[s / V::N][i][s % V::N]; }
};

// xt[i] = element i of each of `lanes` consecutive sub-blocks of SUB floats
// at x; lanes past `lanes` read zeros (their results are discarded).
template <class V, int SUB>
inline void load_transposed(const float* x, int lanes, typename V::F* xt) {
    if (lanes == V::N) {
        V::transpose(x, SUB, SUB, xt);
        return;
    }
    alignas(64) float buf[V::N * SUB] = {};
    std::memcpy(buf, x, sizeof(float) * static_cast<size_t>(lanes) * SUB);
    V::transpose(buf, SUB, SUB, xt);
}

// Runs search(xt, scale, min, L) over the sub-blocks of nsb super-blocks at x.
template <class V, int SUB, int NSUB, class C, class Search>
inline void search_chunk(const float* x, int nsb, C& c, Search search) {
    using F = typename V::F;
    for (int g = 0; g < C::kGroups; ++g) {
        const int lanes = std::min(V::N, nsb * NSUB - g * V::N);
        if (lanes <= 0) break;
        F xt[SUB];
        load_transposed<V, SUB>(x + static_cast<int64_t>(g) * V::N * SUB, lanes, xt);
        F scale = V::fset(0.f), mn = V::fset(0.f);
        typename V::I L[SUB];
        search(xt, scale, mn, L);
        V::store(c.scale + g * V::N, scale);
        V::store(c.min + g * V::N, mn);
        for (int i = 0; i < SUB; ++i) V::store_i32(c.L[g][i], L[i]);
    }
}

// Final levels of one sub-block of SUB elements at x:
//   kMin:  clamp(nearest_int((x + dm) / d), lo, hi) + off    (Q2/Q4/Q5_K)
//   else:  clamp(nearest_int(x / d), lo, hi) + off           (Q3/Q6_K)
// or, when d == 0 (ggml's `if (!d) continue;`), the levels the search left.
template <class V, int SUB, bool kMin, class C>
inline void final_levels(const float* x, float d, float dm, int lo, int hi, int off, const C& c, int s,
                         int32_t* out) {
    using F = typename V::F;
    if (d == 0.f) {
        for (int i = 0; i < SUB; ++i) out[i] = c.level(s, i);
        return;
    }
    const F dv = V::fset(d), dmv = V::fset(dm);
    for (int i = 0; i < SUB; i += V::N) {
        F v = V::load(x + i);
        if (kMin) v = v + dmv;
        V::store_i32(out + i, clamp<V>(nearest_int<V>(v / dv), lo, hi) + V::iset(off));
    }
}

// Quantizes n/256 super-blocks; per chunk C of super-blocks:
// search_all(x, super-blocks in this chunk, chunk), then
// finish(x, chunk, chunk sub-block offset, block) for each super-block.
template <class C, class Block, class SearchAll, class Finish>
inline void quantize_chunks(const float* x, void* vy, int64_t n, SearchAll search_all, Finish finish) {
    auto* y = static_cast<Block*>(vy);
    const int64_t nb = n / QK_K;
    C c;
    for (int64_t ib = 0; ib < nb; ib += C::kSuper) {
        const int nsb = static_cast<int>(std::min<int64_t>(C::kSuper, nb - ib));
        search_all(x + ib * QK_K, nsb, c);
        for (int s = 0; s < nsb; ++s) finish(x + (ib + s) * QK_K, c, s * C::kNsub, y[ib + s]);
    }
}

// The same with a search that handles one vector of sub-blocks at a time.
template <class VS, int SUB, int NSUB, class Block, class Search, class Finish>
inline void quantize_k(const float* x, void* vy, int64_t n, Search search, Finish finish) {
    using C = Chunk<VS, SUB, NSUB>;
    auto search_all = [&](const float* xc, int nsb, C& c) { search_chunk<VS, SUB, NSUB>(xc, nsb, c, search); };
    quantize_chunks<C, Block>(x, vy, n, search_all, finish);
}

// ---- Q4_K / Q5_K: 8 sub-blocks of 32, x = d*sc*q - dmin*m, 6-bit sc and m --------

// ggml's get_scale_min_k4: sub-block j's 6-bit scale and min from the 12 bytes
// (j < 4: low 6 bits of bytes j and j+4; else nibbles of byte j+4 plus the
// top 2 bits of bytes j-4 and j).
template <class V>
inline void scale_min_k4(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
    if (j < 4) {
        d = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

template <class V, int kBits, class C>
inline void finish_q45_K(const float* x, const C& c, int s0, uint8_t* scales, uint16_t& d_out,
                         uint16_t& dmin_out, int32_t* L) {
    constexpr int kMax = (1 << kBits) - 1;  // 15 or 31
    const float* sc = c.scale + s0;
    const float* mn = c.min + s0;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        if (sc[j] > max_scale) max_scale = sc[j];
        if (mn[j] > max_min) max_min = mn[j];
    }
    // 63: the largest 6-bit code.
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
        uint8_t ls = static_cast<uint8_t>(nearest_int_s<V>(inv_scale * sc[j]));
        uint8_t lm = static_cast<uint8_t>(nearest_int_s<V>(inv_min * mn[j]));
        ls = std::min<uint8_t>(63, ls);
        lm = std::min<uint8_t>(63, lm);
        if (j < 4) {
            scales[j] = ls;
            scales[j + 4] = lm;
        } else {
            scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
            scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
            scales[j - 0] |= static_cast<uint8_t>((lm >> 4) << 6);
        }
    }
    d_out = V::half(max_scale / 63.f);
    dmin_out = V::half(max_min / 63.f);
    const float d_all = V::from_half(d_out), m_all = V::from_half(dmin_out);
    for (int j = 0; j < 8; ++j) {
        uint8_t s, m;
        scale_min_k4<V>(j, scales, s, m);
        const float d = d_all * s;
        const float dm = d != 0.f ? m_all * m : 0.f;
        final_levels<V, 32, true>(x + 32 * j, d, dm, 0, kMax, 0, c, s0 + j, L + 32 * j);
    }
}

template <class V, int kBits>
inline void search_q45_K(const typename V::F* xt, typename V::F& scale, typename V::F& the_min, typename V::I* L) {
    using F = typename V::F;
    // weights: av_x + |x|, av_x = sqrt(sum x^2 / 32) of the sub-block
    F sum_x2 = V::fset(0.f);
    for (int l = 0; l < 32; ++l) sum_x2 = sum_x2 + xt[l] * xt[l];
    const F av_x = V::sqrt(sum_x2 / V::fset(32.f));
    F w[32];
    for (int l = 0; l < 32; ++l) w[l] = av_x + V::abs(xt[l]);
    if (kBits == 4) {
        qkx2_search<V, 32, false>(xt, w, 15, -1.f, 0.1f, 20, scale, the_min, L);
    } else {
        qkx2_search<V, 32, false>(xt, w, 31, -0.5f, 0.1f, 15, scale, the_min, L);
    }
}

template <class V, class VS = V>
void quantize_q4_K(const float* x, void* vy, int64_t n) {
    auto search = [](const typename VS::F* xt, typename VS::F& s, typename VS::F& m, typename VS::I* L) {
        search_q45_K<VS, 4>(xt, s, m, L);
    };
    auto finish = [](const float* xb, const Chunk<VS, 32, 8>& c, int s0, block_q4_K& y) {
        alignas(64) int32_t L[QK_K];
        finish_q45_K<V, 4>(xb, c, s0, y.scales, y.d, y.dmin, L);
        // qs: per 64 elements, 32 bytes; low nibble = first 32, high nibble = next 32.
        for (int p = 0; p < 4; ++p)
            for (int l = 0; l < 32; l += V::N)
                V::store_u8(y.qs + 32 * p + l, V::load_i32(L + 64 * p + l) | (V::load_i32(L + 64 * p + 32 + l) << 4));
    };
    quantize_k<VS, 32, 8, block_q4_K>(x, vy, n, search, finish);
}

template <class V, class VS = V>
void quantize_q5_K(const float* x, void* vy, int64_t n) {
    using I = typename V::I;
    auto search = [](const typename VS::F* xt, typename VS::F& s, typename VS::F& m, typename VS::I* L) {
        search_q45_K<VS, 5>(xt, s, m, L);
    };
    auto finish = [](const float* xb, const Chunk<VS, 32, 8>& c, int s0, block_q5_K& y) {
        alignas(64) int32_t L[QK_K];
        finish_q45_K<V, 5>(xb, c, s0, y.scales, y.d, y.dmin, L);
        // qs as Q4_K with the low 4 bits; qh[l] bit 2p / 2p+1 = bit 4 of the
        // levels l of the two sub-blocks of 64-element pair p.
        const I lo4 = V::iset(0x0f);
        for (int l = 0; l < 32; l += V::N) {
            I hi = V::iset(0);
            for (int p = 0; p < 4; ++p) {
                const I a = V::load_i32(L + 64 * p + l), b = V::load_i32(L + 64 * p + 32 + l);
                V::store_u8(y.qs + 32 * p + l, (a & lo4) | ((b & lo4) << 4));
                hi = hi | ((a >> 4) << (2 * p)) | ((b >> 4) << (2 * p + 1));
            }
            V::store_u8(y.qh + l, hi);
        }
    };
    quantize_k<VS, 32, 8, block_q5_K>(x, vy, n, search, finish);
}

// qs of Q2_K / Q3_K: per 128 elements, 32 bytes; byte l holds the 2-bit
// levels of elements l, l+32, l+64, l+96 in bits 0-1, 2-3, 4-5, 6-7.
template <class V>
inline void pack_2bit(const int32_t* L, uint8_t* qs) {
    using I = typename V::I;
    const I m3 = V::iset(3);
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; l += V::N) {
            const int32_t* p = L + 128 * h + l;
            const I q = (V::load_i32(p) & m3) | ((V::load_i32(p + 32) & m3) << 2) |
                        ((V::load_i32(p + 64) & m3) << 4) | ((V::load_i32(p + 96) & m3) << 6);
            V::store_u8(qs + 32 * h + l, q);
        }
}

// ---- Q2_K: 16 sub-blocks of 16, x = d*sc*q - dmin*m, 4-bit sc and m ------------
template <class V, class VS = V>
void quantize_q2_K(const float* x, void* vy, int64_t n) {
    using C = Chunk<VS, 16, 16>;
    auto search = [](const typename VS::F* xt, typename VS::F& s, typename VS::F& m, typename VS::I* L) {
        typename VS::F w[16];
        for (int l = 0; l < 16; ++l) w[l] = VS::abs(xt[l]);
        qkx2_search<VS, 16, true>(xt, w, 3, -0.5f, 0.1f, 15, s, m, L);
    };
    auto finish = [](const float* xb, const C& c, int s0, block_q2_K& y) {
        using F = typename V::F;
        using I = typename V::I;
        constexpr int NV = 16 / V::N;
        const float q4scale = 15.f;  // the largest 4-bit code
        F sc[NV], mn[NV];
        // max over sub-blocks of `if (x > max) max = x` from 0: order-free.
        F msc = V::fset(0.f), mmn = V::fset(0.f);
        for (int k = 0; k < NV; ++k) {
            sc[k] = V::load(c.scale + s0 + k * V::N);
            mn[k] = V::load(c.min + s0 + k * V::N);
            msc = V::select(sc[k] > msc, sc[k], msc);
            mmn = V::select(mn[k] > mmn, mn[k], mmn);
        }
        const float max_scale = V::hmax(msc), max_min = V::hmax(mmn);
        // scales[j]: low nibble nearest_int(15/max_scale * scale), high nibble
        // the same for the min (0 when the max is 0), as bytes.
        const F isc = V::fset(max_scale > 0 ? q4scale / max_scale : 0.f);
        const F imn = V::fset(max_min > 0 ? q4scale / max_min : 0.f);
        for (int k = 0; k < NV; ++k) {
            I code = max_scale > 0 ? nearest_int<V>(isc * sc[k]) : V::iset(0);
            if (max_min > 0) code = code | (nearest_int<V>(imn * mn[k]) << 4);
            V::store_u8(y.scales + k * V::N, code);
        }
        y.d = V::half(max_scale > 0 ? max_scale / q4scale : 0.f);
        y.dmin = V::half(max_min > 0 ? max_min / q4scale : 0.f);
        const float d_all = V::from_half(y.d), m_all = V::from_half(y.dmin);
        alignas(64) int32_t L[QK_K];
        for (int j = 0; j < 16; ++j) {
            const float d = d_all * (y.scales[j] & 0xF);
            const float dm = d != 0.f ? m_all * (y.scales[j] >> 4) : 0.f;
            final_levels<V, 16, true>(xb + 16 * j, d, dm, 0, 3, 0, c, s0 + j, L + 16 * j);
        }
        pack_2bit<V>(L, y.qs);
    };
    quantize_k<VS, 16, 16, block_q2_K>(x, vy, n, search, finish);
}

// ---- Q3_K: 16 sub-blocks of 16, x = d * (sc - 32) * (q - 4), 6-bit sc ----------
// Super-blocks per Q3_K chunk: four vectors' worth of sub-blocks, so that
// the survivors of the first sweep fill few vectors (see q3_search.h).
template <class V>
constexpr int kQ3Super = 4 * V::N / 16 > 0 ? 4 * V::N / 16 : 1;

template <class V>
void quantize_q3_K(const float* x, void* vy, int64_t n) {
    using C = Chunk<V, 16, 16, kQ3Super<V>>;
    auto search_all = [](const float* xc, int nsb, C& c) {
        constexpr int G = C::kGroups;
        Q3Lanes<V, 16> st[G];
        for (int g = 0; g < G; ++g) {
            typename V::F xt[16];
            const int lanes = std::max(0, std::min(V::N, nsb * 16 - g * V::N));
            if (lanes > 0) {
                load_transposed<V, 16>(xc + static_cast<int64_t>(g) * V::N * 16, lanes, xt);
            } else {
                for (auto& v : xt) v = V::fset(0.f);
            }
            for (int i = 0; i < 16; ++i) V::store(st[g].x[i], xt[i]);
        }
        typename V::F scale[G];
        typename V::I L[G][16];
        q3_search_groups<V, 16, G>(st, 4, scale, L);
        for (int g = 0; g < G; ++g) {
            V::store(c.scale + g * V::N, scale[g]);
            for (int i = 0; i < 16; ++i) V::store_i32(c.L[g][i], L[g][i]);
        }
    };
    auto finish = [](const float* xb, const C& c, int s0, block_q3_K& y) {
        using F = typename V::F;
        using I = typename V::I;
        constexpr int NV = 16 / V::N;
        F sc[NV];
        for (int k = 0; k < NV; ++k) sc[k] = V::load(c.scale + s0 + k * V::N);
        // The first scale of largest magnitude (`if (|s| > amax)`), sign kept.
        const float max_scale = first_absmax<V>(c.scale + s0, sc, NV);
        // 6-bit codes q = clamp((int8_t)nearest_int(-32/max_scale * s), -32, 31) + 32
        // (all 0 when max_scale is 0: then d = 0 and the levels stay as searched).
        alignas(64) uint8_t q[16] = {};
        if (max_scale != 0.f) {
            const float iscale = -32.f / max_scale;
            for (int k = 0; k < NV; ++k) {
                const I l = clamp<V>(sext8<V>(nearest_int<V>(V::fset(iscale) * sc[k])), -32, 31) + V::iset(32);
                V::store_u8(q + k * V::N, l);
            }
            y.d = V::half(1 / iscale);
        } else {
            y.d = V::half(0.f);
        }
        // scales: low 4 bits of code j in the nibbles of bytes 0..7 (j, j-8);
        // high 2 bits in bytes 8..11 (byte 8 + j%4, bits 2*(j/4)).
        for (int j = 0; j < 8; ++j) y.scales[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + 8] & 0xF) << 4));
        for (int j = 0; j < 4; ++j)
            y.scales[8 + j] = static_cast<uint8_t>((q[j] >> 4) | ((q[j + 4] >> 4) << 2) | ((q[j + 8] >> 4) << 4) |
                                                   ((q[j + 12] >> 4) << 6));
        const float d_all = V::from_half(y.d);
        alignas(64) int32_t L[QK_K];
        for (int j = 0; j < 16; ++j)
            final_levels<V, 16, false>(xb + 16 * j, d_all * (q[j] - 32), 0.f, -4, 3, 4, c, s0 + j, L + 16 * j);
        // hmask[l] bit b = bit 2 of the level of element 32*b + l; qs keeps bits 0-1.
        for (int l = 0; l < 32; l += V::N) {
            typename V::I hm = V::iset(0);
            for (int b = 0; b < 8; ++b) hm = hm | ((V::load_i32(L + 32 * b + l) >> 2) << b);
            V::store_u8(y.hmask + l, hm);
        }
        pack_2bit<V>(L, y.qs);
    };
    quantize_chunks<C, block_q3_K>(x, vy, n, search_all, finish);
}

// ---- Q6_K: 16 sub-blocks of 16, x = d * sc * (q - 32), int8 sc -----------------
template <class V, class VS = V>
void quantize_q6_K(const float* x, void* vy, int64_t n) {
    using C = Chunk<VS, 16, 16>;
    using I = typename V::I;
    auto search = [](const typename VS::F* xt, typename VS::F& s, typename VS::F&, typename VS::I* L) {
        // Finite data keeps every trial product within +-33: round in float (see qx_search).
        if (all_finite<VS, 16>(xt)) {
            qx_search<VS, 16, true>(xt, 32, s, L);
        } else {
            qx_search<VS, 16, false>(xt, 32, s, L);
        }
    };
    auto finish = [](const float* xb, const C& c, int s0, block_q6_K& y) {
        using F = typename V::F;
        constexpr int NV = 16 / V::N;
        F sc[NV];
        for (int k = 0; k < NV; ++k) sc[k] = V::load(c.scale + s0 + k * V::N);
        // The first scale of largest magnitude (`if (|s| > max_abs)`), sign kept.
        const float max_scale = first_absmax<V>(c.scale + s0, sc, NV);
        if (std::fabs(max_scale) < kGroupMaxEps) {
            std::memset(&y, 0, sizeof(y));
            return;
        }
        const float iscale = -128.f / max_scale;  // int8 scale codes, -128 for the largest
        y.d = V::half(1 / iscale);
        for (int k = 0; k < NV; ++k)
            V::store_u8(reinterpret_cast<uint8_t*>(y.scales) + k * V::N,
                        V::min(V::iset(127), nearest_int<V>(V::fset(iscale) * sc[k])));
        const float d_all = V::from_half(y.d);
        alignas(64) int32_t L[QK_K];
        for (int j = 0; j < 16; ++j)
            final_levels<V, 16, false>(xb + 16 * j, d_all * y.scales[j], 0.f, -32, 31, 32, c, s0 + j, L + 16 * j);
        // Per 128 elements: ql[l] = low nibbles of l | l+64, ql[l+32] = of l+32 | l+96;
        // qh[l] = high 2 bits of l, l+32, l+64, l+96 in bit pairs 0..3.
        const I lo4 = V::iset(0x0f);
        for (int h = 0; h < 2; ++h)
            for (int l = 0; l < 32; l += V::N) {
                const int32_t* p = L + 128 * h + l;
                const I a = V::load_i32(p), b = V::load_i32(p + 32), e = V::load_i32(p + 64), f = V::load_i32(p + 96);
                V::store_u8(y.ql + 64 * h + l, (a & lo4) | ((e & lo4) << 4));
                V::store_u8(y.ql + 64 * h + 32 + l, (b & lo4) | ((f & lo4) << 4));
                V::store_u8(y.qh + 32 * h + l, (a >> 4) | ((b >> 4) << 2) | ((e >> 4) << 4) | ((f >> 4) << 6));
            }
    };
    quantize_k<VS, 16, 16, block_q6_K>(x, vy, n, search, finish);
}

}  // namespace kq::lanes
