// Scale searches and bit-packing helpers shared by the reference quantizers.
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
#pragma once
#include <cstdint>
#include <cstring>

namespace kq::ref::ks {

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
inline int nearest_int(float v) {
    const float shifted = v + 12582912.0f;
    int32_t bits;
    std::memcpy(&bits, &shifted, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

inline int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Sum of x[i]^2, accumulated left to right in float (the order ggml uses for
// the sigma2 of a row or block).
float sum_squares(const float* x, int64_t n);

// Importance weights of one group from the imatrix: w[i] = qw[i] * sqrt(sigma2 + x[i]^2).
// sigma2 (a mean square of the row or block) keeps tiny values from getting
// zero weight.
void imatrix_weights(const float* qw, const float* x, int n, float sigma2, float* w);

// Symmetric levels l in [-nmax, nmax-1] with x ~ scale * l; stores l + nmax
// in L and returns scale. Minimises sum w*(x - scale*l)^2 with w = qw[i], or
// w = x^2 when qw is null (ggml's rmse_type 1), over the inverse scales
// -(nmax + 0.1*k)/max, k = -9..9 (k = 0 first), where max is the signed value
// of largest magnitude (so the extreme value maps to -nmax, the level with no
// +nmax twin).
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* qw);

// Q3_K's symmetric search without importance weights: as make_qx_quants with
// w = x^2, started from -nmax/max and then refined by changing one level at a
// time while the weighted error drops (at most 5 sweeps). Stores l + nmax.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L);

// Asymmetric levels l in [0, nmax] with x ~ scale * l - the_min (the_min >= 0).
// Starts from the range [min(x, 0), max(x)], then tries nstep + 1 inverse
// scales (rmin + rdelta*k + nmax) / range, solving the weighted least-squares
// scale and offset for each level assignment, and keeps the lowest weighted
// error (absolute if use_mad, else squared). Returns scale.
// qkx2 is the variant of the plain k-quant quantizers; qkx3 that of the
// importance-weighted ones (it guards the level computation against a range
// that has collapsed, and treats max <= min as constant).
float make_qkx2_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, float rmin,
                       float rdelta, int nstep, bool use_mad);
float make_qkx3_quants(int n, int nmax, const float* x, const float* w, uint8_t* L, float* the_min, float rmin,
                       float rdelta, int nstep, bool use_mad);

// Non-negative levels l in [0, nmax] for the sub-block scales (or mins) of a
// super-block, x ~ scale * l, weighted by w (the summed importance of each
// sub-block). Used by the importance-weighted Q2_K/Q4_K/Q5_K. Returns scale.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* w);

// Q4_K/Q5_K: eight 6-bit scales and eight 6-bit mins in 12 bytes.
//   j < 4:  scales[j]   bits 0-5 = sc[j],  scales[j+4] bits 0-5 = m[j]
//   j >= 4: scales[j+4] low nibble = low 4 bits of sc[j], high nibble = low 4 bits of m[j];
//           the top 2 bits of sc[j] are bits 6-7 of scales[j-4], those of m[j] bits 6-7 of scales[j].
// pack writes the bytes in ggml's order (j = 0..7, OR-ing the high bits in),
// so even out-of-range inputs give ggml's bytes.
void pack_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* scales);
inline void unpack_scale_min_k4(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
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
void pack_2bit_256(const uint8_t* L, uint8_t* qs);

}  // namespace kq::ref::ks
