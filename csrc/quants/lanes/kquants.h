// Lane-template k-quant quantizers (Q2_K .. Q6_K), with and without
// importance weights (ggml's quantize_row_*_ref and quantize_row_*_impl).
//
// Each super-block of 256 is cut into sub-blocks (16 of 16 for Q2/Q3/Q6_K,
// 8 of 32 for Q4/Q5_K). Step 1 runs ggml's scale search with one sub-block
// per lane (search.h, q3_search.h), as many super-blocks at once as fill the
// lanes (a "chunk", kchunk.h). Step 2 is ggml's per-super-block bookkeeping
// (max scale, 6/4-bit scale codes, fp16 d) in ggml's order; the weighted
// paths' scale searches over the 8 or 16 sub-block scales are the
// reference's own functions (quants/kquant_search.h). Step 3 re-quantizes
// each sub-block with its final scale, element-wise in natural layout, and
// packs the bits with vector loads. See lane_api.h for V.
//
// Every driver takes qw = the row's importance weights, or null.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/blocks.h"
#include "quants/kquant_search_calls.h"  // make_qp_quants, make_qx_quants, out of line
#include "quants/lanes/kchunk.h"
#include "quants/lanes/lane_api.h"
#include "quants/lanes/pack.h"
#include "quants/lanes/q3_search.h"
#include "quants/lanes/search.h"

namespace kq::lanes {

// ---- Q4_K / Q5_K: 8 sub-blocks of 32, x = d*sc*q - dmin*m, 6-bit sc and m --------

// The 12 scale bytes, d and dmin of a super-block from its sub-blocks' search
// results, then its final levels (weighted: ggml's _impl bookkeeping).
template <class V, int kBits, class C>
inline void finish_q45_K(const float* x, const C& c, int s0, bool weighted, uint8_t* scales, uint16_t& d_out,
                         uint16_t& dmin_out, int32_t* L) {
    constexpr int kMax = (1 << kBits) - 1;  // 15 or 31
    const float* sc = c.scale + s0;
    const float* mn = c.min + s0;
    uint8_t ls[8], lm[8];
    if (weighted) {
        // The 6-bit codes by their own search, weighted by the sub-blocks'
        // summed importance; Q5_K clamps them to 63, Q4_K keeps ggml's wrap.
        const float d_block = ref::ks_calls::make_qp_quants(8, 63, sc, ls, c.sw + s0);
        const float m_block = ref::ks_calls::make_qp_quants(8, 63, mn, lm, c.sw + s0);
        if (kBits == 5)
            for (int j = 0; j < 8; ++j) {
                ls[j] = std::min<uint8_t>(63, ls[j]);
                lm[j] = std::min<uint8_t>(63, lm[j]);
            }
        d_out = V::half(d_block);
        dmin_out = V::half(m_block);
    } else {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; ++j) {
            if (sc[j] > max_scale) max_scale = sc[j];
            if (mn[j] > max_min) max_min = mn[j];
        }
        // 63: the largest 6-bit code.
        const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < 8; ++j) {
            ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int_s<V>(inv_scale * sc[j])));
            lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int_s<V>(inv_min * mn[j])));
        }
        d_out = V::half(max_scale / 63.f);
        dmin_out = V::half(max_min / 63.f);
    }
    // j < 4: bytes j and j+4 hold sc and m; j >= 4: byte j+4 their low
    // nibbles, bits 6-7 of bytes j-4 and j their top 2 bits.
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            scales[j] = ls[j];
            scales[j + 4] = lm[j];
        } else {
            scales[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            scales[j - 4] |= static_cast<uint8_t>((ls[j] >> 4) << 6);
            scales[j - 0] |= static_cast<uint8_t>((lm[j] >> 4) << 6);
        }
    }
    const float d_all = V::from_half(d_out), m_all = V::from_half(dmin_out);
    for (int j = 0; j < 8; ++j) {
        uint8_t s, m;
        scale_min_k4<V>(j, scales, s, m);
        const float d = d_all * s;
        const float dm = d != 0.f ? m_all * m : 0.f;
        final_levels<V, 32, true>(x + 32 * j, d, dm, 0, kMax, 0, c, s0 + j, L + 32 * j);
    }
}

