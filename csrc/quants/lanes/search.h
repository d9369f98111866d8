// ggml's per-sub-block scale searches, one sub-block per lane.
//
// Input is transposed: x[i] holds element i of V::N sub-blocks. Each function
// is the scalar algorithm of ggml-quants.c statement for statement, with
// every `if` turned into a lane mask and every operand evaluated in the
// reference's order ((w*l)*l, not w*(l*l)), so each lane reproduces the
// scalar result bit for bit (see lane_api.h). Where the scalar code copies the
// trial levels into L on improvement, the lanes instead remember the trial's
// inputs (inverse scale and offset) and recompute L once at the end: the same
// operations on the same operands give the same levels.
#pragma once
#include <cmath>
#include <limits>
#include <type_traits>

#include "quants/lanes/lane_api.h"

namespace kq::lanes {

// ggml's GROUP_MAX_EPS: a sub-block whose max |x| is below this is all zero.
constexpr float kGroupMaxEps = 1e-15f;

// A trial level of the asymmetric searches, from v = iscale * (x - min).
// make_qkx2_quants: clamp(nearest_int(v), 0, nmax). make_qkx3_quants (the
// importance-weighted variant): v > 0 ? nearest_int(MIN(v, nmax)) : 0, which
// agrees for every |v| < 2^22 and stays defined beyond (v inf or NaN).
template <class V, bool kQkx3>
inline typename V::I qkx_level(typename V::F v, int nmax) {
    if (!kQkx3) return clamp<V>(nearest_int<V>(v), 0, nmax);
    const typename V::F fnmax = V::fset(static_cast<float>(nmax));
    return V::select(v > V::fset(0.f), nearest_int<V>(V::select(v < fnmax, v, fnmax)), V::iset(0));
}

// The same level as a float by rounding in float: round-to-nearest-even(v)
// (ggml's (v + 1.5*2^23) - 1.5*2^23 for |v| < 2^22; beyond, both keep v's
// order and the clamp decides), and fmax/fmin (maxps/minps: the second operand when the first is NaN) clamp to
// [0, nmax]. That equals the qkx3 level for every v (NaN and +-inf give 0
// and nmax, as there), and the qkx2 level whenever |v| < 2^22.
template <class V>
inline typename V::F qkx_level_f(typename V::F v, int nmax) {
    return V::fmin(V::fmax(V::round_even(v), V::fset(0.f)), V::fset(static_cast<float>(nmax)));
}

// make_qkx2_quants / make_qkx3_quants (ggml): levels 0..nmax with a free
// offset ("min"), scale and min fitted by weighted least squares over nstep+1
// trial inverse scales (rmin + rdelta*is + nmax) / (max - min); keeps the
// trial with the smallest weighted error (|diff| if use_mad, else diff^2).
// qkx3 also treats max <= min (not only max == min) as flat.
// Out: scale (0 for flat lanes), the_min (= -min) and L[i] in 0..nmax.
template <class V, int n, bool use_mad, bool kQkx3 = false>
inline void qkx2_search(const typename V::F* x, const typename V::F* w, int nmax, float rmin, float rdelta,
                        int nstep, typename V::F& scale_out, typename V::F& the_min_out, typename V::I* L) {
    using F = typename V::F;
    using I = typename V::I;
    using M = typename V::M;
    const F zero = V::fset(0.f);
    F mn = x[0], mx = x[0];
    F sum_w = w[0];
    F sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        mn = V::select(x[i] < mn, x[i], mn);
        mx = V::select(x[i] > mx, x[i], mx);
        sum_w = sum_w + w[i];
        sum_x = sum_x + w[i] * x[i];
    }
    const F xmin = mn;
    mn = V::select(mn > zero, zero, mn);
    const M flat = kQkx3 ? mx <= mn : mx == mn;
    const F flat_min = mn;  // what a flat lane returns (ggml returns before the search)

    auto err = [&](F diff) { return use_mad ? V::abs(diff) : diff * diff; };

    F iscale = V::fset(static_cast<float>(nmax)) / (mx - mn);
    F scale = V::fset(1.f) / iscale;
    F best_error = zero;
    for (int i = 0; i < n; ++i) {
        const I l = clamp<V>(nearest_int<V>(iscale * (x[i] - mn)), 0, nmax);
        const F diff = scale * V::to_float(l) + mn - x[i];
        best_error = best_error + w[i] * err(diff);
    }
    F best_iscale = iscale, best_offset = mn;  // inputs that produced the kept L
    M from_trial = V::none_set();               // ... and by which level rule

