// Device port of the reference scale searches (csrc/quants/kquant_search.*).
//
// The bytes a quantizer writes depend on float comparisons of sums, so each
// function here repeats the reference's arithmetic operation for operation:
// same evaluation order (a*b*c = (a*b)*c, sums left to right), no fused
// multiply-add (the library is compiled with -fmad=false), IEEE division and
// square root (-prec-div=true -prec-sqrt=true). One thread runs one group, so
// no sum is split. Comments on the why of each step live in the reference;
// keep both in sync (tests/test_cuda.py compares bytes).
#pragma once
#include <cstdint>

#include "cuda/device_math.cuh"

namespace kq::cuda::dev {

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS
constexpr int kMaxGroup = 32;           // largest group any search runs on

// Round to nearest even for |v| < 2^22 via the 1.5 * 2^23 trick (see the reference).
__device__ __forceinline__ int nearest_int(float v) {
    const float shifted = v + 12582912.0f;
    return (__float_as_int(shifted) & 0x007fffff) - 0x00400000;
}
__device__ __forceinline__ int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

__device__ inline float sum_squares(const float* x, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; ++i) s += x[i] * x[i];
    return s;
}

__device__ inline void imatrix_weights(const float* qw, const float* x, int n, float sigma2, float* w) {
    for (int i = 0; i < n; ++i) w[i] = qw[i] * sqrtf(sigma2 + x[i] * x[i]);
}

// Value of largest magnitude with its sign; first wins ties.
__device__ inline float signed_absmax(int n, const float* x, float* amax_out) {
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

struct LevelSums {
    float sumlx, suml2;
};

__device__ inline LevelSums symmetric_levels(int n, int nmax, const float* x, const float* qw, float iscale,
                                             int8_t* L) {
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

// Symmetric levels in [-nmax, nmax-1], stored + nmax; weights qw or x^2.
__device__ inline float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* qw) {
    float amax;
    const float max = signed_absmax(n, x, &amax);
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    const float fnmax = static_cast<float>(nmax);
    LevelSums best_sums = symmetric_levels(n, nmax, x, qw, static_cast<float>(-nmax) / max, L);
    float scale = best_sums.suml2 != 0.0f ? best_sums.sumlx / best_sums.suml2 : 0.0f;
    float best = scale * best_sums.sumlx;
    int8_t trial[kMaxGroup];
    for (int k = -9; k <= 9; ++k) {
        if (k == 0) continue;
        const float iscale = -(fnmax + 0.1f * static_cast<float>(k)) / max;
        const LevelSums s = symmetric_levels(n, nmax, x, qw, iscale, trial);
        if (s.suml2 > 0 && s.sumlx * s.sumlx > best * s.suml2) {
            for (int i = 0; i < n; ++i) L[i] = trial[i];
            scale = s.sumlx / s.suml2;
            best = scale * s.sumlx;
        }
    }
    return scale;
}

// Q3_K's plain search: weights x^2, then single-level refinement.
__device__ inline float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
    float amax;
    const float max = signed_absmax(n, x, &amax);
    if (amax < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    const float iscale = static_cast<float>(-nmax) / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = static_cast<int8_t>(l);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * static_cast<float>(l);
        suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
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

// Level pickers of the asymmetric searches (qkx2: round then clamp; qkx3:
// clamp the real value first).
__device__ __forceinline__ int level_qkx2(float v, int nmax) { return clamp_int(nearest_int(v), 0, nmax); }
__device__ __forceinline__ int level_qkx3(float v, int nmax) {
    return v > 0 ? nearest_int(v < static_cast<float>(nmax) ? v : static_cast<float>(nmax)) : 0;
}

// make_qkx2_quants (qkx3 = false) / make_qkx3_quants (qkx3 = true).
template <bool kQkx3>
__device__ inline float make_qkx_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                                        float* the_min, float rmin, float rdelta, int nstep, bool use_mad) {
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
        iscale = (rmin + rdelta * static_cast<float>(k) + fnmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; ++i) {
            const float v = iscale * (x[i] - min);
            const int l = kQkx3 ? level_qkx3(v, nmax) : level_qkx2(v, nmax);
            Laux[i] = static_cast<uint8_t>(l);
            const float w = weights[i];
            const float fl = static_cast<float>(l);
            sum_l += w * fl;
            sum_l2 += w * fl * fl;
            sum_xl += w * fl * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
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
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

// Non-negative levels in [0, nmax] for sub-block scales/mins, weighted.
__device__ inline float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* w) {
    float max = 0.0f;
    for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
    if (max < kGroupMaxEps) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    const float fnmax = static_cast<float>(nmax);
    float iscale = fnmax / max;
    for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
    float scale = 1 / iscale;
    float best_mse = 0.0f;
    for (int i = 0; i < n; ++i) {
        const float diff = x[i] - scale * static_cast<float>(L[i]);
        best_mse += w[i] * diff * diff;
    }
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

// Q4_K/Q5_K 6-bit scale/min packing (layout in kquant_search.h).
__device__ inline void pack_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* scales) {
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
__device__ __forceinline__ void unpack_scale_min_k4(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = static_cast<uint8_t>((scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4));
        *m = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
    }
}

// Q2_K/Q3_K 2-bit packing: per half of 128, byte b = l[b] | l[b+32]<<2 | l[b+64]<<4 | l[b+96]<<6.
__device__ inline void pack_2bit_256(const uint8_t* L, uint8_t* qs) {
    for (int half = 0; half < 2; ++half) {
        const uint8_t* l = L + 128 * half;
        for (int b = 0; b < 32; ++b)
            qs[32 * half + b] = static_cast<uint8_t>(l[b] | (l[b + 32] << 2) | (l[b + 64] << 4) | (l[b + 96] << 6));
    }
}

}  // namespace kq::cuda::dev