// The sub-block search: plain weights av_x + |x| (av_x = sqrt(sum x^2 / 32))
// and make_qkx2_quants, or the imatrix weights wt and make_qkx3_quants.
template <class V, int kBits>
inline void search_q45_K(const typename V::F* xt, const typename V::F* wt, typename V::F& scale,
                         typename V::F& the_min, typename V::I* L) {
    using F = typename V::F;
    constexpr int kMax = (1 << kBits) - 1;
    if (wt) {  // rmin -0.9, rdelta 0.05, 36 steps: (nmax - 0.9 .. nmax + 0.9)/range
        qkx2_search<V, 32, false, true>(xt, wt, kMax, -0.9f, 0.05f, 36, scale, the_min, L);
        return;
    }
    F sum_x2 = V::fset(0.f);
    for (int l = 0; l < 32; ++l) sum_x2 = sum_x2 + xt[l] * xt[l];
    const F av_x = V::sqrt(sum_x2 / V::fset(32.f));
    F w[32];
    for (int l = 0; l < 32; ++l) w[l] = av_x + V::abs(xt[l]);
    if (kBits == 4) {  // (15 - 1 .. 15 + 1) / range
        qkx2_search<V, 32, false>(xt, w, 15, -1.f, 0.1f, 20, scale, the_min, L);
    } else {  // (31 - 0.5 .. 31 + 1) / range
        qkx2_search<V, 32, false>(xt, w, 31, -0.5f, 0.1f, 15, scale, the_min, L);
    }
}

template <class V, class VS = V>
void quantize_q4_K(const float* x, void* vy, int64_t n, const float* qw) {
    using FS = typename VS::F;
    auto search = [](const FS* xt, const FS* wt, FS& s, FS& m, typename VS::I* L) { search_q45_K<VS, 4>(xt, wt, s, m, L); };
    auto finish = [qw](const float* xb, const Chunk<VS, 32, 8>& c, int s0, block_q4_K& y) {
        alignas(64) int32_t L[QK_K];
        finish_q45_K<V, 4>(xb, c, s0, qw != nullptr, y.scales, y.d, y.dmin, L);
        // qs: per 64 elements, 32 bytes; low nibble = first 32, high nibble = next 32.
        for (int p = 0; p < 4; ++p)
            for (int l = 0; l < 32; l += V::N)
                V::store_u8(y.qs + 32 * p + l, V::load_i32(L + 64 * p + l) | (V::load_i32(L + 64 * p + 32 + l) << 4));
    };
    quantize_k<VS, 32, 8, block_q4_K>(x, qw, 2.f, vy, n, search, finish);
}