    F lf[n];
    F sum_l, sum_l2, sum_xl;
    // Levels and weighted sums of one trial; kFloat: levels by qkx_level_f.
    auto trial_sums = [&](F trial, auto float_levels) {
        constexpr bool kFloat = decltype(float_levels)::value;
        sum_l = zero;
        sum_l2 = zero;
        sum_xl = zero;
        for (int i = 0; i < n; ++i) {
            const F v = trial * (x[i] - mn);
            lf[i] = kFloat ? qkx_level_f<V>(v, nmax) : V::to_float(qkx_level<V, kQkx3>(v, nmax));
            const F wl = w[i] * lf[i];
            sum_l = sum_l + wl;
            sum_l2 = sum_l2 + wl * lf[i];
            sum_xl = sum_xl + wl * x[i];
        }
    };
    const F two21 = V::fset(2097152.f);  // 2^21: |v| below it rounds alike both ways
    for (int is = 0; is <= nstep; ++is) {
        const float num = rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax);
        const F trial = V::fset(num) / (mx - mn);
        bool use_float = kQkx3;
        if (!kQkx3) {
            // |x - mn| <= max(mx - mn, mn - xmin) (rounding is monotonic), so
            // |v| <= trial * that; flat lanes are discarded anyway.
            const F reach = trial * V::select(mx - mn > mn - xmin, mx - mn, mn - xmin);
            use_float = !V::any(~(flat | (reach < two21)));
        }
        if (use_float) {
            trial_sums(trial, std::true_type{});
        } else {
            trial_sums(trial, std::false_type{});
        }
        const F D = sum_w * sum_l2 - sum_l * sum_l;
        const M ok = D > zero;
        F this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        F this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        const M pos = this_min > zero;
        this_min = V::select(pos, zero, this_min);
        this_scale = V::select(pos, sum_xl / sum_l2, this_scale);
        F cur_error = zero;
        for (int i = 0; i < n; ++i) {
            const F diff = this_scale * lf[i] + this_min - x[i];
            cur_error = cur_error + w[i] * err(diff);
        }
        const M better = ok & (cur_error < best_error);
        best_iscale = V::select(better, trial, best_iscale);
        best_offset = V::select(better, mn, best_offset);
        from_trial = from_trial | better;
        best_error = V::select(better, cur_error, best_error);
        scale = V::select(better, this_scale, scale);
        mn = V::select(better, this_min, mn);
    }
    const I izero = V::iset(0);
    for (int i = 0; i < n; ++i) {
        const F v = best_iscale * (x[i] - best_offset);
        const I l = V::select(from_trial, qkx_level<V, kQkx3>(v, nmax), qkx_level<V, false>(v, nmax));
        L[i] = V::select(flat, izero, l);
    }
    scale_out = V::select(flat, zero, scale);
    the_min_out = V::neg(V::select(flat, flat_min, mn));
}

// The first x of largest |x| (`if (ax > amax) { amax = ax; max = x; }`), per lane.
template <class V, int n>
inline void lane_absmax(const typename V::F* x, typename V::F& amax, typename V::F& max) {
    amax = V::fset(0.f);
    max = V::fset(0.f);
    for (int i = 0; i < n; ++i) {
        const typename V::F ax = V::abs(x[i]);
        const typename V::M g = ax > amax;
        amax = V::select(g, ax, amax);
        max = V::select(g, x[i], max);
    }
}

// make_qx_quants (ggml) with rmse_type 1: weights qw, or w = x^2 without
// (qw null): symmetric levels -nmax..nmax-1, trial inverse scales
// -(nmax + 0.1*is)/max for is = -9..9, keeping the one that maximises
// sumlx^2/suml2. Out: scale (0 for all-zero lanes) and L[i] = level + nmax.
// kFinite (all x finite): |trial * x| <= (nmax + 0.9) * |x| / |max| < 34 in
// every lane whose max |x| passes kGroupMaxEps (the others are discarded), so
// level<V, true> rounds exactly.
// True if every lane of x[0..n) is finite.
template <class V, int n>
inline bool all_finite(const typename V::F* x) {
    const typename V::F inf = V::fset(std::numeric_limits<float>::infinity());
    typename V::M bad = V::none_set();
    for (int i = 0; i < n; ++i) bad = bad | ~(V::abs(x[i]) < inf);
    return !V::any(bad);
}

