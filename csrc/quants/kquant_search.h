// Scale searches and bit-packing helpers shared by the reference quantizers
// and by the CUDA quantizers (csrc/cuda/quant_*.cuh): one implementation,
// compiled for the CPU and, as KQ_HD (__host__ __device__) functions, for the
// GPU, so the golden tests of the reference also cover the device's searches.
// The functions are inline in an unnamed namespace: every translation unit
// (each ISA folder, the nvcc host pass) gets its own copy built with its own
// flags, and none is merged by the linker with a copy built differently.
//
// These reproduce ggml's searches (ggml-quants.c: make_qx_quants,
// make_q3_quants, make_qkx2_quants, make_qkx3_quants, make_qp_quants) result
// for result. They compare float sums, so the order of every multiply and add
// is part of the contract: each sum runs left to right over the group, and the
// whole project is built with -ffp-contract=off so no multiply-add is fused.
// Do not "simplify" an expression here without re-running the golden tests.
//
// Naming: a "group" is the set of values sharing one scale (16 or 32
// values); L receives the chosen integer level of each value.
// Device builds use -fmad=false -prec-div=true -prec-sqrt=true (the GPU's
// float arithmetic is then IEEE single precision without contraction, as the
// CPU's with -ffp-contract=off), and call only sqrtf, fabsf and memcpy, which
// CUDA provides on both sides.
#pragma once
#include <math.h>
#include <string.h>

#include <cassert>
#include <cstdint>

#include "core/hostdev.h"

namespace kq::ref::ks {
namespace {

// Groups whose largest |x| is below this are treated as all zero (ggml's
// GROUP_MAX_EPS). Anything smaller would only produce denormal scales that
// round to 0 in fp16 anyway.
constexpr float kGroupMaxEps = 1e-15f;

// Largest group any search here is used with (Q4_K/Q5_K sub-blocks, legacy
// blocks of 32). Sizes the scratch arrays.
constexpr int kMaxGroup = 32;

// Round to nearest, ties to even, for |v| < 2^22.
// Adding 1.5 * 2^23 = 12582912 moves v into the binade [2^23, 2^24), where
// the float spacing is exactly 1, so the FPU's round-to-nearest-even does the
// rounding; the integer then sits in the low 23 mantissa bits, offset by
// 2^22 (0x400000, the "0.5" part of 1.5 * 2^23). Outside the range the result
// is ggml's (deterministic) garbage, reproduced on purpose.
inline KQ_HD int nearest_int(float v) {
    const float shifted = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

inline KQ_HD int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Sum of x[i]^2, accumulated left to right in float (the order ggml uses for
// the sigma2 of a row or block).
inline KQ_HD float sum_squares(const float* x, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
    return s;
}

// Importance weights of one group from the imatrix: w[i] = qw[i] * sqrt(sigma2 + x[i]^2).
// sigma2 (a mean square of the row or block) keeps tiny values from getting
// zero weight.
inline KQ_HD void imatrix_weights(const float* qw, const float* x, int n, float sigma2, float* w) {
    for (int i = 0; i < n; ++i) w[i] = qw[i] * sqrtf(sigma2 + x[i] * x[i]);
}

// The same for a k-quant sub-block, returning the sum of its weights (left to
// right), the sub-block's importance in the search of the super-block scales.
inline KQ_HD float subblock_weights(const float* qw, const float* x, int n, float sigma2, float* w) {
    imatrix_weights(qw, x, n, sigma2, w);
    float s = 0.0f;
    for (int i = 0; i < n; ++i) s += w[i];
    return s;
}

// The block quantizer of a format with a plain and an importance-weighted
// path: qw null selects the plain one.
template <class Block, void (*Plain)(const float*, Block&), void (*Weighted)(const float*, const float*, Block&)>
inline KQ_HD void plain_or_weighted(const float* x, const float* qw, Block& b) {
    if (qw)
        Weighted(x, qw, b);
    else
        Plain(x, b);
}

// The value of largest magnitude, keeping its sign; the first one wins ties.
inline KQ_HD float signed_absmax(int n, const float* x, float* amax_out) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    *amax_out = amax;
    return max;
}

// A group whose largest |x| is below kGroupMaxEps quantizes to level 0
// everywhere (scale 0): true after zeroing L.
inline KQ_HD bool zero_group(int n, float amax, int8_t* L) {
    if (amax >= kGroupMaxEps) return false;
    for (int i = 0; i < n; ++i) L[i] = 0;
    return true;
}

// Weighted sums of one symmetric level assignment at inverse scale iscale:
// sumlx = sum w*x*l, suml2 = sum w*l*l, levels (offset by nmax) into L.
struct LevelSums {
    float sumlx;
    float suml2;
};

inline KQ_HD LevelSums symmetric_levels(int n, int nmax, const float* x, const float* qw, float iscale, int8_t* L) {
    LevelSums s{0.0f, 0.0f};
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

// Symmetric levels l in [-nmax, nmax-1] with x ~ scale * l; stores l + nmax
// in L and returns scale. Minimises sum w*(x - scale*l)^2 with w = qw[i], or
// w = x^2 when qw is null (ggml's rmse_type 1), over the inverse scales
// -(nmax + 0.1*k)/max, k = -9..9 (k = 0 first), where max is the signed value
// of largest magnitude (so the extreme value maps to -nmax, the level with no
// +nmax twin).
inline KQ_HD float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* qw) {
    assert(n <= kMaxGroup);
    float amax;
    const float max = signed_absmax(n, x, &amax);
    if (zero_group(n, amax, L)) return 0.0f;
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
            memcpy(L, trial, static_cast<size_t>(n));
            scale = s.sumlx / s.suml2;
            best = scale * s.sumlx;
        }
    }
    return scale;
}

// Q3_K's symmetric search without importance weights: as make_qx_quants with
// w = x^2, started from -nmax/max and then refined by changing one level at a
// time while the weighted error drops (at most 5 sweeps). Stores l + nmax.
inline KQ_HD float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
    assert(n <= kMaxGroup);
    float amax;
    const float max = signed_absmax(n, x, &amax);
    if (zero_group(n, amax, L)) return 0.0f;
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

// Asymmetric levels l in [0, nmax] with x ~ scale * l - the_min (the_min >= 0).
// Starts from the range [min(x, 0), max(x)], then tries nstep + 1 inverse
// scales (rmin + rdelta*k + nmax) / range, solving the weighted least-squares
// scale and offset for each level assignment, and keeps the lowest weighted
// error (absolute if use_mad, else squared). Returns scale.
//
// kQkx3 = false is make_qkx2_quants, the variant of the plain k-quant
// quantizers: the trial levels round first and clamp after. kQkx3 = true is
// make_qkx3_quants, that of the importance-weighted ones: it clamps the real
// value first, which gives the same level for every finite in-range value but
// stays defined when the range collapsed (v infinite or NaN, or beyond
// nearest_int's range), and treats max <= min as constant. The initial
// assignment always rounds, then clamps.
template <bool kQkx3>
inline KQ_HD float make_qkx_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                                   float* the_min, float rmin, float rdelta, int nstep, bool use_mad) {
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
    if (kQkx3 ? max <= min : max == min) {
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
        diff = use_mad ? fabsf(diff) : diff * diff;
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
            const float v = iscale * (x[i] - min);
            const int l = kQkx3 ? (v > 0 ? nearest_int(v < fnmax ? v : fnmax) : 0) : clamp_int(nearest_int(v), 0, nmax);
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
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, static_cast<size_t>(n));
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

inline KQ_HD float make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min,
                                    float rmin, float rdelta, int nstep, bool use_mad) {
    return make_qkx_quants<false>(n, nmax, x, w, L, the_min, rmin, rdelta, nstep, use_mad);
}
inline KQ_HD float make_qkx3_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min,
                                    float rmin, float rdelta, int nstep, bool use_mad) {
    return make_qkx_quants<true>(n, nmax, x, w, L, the_min, rmin, rdelta, nstep, use_mad);
}