template <class V, class VS = V>
void quantize_q5_K(const float* x, void* vy, int64_t n, const float* qw) {
    using I = typename V::I;
    using FS = typename VS::F;
    auto search = [](const FS* xt, const FS* wt, FS& s, FS& m, typename VS::I* L) { search_q45_K<VS, 5>(xt, wt, s, m, L); };
    auto finish = [qw](const float* xb, const Chunk<VS, 32, 8>& c, int s0, block_q5_K& y) {
        alignas(64) int32_t L[QK_K];
        finish_q45_K<V, 5>(xb, c, s0, qw != nullptr, y.scales, y.d, y.dmin, L);
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
    quantize_k<VS, 32, 8, block_q5_K>(x, qw, 2.f, vy, n, search, finish);
}

// ---- Q2_K: 16 sub-blocks of 16, x = d*sc*q - dmin*m, 4-bit sc and m ------------
template <class V, class VS = V>
void quantize_q2_K(const float* x, void* vy, int64_t n, const float* qw) {
    using C = Chunk<VS, 16, 16>;
    using FS = typename VS::F;
    auto search = [](const FS* xt, const FS* wt, FS& s, FS& m, typename VS::I* L) {
        if (wt) {  // make_qkx3_quants, squared error: (3 - 0.9 .. 3 + 0.9)/range
            qkx2_search<VS, 16, false, true>(xt, wt, 3, -0.9f, 0.05f, 36, s, m, L);
            return;
        }
        FS w[16];  // |x|, absolute error: (3 - 0.5 .. 3 + 1)/range
        for (int l = 0; l < 16; ++l) w[l] = VS::abs(xt[l]);
        qkx2_search<VS, 16, true>(xt, w, 3, -0.5f, 0.1f, 15, s, m, L);
    };
    auto finish = [qw](const float* xb, const C& c, int s0, block_q2_K& y) {
        using F = typename V::F;
        using I = typename V::I;
        constexpr int NV = 16 / V::N;
        const float q4scale = 15.f;  // the largest 4-bit code
        if (qw) {
            // The 4-bit codes by their own search, weighted by the sub-blocks'
            // summed importance.
            uint8_t ls[16], lm[16];
            const float dm = ref::ks_calls::make_qp_quants(16, 15, c.scale + s0, ls, c.sw + s0);
            const float mm = ref::ks_calls::make_qp_quants(16, 15, c.min + s0, lm, c.sw + s0);
            y.d = V::half(dm);
            y.dmin = V::half(mm);
            for (int j = 0; j < 16; ++j) y.scales[j] = static_cast<uint8_t>(ls[j] | (lm[j] << 4));
        } else {
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
            // scales[j]: low nibble nearest_int(15/max_scale * scale), high
            // nibble the same for the min (0 when the max is 0), as bytes.
            const F isc = V::fset(max_scale > 0 ? q4scale / max_scale : 0.f);
            const F imn = V::fset(max_min > 0 ? q4scale / max_min : 0.f);
            for (int k = 0; k < NV; ++k) {
                I code = max_scale > 0 ? nearest_int<V>(isc * sc[k]) : V::iset(0);
                if (max_min > 0) code = code | (nearest_int<V>(imn * mn[k]) << 4);
                V::store_u8(y.scales + k * V::N, code);
            }
            y.d = V::half(max_scale > 0 ? max_scale / q4scale : 0.f);
            y.dmin = V::half(max_min > 0 ? max_min / q4scale : 0.f);
        }
        const float d_all = V::from_half(y.d), m_all = V::from_half(y.dmin);
        alignas(64) float dj[16], mj[16];
        sub_scales16<V>(y.scales, d_all, [](I v) { return v & V::iset(0xF); }, dj);
        sub_scales16<V>(y.scales, m_all, [](I v) { return v >> 4; }, mj);
        alignas(64) int32_t L[QK_K];
        for (int j = 0; j < 16; ++j)
            final_levels<V, 16, true>(xb + 16 * j, dj[j], dj[j] != 0.f ? mj[j] : 0.f, 0, 3, 0, c, s0 + j, L + 16 * j);
        pack_2bit<V>(L, y.qs);
    };
    quantize_k<VS, 16, 16, block_q2_K>(x, qw, 1.f, vy, n, search, finish);
}

// ---- Q3_K: 16 sub-blocks of 16, x = d * (sc - 32) * (q - 4), 6-bit sc ----------
// Super-blocks per Q3_K chunk: four vectors' worth of sub-blocks, so that
// the survivors of the first sweep fill few vectors (see q3_search.h).
template <class V>
constexpr int kQ3Super = 4 * V::N / 16 > 0 ? 4 * V::N / 16 : 1;

template <class V>
void quantize_q3_K(const float* x, void* vy, int64_t n, const float* qw) {
    using C = Chunk<V, 16, 16, kQ3Super<V>>;
    using F = typename V::F;
    // Plain: make_q3_quants with the lanes compacted after the first sweep.
    auto search_plain = [](const float* xc, int nsb, C& c) {
        constexpr int G = C::kGroups;
        const int ng = (nsb * 16 + V::N - 1) / V::N;  // vectors holding sub-blocks
        Q3Lanes<V, 16> st[G];
        for (int g = 0; g < ng; ++g) {
            F xt[16];
            load_transposed<V, 16>(xc + static_cast<int64_t>(g) * V::N * 16, std::min(V::N, nsb * 16 - g * V::N), xt);
            for (int i = 0; i < 16; ++i) V::store(st[g].x[i], xt[i]);
        }
        F scale[G];
        typename V::I L[G][16];
        q3_search_groups<V, 16, G>(st, ng, 4, scale, L);
        for (int g = 0; g < ng; ++g) {
            V::store(c.scale + g * V::N, scale[g]);
            for (int i = 0; i < 16; ++i) V::store_i32(c.L[g][i], L[g][i]);
        }
    };
    // Weighted: make_qx_quants with the imatrix weights.
    auto search_weighted = [x, qw](const float* xc, int nsb, C& c) {
        auto search = [](const F* xt, const F* wt, F& s, F&, typename V::I* L) { qx_search_any<V, 16>(xt, 4, s, L, wt); };
        search_chunk<V, 16, 16>(xc, qw + (xc - x), 2.f, nsb, c, search);
    };
    auto finish = [qw](const float* xb, const C& c, int s0, block_q3_K& y) {
        using I = typename V::I;
        constexpr int NV = 16 / V::N;
        // 6-bit codes q (level + 32) of the sub-block scales.
        alignas(64) uint8_t q[16] = {};
        if (qw) {
            // By make_qx_quants over the 16 scales, weighted by the sub-blocks' summed importance.
            int8_t ls[16];
            const float d_block = ref::ks_calls::make_qx_quants(16, 32, c.scale + s0, ls, c.sw + s0);
            for (int j = 0; j < 16; ++j) q[j] = static_cast<uint8_t>(ls[j]);
            y.d = V::half(d_block);
        } else {
            F sc[NV];
            for (int k = 0; k < NV; ++k) sc[k] = V::load(c.scale + s0 + k * V::N);
            // The first scale of largest magnitude (`if (|s| > amax)`), sign kept;
            // q = clamp((int8_t)nearest_int(-32/max_scale * s), -32, 31) + 32
            // (all 0 when max_scale is 0: then d = 0 and the levels stay as searched).
            const float max_scale = first_absmax<V>(c.scale + s0, sc, NV);
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
        }
        // scales: low 4 bits of code j in the nibbles of bytes 0..7 (j, j-8);
        // high 2 bits in bytes 8..11 (byte 8 + j%4, bits 2*(j/4)).
        for (int j = 0; j < 8; ++j) y.scales[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + 8] & 0xF) << 4));
        for (int j = 0; j < 4; ++j)
            y.scales[8 + j] = static_cast<uint8_t>((q[j] >> 4) | ((q[j + 4] >> 4) << 2) | ((q[j + 8] >> 4) << 4) |
                                                   ((q[j + 12] >> 4) << 6));
        const float d_all = V::from_half(y.d);
        alignas(64) float dj[16];
        sub_scales16<V>(q, d_all, [](I v) { return (v & V::iset(63)) - V::iset(32); }, dj);
        alignas(64) int32_t L[QK_K];
        for (int j = 0; j < 16; ++j)
            final_levels<V, 16, false>(xb + 16 * j, dj[j], 0.f, -4, 3, 4, c, s0 + j, L + 16 * j);
        // hmask[l] bit b = bit 2 of the level of element 32*b + l; qs keeps bits 0-1.
        for (int l = 0; l < 32; l += V::N) {
            I hm = V::iset(0);
            for (int b = 0; b < 8; ++b) hm = hm | ((V::load_i32(L + 32 * b + l) >> 2) << b);
            V::store_u8(y.hmask + l, hm);
        }
        pack_2bit<V>(L, y.qs);
    };
    if (qw) {
        quantize_chunks<C, block_q3_K>(x, vy, n, search_weighted, finish);
    } else {
        quantize_chunks<C, block_q3_K>(x, vy, n, search_plain, finish);
    }
}

