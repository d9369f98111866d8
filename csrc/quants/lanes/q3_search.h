// ggml's make_q3_quants (do_rmse) over lanes, for Q3_K's 16 sub-blocks of 16.
//
// The algorithm: levels -4..3 from -nmax/max, then up to five sweeps over
// the elements, each moving one level to nearest_int(x*sl2/slx) when that
// raises sumlx^2/suml2 (the sums updated at once, so an element sees the
// moves before it); a sub-block stops after a sweep without a move.
//
// Two observations make it fast without changing a bit:
//  * Moves are rare: about 80% of sub-blocks of normal data never move, so
//    the sweep branches around the update instead of blending it in; while
//    nothing moves, the per-element steps do not wait on each other.
//  * After the first sweep only the sub-blocks that moved go on, about one
//    lane in five. The chunk's survivors are gathered into as few vectors
//    as hold them (compaction), the remaining sweeps run on those, and the
//    results are put back. Each lane still runs exactly its own sequence.
#pragma once
#include <cstdint>

#include "quants/lanes/lane_api.h"
#include "quants/lanes/search.h"

namespace kq::lanes {

// The search state of V::N sub-blocks of n elements, element-major
// (x[i][lane]), in memory so that lanes can be gathered between vectors.
template <class V, int n>
struct Q3Lanes {
    alignas(64) float x[n][V::N];
    alignas(64) float w[n][V::N];    // x*x, ggml's weight
    alignas(64) float wx[n][V::N];   // w*x: w*x*l evaluates (w*x)*l
    alignas(64) int32_t L[n][V::N];  // levels -nmax..nmax-1
    // w*x*L and w*L*L of the current level: the terms ggml recomputes, with
    // the same operations on the same operands, whenever it takes element i
    // out of the sums; kept instead of recomputed.
    alignas(64) float wxl[n][V::N];
    alignas(64) float wll[n][V::N];
    alignas(64) float sumlx[V::N];
    alignas(64) float suml2[V::N];
};

// One sweep of ggml's refinement over the lanes in `active`; returns the
// lanes that moved a level.
template <class V, int n>
inline typename V::M q3_sweep(Q3Lanes<V, n>& s, int nmax, typename V::M active) {
    using F = typename V::F;
    using I = typename V::I;
    using M = typename V::M;
    const F zero = V::fset(0.f);
    F sumlx = V::load(s.sumlx), suml2 = V::load(s.suml2);
    F sumlx2 = sumlx * sumlx;
    M changed = V::none_set();
    for (int i = 0; i < n; ++i) {
        const F x = V::load(s.x[i]), w = V::load(s.w[i]), wx = V::load(s.wx[i]);
        const I L = V::load_i32(s.L[i]);
        const F slx = sumlx - V::load(s.wxl[i]);
        const F sl2 = suml2 - V::load(s.wll[i]);
        const I nl = clamp<V>(nearest_int<V>(x * sl2 / slx), -nmax, nmax - 1);
        const F nlf = V::to_float(nl);
        const F nwxl = wx * nlf;
        const F nwll = w * nlf * nlf;
        const F slx2 = slx + nwxl;
        const F sl22 = sl2 + nwll;
        const M upd = active & (slx > zero) & (nl != L) & (sl22 > zero) & (slx2 * slx2 * suml2 > sumlx2 * sl22);
        if (V::any(upd)) {  // rare: see the file comment
            V::store_i32(s.L[i], V::select(upd, nl, L));
            V::store(s.wxl[i], V::select(upd, nwxl, V::load(s.wxl[i])));
            V::store(s.wll[i], V::select(upd, nwll, V::load(s.wll[i])));
            sumlx = V::select(upd, slx2, sumlx);
            suml2 = V::select(upd, sl22, suml2);
            sumlx2 = sumlx * sumlx;
            changed = changed | upd;
        }
    }
    V::store(s.sumlx, sumlx);
    V::store(s.suml2, suml2);
    return changed;
}

// Sweeps 1..4 (sweep 0 is in q3_begin) until no lane of `active` moves.
template <class V, int n>
inline void q3_more_sweeps(Q3Lanes<V, n>& s, int nmax, typename V::M active) {
    for (int itry = 1; itry < 5 && V::any(active); ++itry) active = active & q3_sweep<V, n>(s, nmax, active);
}

// Initial levels and the first sweep on s.x. Returns the lanes that go on
// sweeping; allzero gets the lanes whose max |x| is below kGroupMaxEps
// (ggml returns zeros for those before any sweep).
template <class V, int n>
inline typename V::M q3_begin(Q3Lanes<V, n>& s, int nmax, typename V::M& allzero) {
    using F = typename V::F;
    using I = typename V::I;
    F x[n];
    for (int i = 0; i < n; ++i) x[i] = V::load(s.x[i]);
    F amax, max;
    lane_absmax<V, n>(x, amax, max);
    allzero = amax < V::fset(kGroupMaxEps);
    const F iscale = V::fset(static_cast<float>(-nmax)) / max;
    F sumlx = V::fset(0.f), suml2 = V::fset(0.f);
    for (int i = 0; i < n; ++i) {
        const F w = x[i] * x[i];
        const F wx = w * x[i];
        const I L = clamp<V>(nearest_int<V>(iscale * x[i]), -nmax, nmax - 1);
        const F l = V::to_float(L);
        const F wxl = wx * l, wll = w * l * l;
        sumlx = sumlx + wxl;
        suml2 = suml2 + wll;
        V::store(s.w[i], w);
        V::store(s.wx[i], wx);
        V::store_i32(s.L[i], L);
        V::store(s.wxl[i], wxl);
        V::store(s.wll[i], wll);
    }
    V::store(s.sumlx, sumlx);
    V::store(s.suml2, suml2);
    const typename V::M active = ~allzero;
    return active & q3_sweep<V, n>(s, nmax, active);
}

// Gathers the lanes listed in (group, lane) pairs src[0..count) of st[] into
// d (count <= V::N; spare lanes repeat the first and stay inactive), runs the
// remaining sweeps, and writes levels and sums back.
template <class V, int n>
inline void q3_compacted(Q3Lanes<V, n>* st, const int32_t* src_group, const int32_t* src_lane, int count,
                         int nmax) {
    using F = typename V::F;
    constexpr int32_t kStride = static_cast<int32_t>(sizeof(Q3Lanes<V, n>) / sizeof(float));
    alignas(64) int32_t idx[V::N];
    for (int j = 0; j < V::N; ++j) {
        const int k = j < count ? j : 0;
        idx[j] = src_group[k] * kStride + src_lane[k];
    }
    const typename V::I vidx = V::load_i32(idx);
    Q3Lanes<V, n> d;
    for (int i = 0; i < n; ++i) {
        // Gather x and L; the products are recomputed with the operations
        // that made them (q3_begin / q3_sweep), which gives the same bits.
        const F x = V::gather_idx(&st[0].x[i][0], vidx);
        const typename V::I L = V::as_int(V::gather_idx(&st[0].L[i][0], vidx));
        const F w = x * x, wx = w * x, l = V::to_float(L);
        V::store(d.x[i], x);
        V::store(d.w[i], w);
        V::store(d.wx[i], wx);
        V::store_i32(d.L[i], L);
        V::store(d.wxl[i], wx * l);
        V::store(d.wll[i], w * l * l);
    }
    V::store(d.sumlx, V::gather_idx(&st[0].sumlx[0], vidx));
    V::store(d.suml2, V::gather_idx(&st[0].suml2[0], vidx));
    q3_more_sweeps<V, n>(d, nmax, V::mask_from_bits((1u << count) - 1u));
    for (int j = 0; j < count; ++j) {
        Q3Lanes<V, n>& s = st[src_group[j]];
        const int l = src_lane[j];
        for (int i = 0; i < n; ++i) s.L[i][l] = d.L[i][j];
        s.sumlx[l] = d.sumlx[j];
        s.suml2[l] = d.suml2[j];
    }
}

// make_q3_quants for the first ng of G vectors of sub-blocks, whose x is
// already in st[g].x. Out per group: scale (0 for all-zero lanes) and
// L = level + nmax.
template <class V, int n, int G>
inline void q3_search_groups(Q3Lanes<V, n>* st, int ng, int nmax, typename V::F* scale, typename V::I (*L)[n]) {
    using M = typename V::M;
    M allzero[G];
    uint32_t go_on[G];
    int total = 0;
    for (int g = 0; g < ng; ++g) {
        go_on[g] = V::bits(q3_begin<V, n>(st[g], nmax, allzero[g]));
        total += __builtin_popcount(go_on[g]);
    }
    if (total > (ng - 1) * V::N) {
        // Nearly every lane goes on: nothing to gain from moving them.
        for (int g = 0; g < ng; ++g) q3_more_sweeps<V, n>(st[g], nmax, V::mask_from_bits(go_on[g]));
    } else if (total > 0) {
        int32_t src_group[G * V::N], src_lane[G * V::N];
        int m = 0;
        for (int g = 0; g < ng; ++g)
            for (uint32_t b = go_on[g]; b; b &= b - 1) {
                src_group[m] = g;
                src_lane[m] = __builtin_ctz(b);
                ++m;
            }
        for (int j = 0; j < m; j += V::N)
            q3_compacted<V, n>(st, src_group + j, src_lane + j, m - j < V::N ? m - j : V::N, nmax);
    }
    using F = typename V::F;
    using I = typename V::I;
    const F zero = V::fset(0.f);
    const I izero = V::iset(0), off = V::iset(nmax);
    for (int g = 0; g < ng; ++g) {
        const F sumlx = V::load(st[g].sumlx), suml2 = V::load(st[g].suml2);
        scale[g] = V::select(allzero[g], zero, V::select(suml2 > zero, sumlx / suml2, zero));
        for (int i = 0; i < n; ++i) L[g][i] = V::select(allzero[g], izero, V::load_i32(st[g].L[i]) + off);
    }
}

}  // namespace kq::lanes