// Non-negative levels l in [0, nmax] for the sub-block scales (or mins) of a
// super-block, x ~ scale * l, weighted by w (the summed importance of each
// sub-block). Used by the importance-weighted Q2_K/Q4_K/Q5_K. Returns scale.
inline KQ_HD float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* w) {
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

// Q4_K/Q5_K: eight 6-bit scales and eight 6-bit mins in 12 bytes.
//   j < 4:  scales[j]   bits 0-5 = sc[j],  scales[j+4] bits 0-5 = m[j]
//   j >= 4: scales[j+4] low nibble = low 4 bits of sc[j], high nibble = low 4 bits of m[j];
//           the top 2 bits of sc[j] are bits 6-7 of scales[j-4], those of m[j] bits 6-7 of scales[j].
// pack writes the bytes in ggml's order (j = 0..7, OR-ing the high bits in),
// so even out-of-range inputs give ggml's bytes.
inline KQ_HD void pack_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* scales) {
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
inline KQ_HD void unpack_scale_min_k4(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
        *m = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

// Q2_K/Q3_K: 256 two-bit levels in 64 bytes. Per half (128 values), byte l
// holds values l, l+32, l+64, l+96 in bit pairs 0-1, 2-3, 4-5, 6-7.
inline KQ_HD void pack_2bit_256(const uint8_t* L, uint8_t* qs) {
    for (int half = 0; half < 2; ++half) {
        const uint8_t* l = L + 128 * half;
        for (int b = 0; b < 32; ++b)
            qs[32 * half + b] = static_cast<uint8_t>(l[b] | (l[b + 32] << 2) | (l[b + 64] << 4) | (l[b + 96] << 6));
    }
}

}  // namespace
}  // namespace kq::ref::ks