// ---- Q6_K: 16 sub-blocks of 16, x = d * sc * (q - 32), int8 sc -----------------
template <class V, class VS = V>
void quantize_q6_K(const float* x, void* vy, int64_t n, const float* qw) {
    using C = Chunk<VS, 16, 16>;
    using I = typename V::I;
    using FS = typename VS::F;
    // make_qx_quants with weights x^2, or the raw imatrix (ggml adds no sigma2 term here).
    auto search = [](const FS* xt, const FS* wt, FS& s, FS&, typename VS::I* L) { qx_search_any<VS, 16>(xt, 32, s, L, wt); };
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
        alignas(64) float dj[16];
        sub_scales16<V>(reinterpret_cast<const uint8_t*>(y.scales), d_all, [](I v) { return sext8<V>(v); }, dj);
        alignas(64) int32_t L[QK_K];
        for (int j = 0; j < 16; ++j)
            final_levels<V, 16, false>(xb + 16 * j, dj[j], 0.f, -32, 31, 32, c, s0 + j, L + 16 * j);
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
    quantize_k<VS, 16, 16, block_q6_K>(x, qw, kRawImatrix, vy, n, search, finish);
}

// ---- Whole rows ------------------------------------------------------------------

// run<VS>(...) quantizes a row with search lanes VS (V or a Pack of V).
#define KQ_K_TYPE(NAME, FN, NSUB, BLOCK)                                               \
    template <class V>                                                                 \
    struct NAME {                                                                      \
        static constexpr int kNsub = NSUB;                                             \
        using Block = BLOCK;                                                           \
        template <class VS>                                                            \
        static void run(const float* x, void* y, int64_t n, const float* qw) {         \
            FN<V, VS>(x, y, n, qw);                                                    \
        }                                                                              \
    };
KQ_K_TYPE(Q2K, quantize_q2_K, 16, block_q2_K)
KQ_K_TYPE(Q4K, quantize_q4_K, 8, block_q4_K)
KQ_K_TYPE(Q5K, quantize_q5_K, 8, block_q5_K)
KQ_K_TYPE(Q6K, quantize_q6_K, 16, block_q6_K)
#undef KQ_K_TYPE

// A row in chunks of Pack<V, K> as far as they are full, the remaining
// super-blocks on V alone: a Pack chunk spans K times the super-blocks, and
// a short row (a few super-blocks) would leave most of its lanes empty.
template <class V, template <class> class T, int K>
void quantize_split(const float* x, void* y, int64_t n, const float* qw) {
    using Type = T<V>;
    constexpr int64_t kBig = Chunk<Pack<V, K>, 1, Type::kNsub>::kSuper;
    const int64_t nb = n / QK_K, head = nb / kBig * kBig;
    if (head) Type::template run<Pack<V, K>>(x, y, head * QK_K, qw);
    if (nb > head)
        Type::template run<V>(x + head * QK_K, static_cast<typename Type::Block*>(y) + head, (nb - head) * QK_K,
                              qw ? qw + head * QK_K : nullptr);
}

}  // namespace kq::lanes
