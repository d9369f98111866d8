// Scale searches shared by the reference quantizers (see kquant_search.h).
//
// Every float expression below is written in the evaluation order of ggml's
// reference so that each rounding step is the same: a*b*c means (a*b)*c, and
// sums run left to right. Integer levels are converted to float exactly
// where ggml converts them.
#include "quants/kquant_search.h"

#include <cassert>
#include <cmath>

namespace kq::ref::ks {

float sum_squares(const float* x, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
    return s;
}

void imatrix_weights(const float* qw, const float* x, int n, float sigma2, float* w) {
    for (int i = 0; i < n; ++i) w[i] = qw[i] * std::sqrt(sigma2 + x[i] * x[i]);
}

namespace {

// The value of largest magnitude, keeping its sign; the first one wins ties.
float signed_absmax(int n, const float* x, float* amax_out) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float ax = std::fabs(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    *amax_out = amax;
    return max;
}

// Weighted sums of one symmetric level assignment at inverse scale iscale:
// sumlx = sum w*x*l, suml2 = sum w*l*l, levels (offset by nmax) into L.
struct LevelSums {
    float sumlx = 0.0f;
    float suml2 = 0.0f;
};

LevelSums symmetric_levels(int n, int nmax, const float* x, const float* qw, float iscale, int8_t* L) {
    LevelSums s;
    for (int i = 0; i < n; ++i) {
        const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = static_cast<int8_t>(l + nmax);
        const float w = qw ? qw[i] : x[i] * x[i];
        const float fl = static_cast<float>(l);
        s.sumlx += w * x[i] * fl;
        s.suml2 += w * fl * fl;
    }
    return s;
}

}  // namespace

float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* qw) {
    assert(n <= kMaxGroup);
    float amax;
    const float max = signed_absmax(n, x, &amax);
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    // Start: the extreme value lands exactly on level -nmax.
    const float fnmax = static_cast<float>(nmax);
    LevelSums best_sums = symmetric_levels(n, nmax, x, qw, static_cast<float>(-nmax) / max, L);
    float scale = best_sums.suml2 != 0.0f ? best_sums.sumlx / best_sums.suml2 : 0.0f;
    // The weighted error of the optimal scale for fixed levels is
    // sum w*x^2 - sumlx^2/suml2; maximising sumlx^2/suml2 (= scale*sumlx)
    // minimises it.
    float best = scale * best_sums.sumlx;
    int8_t trial[kMaxGroup];
    for (int k = -9; k <= 9; ++k) {
        if (k == 0) continue;
        const float iscale = -(fnmax + 0.1f * static_cast<float>(k)) / max;
        const LevelSums s = symmetric_levels(n, nmax, x, qw, iscale, trial);
        // Cross-multiplied form of sumlx^2/suml2 > best (avoids the division).
        if (s.suml2 > 0 && s.sumlx * s.sumlx > best * s.suml2) {
            std::memcpy(L, trial, static_cast<size_t>(n));
            scale = s.sumlx / s.suml2;
            best = scale * s.sumlx;
        }
    }
    return scale;
}