// nearest_int(p) clamped to [lo, hi], as a float. kFinite: the caller
// guarantees |p| < 2^22, where rounding to nearest even in float gives
// ggml's bit-trick result, and the clamp commutes with
// the rounding (integer bounds); otherwise the bit trick itself.
// With kFinite the caller may also promise which bounds cannot bite:
// kClamp 2 applies both, 1 only the upper (p < lo - 0.5 impossible), 0 none.
template <class V, bool kFinite, int kClamp = 2>
inline typename V::F level(typename V::F p, int lo, int hi) {
    if (kFinite) {
        // One rounding instruction, equal to ggml's (p + 1.5 * 2^23) - 1.5 * 2^23
        // for |p| < 2^22 up to the sign of a zero result (-0 for p in
        // (-0.5, 0)), which no caller can see: a -0 level adds -0 to a sum
        // that starts at +0, and converts to the integer 0.
        typename V::F r = V::round_even(p);
        if (kClamp >= 2) r = V::fmax(r, V::fset(static_cast<float>(lo)));
        if (kClamp >= 1) r = V::fmin(r, V::fset(static_cast<float>(hi)));
        return r;
    }
    return V::to_float(clamp<V>(nearest_int<V>(p), lo, hi));
}

// sumlx = sum w*x*l and suml2 = sum w*l*l of the levels at inverse scale trial.
template <class V, int n, bool kFinite, int kClamp>
inline void qx_sums(const typename V::F* x, const typename V::F* w, const typename V::F* wx, typename V::F trial,
                    int nmax, typename V::F& sumlx, typename V::F& suml2) {
    sumlx = V::fset(0.f);
    suml2 = V::fset(0.f);
    for (int i = 0; i < n; ++i) {
        const typename V::F l = level<V, kFinite, kClamp>(trial * x[i], -nmax, nmax - 1);
        sumlx = sumlx + wx[i] * l;
        suml2 = suml2 + w[i] * l * l;
    }
}

template <class V, int n, bool kFinite>
inline void qx_search(const typename V::F* x, int nmax, typename V::F& scale_out, typename V::I* L,
                      const typename V::F* qw = nullptr) {
    using F = typename V::F;
    using I = typename V::I;
    using M = typename V::M;
    const F zero = V::fset(0.f);
    F amax, max;
    lane_absmax<V, n>(x, amax, max);
    const M allzero = amax < V::fset(kGroupMaxEps);

    F w[n], wx[n];
    for (int i = 0; i < n; ++i) {
        w[i] = qw ? qw[i] : x[i] * x[i];
        wx[i] = w[i] * x[i];  // w*x[i]*l evaluates (w*x[i])*l
    }
    F iscale = V::fset(static_cast<float>(-nmax)) / max;
    F sumlx = zero, suml2 = zero;
    for (int i = 0; i < n; ++i) {
        const F l = level<V, kFinite>(iscale * x[i], -nmax, nmax - 1);
        sumlx = sumlx + wx[i] * l;
        suml2 = suml2 + w[i] * l * l;
    }
    F scale = V::select(suml2 != zero, sumlx / suml2, zero);  // `suml2 ? ... : 0` (NaN is true)
    F best = scale * sumlx;
    F best_iscale = iscale;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        const float num = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is));
        const F trial = V::fset(num) / max;
        // |trial * x| <= |num| (1 + 2^-22) in the lanes that count (see
        // above): no level reaches the upper clamp nmax - 1 while that is
        // below nmax - 0.5, nor the lower one -nmax while below nmax + 0.5.
        const float reach = std::fabs(num) * (1.f + 0x1p-20f);
        if (!kFinite || reach >= static_cast<float>(nmax) + 0.5f) {
            qx_sums<V, n, kFinite, 2>(x, w, wx, trial, nmax, sumlx, suml2);
        } else if (reach >= static_cast<float>(nmax) - 0.5f) {
            qx_sums<V, n, kFinite, 1>(x, w, wx, trial, nmax, sumlx, suml2);
        } else {
            qx_sums<V, n, kFinite, 0>(x, w, wx, trial, nmax, sumlx, suml2);
        }
        const M better = (suml2 > zero) & (sumlx * sumlx > best * suml2);
        const F new_scale = sumlx / suml2;
        best_iscale = V::select(better, trial, best_iscale);
        scale = V::select(better, new_scale, scale);
        best = V::select(better, new_scale * sumlx, best);
    }
    const I izero = V::iset(0), off = V::iset(nmax);
    for (int i = 0; i < n; ++i) {
        const I l = clamp<V>(nearest_int<V>(best_iscale * x[i]), -nmax, nmax - 1) + off;
        L[i] = V::select(allzero, izero, l);
    }
    scale_out = V::select(allzero, zero, scale);
}

// make_qx_quants over lanes, rounding in float when the data is finite.
template <class V, int n>
inline void qx_search_any(const typename V::F* xt, int nmax, typename V::F& s, typename V::I* L,
                          const typename V::F* wt) {
    if (all_finite<V, n>(xt)) {
        qx_search<V, n, true>(xt, nmax, s, L, wt);
    } else {
        qx_search<V, n, false>(xt, nmax, s, L, wt);
    }
}

}  // namespace kq::lanes
