// The k-quant lane framework: chunks of super-blocks searched one sub-block
// per lane, then finished one super-block at a time (see kquants.h).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/blocks.h"
#include "quants/lanes/lane_api.h"

namespace kq::lanes {

// Search results of one chunk of super-blocks: by default as many as fill
// the lanes once (at least one).
template <class V, int SUB, int NSUB, int SUPER = (V::N >= NSUB ? V::N / NSUB : 1)>
struct Chunk {
    static constexpr int kSuper = SUPER;          // super-blocks per chunk
    static constexpr int kNsub = NSUB;            // sub-blocks per super-block
    static constexpr int kLanes = kSuper * NSUB;  // sub-blocks per chunk
    static constexpr int kGroups = kLanes / V::N; // vector searches per chunk
    alignas(64) float scale[kLanes];
    alignas(64) float min[kLanes];
    alignas(64) float sw[kLanes];               // summed importance weights (imatrix rows)
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

// How an importance-weighted row weights its values (ggml's _impl paths):
// kRaw uses the imatrix as it is (Q6_K); otherwise
// w = imatrix * sqrt(sigma2 + x^2), sigma2 = factor * sum(x^2) / 256 over the
// super-block (factor 1 for Q2_K, 2 for Q3_K/Q4_K/Q5_K).
constexpr float kRawImatrix = -1.f;

// sigma2 of each of the nsb super-blocks at x: factor * (sum of x^2, left to
// right) / 256. The super-blocks' sums are independent chains, interleaved.
template <class V, int kMaxSuper>
inline void chunk_sigma2(const float* x, int nsb, float factor, float* sigma2) {
    float s[kMaxSuper] = {};
    for (int i = 0; i < QK_K; ++i)
        for (int b = 0; b < kMaxSuper; ++b)
            if (b < nsb) s[b] += x[b * QK_K + i] * x[b * QK_K + i];
    for (int b = 0; b < kMaxSuper; ++b) sigma2[b] = factor * s[b] / QK_K;
}

// Runs search(xt, wt, scale, min, L) over the sub-blocks of nsb super-blocks
// at x. qw: the imatrix values aligned with x, or null for a plain row (then
// wt is null); with one, wt holds each sub-block's weights by the rule of
// `factor` (see kRawImatrix) and their sums go to c.sw.
template <class V, int SUB, int NSUB, class C, class Search>
inline void search_chunk(const float* x, const float* qw, float factor, int nsb, C& c, Search search) {
    using F = typename V::F;
    float sigma2[C::kSuper] = {};
    if (qw && factor != kRawImatrix) chunk_sigma2<V, C::kSuper>(x, nsb, factor, sigma2);
    for (int g = 0; g < C::kGroups; ++g) {
        const int lanes = std::min(V::N, nsb * NSUB - g * V::N);
        if (lanes <= 0) break;
        const int64_t off = static_cast<int64_t>(g) * V::N * SUB;
        F xt[SUB], wt[SUB];
        load_transposed<V, SUB>(x + off, lanes, xt);
        if (qw) {
            load_transposed<V, SUB>(qw + off, lanes, wt);
            if (factor != kRawImatrix) {
                alignas(64) float lane_sigma2[V::N];
                for (int l = 0; l < V::N; ++l) lane_sigma2[l] = sigma2[std::min((g * V::N + l) / NSUB, nsb - 1)];
                const F s2 = V::load(lane_sigma2);
                for (int i = 0; i < SUB; ++i) wt[i] = wt[i] * V::sqrt(s2 + xt[i] * xt[i]);
            }
            F sw = wt[0];
            for (int i = 1; i < SUB; ++i) sw = sw + wt[i];
            V::store(c.sw + g * V::N, sw);
        }
        F scale = V::fset(0.f), mn = V::fset(0.f);
        typename V::I L[SUB];
        search(xt, qw ? wt : nullptr, scale, mn, L);
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

// The 16 sub-block scales of a super-block in float, as ggml forms them one
// at a time (`d_all * code`, float times a small integer): out[j] =
// d_all * float(code(q[j])), code mapping the stored byte to its integer.
// One vector product instead of 16 scalar conversions, and the bytes are
// read back as they were stored (no byte loads of a just-written vector).
template <class V, class Code>
inline void sub_scales16(const uint8_t* q, float d_all, Code code, float* out) {
    for (int k = 0; k < 16; k += V::N) V::store(out + k, V::fset(d_all) * V::to_float(code(V::load_u8(q + k))));
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

// The same with a search that handles one vector of sub-blocks at a time;
// qw (null for a plain row) and factor as in search_chunk.
template <class VS, int SUB, int NSUB, class Block, class Search, class Finish>
inline void quantize_k(const float* x, const float* qw, float factor, void* vy, int64_t n, Search search,
                       Finish finish) {
    using C = Chunk<VS, SUB, NSUB>;
    auto search_all = [&](const float* xc, int nsb, C& c) {
        search_chunk<VS, SUB, NSUB>(xc, qw ? qw + (xc - x) : nullptr, factor, nsb, c, search);
    };
    quantize_chunks<C, Block>(x, vy, n, search_all, finish);
}

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

}  // namespace kq::lanes