float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
    assert(n <= kMaxGroup);
    float amax;
    const float max = signed_absmax(n, x, &amax);
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    const float iscale = static_cast<float>(-nmax) / max;
    // Here L holds the signed level until the end.
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = static_cast<int8_t>(l);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    // Coordinate descent: for each value, the level that would be best given
    // the optimal scale of all the others; accept it if sumlx^2/suml2 grows.
    for (int sweep = 0; sweep < 5; ++sweep) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float w = x[i] * x[i];
            const float li = static_cast<float>(L[i]);
            float slx = sumlx - w * x[i] * li;
            if (slx > 0) {
                float sl2 = suml2 - w * li * li;
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = clamp_int(new_l, -nmax, nmax - 1);
                if (new_l != L[i]) {
                    const float fl = static_cast<float>(new_l);
                    slx += w * x[i] * fl;
                    sl2 += w * fl * fl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = static_cast<int8_t>(new_l);
                        sumlx = slx;
                        suml2 = sl2;
                        ++changed;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

namespace {

// Level of one value for the asymmetric searches. qkx2 rounds first and
// clamps after; qkx3 clamps the real value first, which gives the same level
// for every finite in-range value but stays defined when the range collapsed
// (v infinite or NaN, or beyond nearest_int's range).
inline int level_qkx2(float v, int nmax) { return clamp_int(nearest_int(v), 0, nmax); }
inline int level_qkx3(float v, int nmax) {
    return v > 0 ? nearest_int(v < static_cast<float>(nmax) ? v : static_cast<float>(nmax)) : 0;
}

// The common body of make_qkx2_quants / make_qkx3_quants. Level(v, nmax)
// picks the level in the trial loop; the initial assignment always uses the
// round-then-clamp form.
template <int (*Level)(float, int)>
float make_qkx_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                      float rmin, float rdelta, int nstep, bool use_mad, bool collapsed_if_max_le_min) {
    assert(n <= kMaxGroup);
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    // The offset only ever shifts down: a group of positive values keeps 0
    // representable exactly.
    if (min > 0) min = 0;
    if (collapsed_if_max_le_min ? max <= min : max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.0f;
    }
    const float fnmax = static_cast<float>(nmax);
    float iscale = fnmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = static_cast<uint8_t>(clamp_int(l, 0, nmax));
        float diff = scale * static_cast<float>(L[i]) + min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    uint8_t Laux[kMaxGroup];
    for (int k = 0; k <= nstep; ++k) {
        // Note: min (and so the range) is the best fit found so far, as in ggml.
        iscale = (rmin + rdelta * static_cast<float>(k) + fnmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; ++i) {
            const int l = Level(iscale * (x[i] - min), nmax);
            Laux[i] = static_cast<uint8_t>(l);
            const float w = weights[i];
            const float fl = static_cast<float>(l);
            sum_l += w * fl;
            sum_l2 += w * fl * fl;
            sum_xl += w * fl * x[i];
        }
        // Weighted least squares for x ~ scale*l + offset with the levels fixed.
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {  // keep the offset non-positive: refit the scale alone
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0.0f;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
                diff = use_mad ? std::fabs(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                std::memcpy(L, Laux, static_cast<size_t>(n));
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

}  // namespace

float make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, float rmin,
                       float rdelta, int nstep, bool use_mad) {
    return make_qkx_quants<level_qkx2>(n, nmax, x, w, L, the_min, rmin, rdelta, nstep, use_mad, false);
}

float make_qkx3_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, float rmin,
                       float rdelta, int nstep, bool use_mad) {
    return make_qkx_quants<level_qkx3>(n, nmax, x, w, L, the_min, rmin, rdelta, nstep, use_mad, true);
}

float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* w) {
    assert(n <= kMaxGroup);
    float max = 0.0f;
    for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
    if (max < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    const float fnmax = static_cast<float>(nmax);
    // Levels are stored as bytes without a lower clamp, exactly as ggml does
    // (a negative level wraps); the sums below use the unwrapped int.
    float iscale = fnmax / max;
    for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
    float scale = 1 / iscale;
    float best_mse = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float diff = x[i] - scale * static_cast<float>(L[i]);
        best_mse += w[i] * diff * diff;
    }
    // Nine trial inverse scales (nmax + 0.1*k)/max, k = -4..4: pick the one
    // with the lowest weighted squared error.
    for (int k = -4; k <= 4; ++k) {
        if (k == 0) continue;
        const float iscale_k = (0.1f * static_cast<float>(k) + fnmax) / max;
        const float scale_k = 1 / iscale_k;
        float mse = 0.0f;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale_k * x[i]);
            l = l < nmax ? l : nmax;
            const float diff = x[i] - scale_k * static_cast<float>(l);
            mse += w[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_k;
        }
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = l < nmax ? l : nmax;
        L[i] = static_cast<uint8_t>(l);
        const float fl = static_cast<float>(l);
        sumlx += w[i] * x[i] * fl;
        suml2 += w[i] * fl * fl;
    }
    // Coordinate descent on single levels, as in make_q3_quants.
    for (int sweep = 0; sweep < 5; ++sweep) {
        int changed = 0;
        for (int i = 0; i < n; ++i) {
            const float li = static_cast<float>(L[i]);
            float slx = sumlx - w[i] * x[i] * li;
            float sl2 = suml2 - w[i] * li * li;
            if (slx > 0 && sl2 > 0) {
                int new_l = nearest_int(x[i] * sl2 / slx);
                new_l = new_l < nmax ? new_l : nmax;
                if (new_l != L[i]) {
                    const float fl = static_cast<float>(new_l);
                    slx += w[i] * x[i] * fl;
                    sl2 += w[i] * fl * fl;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = static_cast<uint8_t>(new_l);
                        sumlx = slx;
                        suml2 = sl2;
                        ++changed;
                    }
                }
            }
        }
        if (!changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

void pack_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* scales) {
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            scales[j] = sc[j];
            scales[j + 4] = m[j];
        } else {
            scales[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
            scales[j - 4] = static_cast<uint8_t>(scales[j - 4] | ((sc[j] >> 4) << 6));
            scales[j] = static_cast<uint8_t>(scales[j] | ((m[j] >> 4) << 6));
        }
    }
}

void pack_2bit_256(const uint8_t* L, uint8_t* qs) {
    for (int half = 0; half < 2; ++half) {
        const uint8_t* l = L + 128 * half;
        for (int b = 0; b < 32; ++b)
            qs[32 * half + b] = static_cast<uint8_t>(l[b] | (l[b + 32] << 2) | (l[b + 64] << 4) | (l[b + 96] << 6));
    }
}

}  // namespace kq::ref::ks
