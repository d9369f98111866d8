// Lane-template quantizers of the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0, Q8_1), of Q8_K and of the F16 / BF16 conversions. One block at a
// time, vectorized inside the block: the per-element arithmetic is the
// reference's, lane by lane; block statistics (max |x|, min, max) are
// order-independent reductions, and where ggml keeps the *first* element that
// reaches the extreme (its sign or the sign of a zero matters) the element is
// looked up by index afterwards. See lane_api.h for V.
#pragma once
#include <cfloat>
#include <cstdint>
#include <cstring>

#include "core/blocks.h"
#include "quants/lanes/lane_api.h"
#include "quants/ref.h"

namespace kq::lanes {

// ggml's `if (v < min) min = v; if (v > max) max = v;` from FLT_MAX / -FLT_MAX.
// The values are order-independent; only the sign of a zero extreme depends
// on which zero came first, so a zero result is looked up by index.
template <class V>
inline void first_min_max(const float* x, const typename V::F* v, int nv, float& mn, float& mx) {
    using F = typename V::F;
    F lo = V::fset(FLT_MAX), hi = V::fset(-FLT_MAX);
    for (int k = 0; k < nv; ++k) {
        lo = V::select(v[k] < lo, v[k], lo);
        hi = V::select(v[k] > hi, v[k], hi);
    }
    mn = -V::hmax(V::neg(lo));
    mx = V::hmax(hi);
    if (mn == 0.f || mx == 0.f) {
        for (int k = 0; k < nv; ++k) {
            const uint32_t z = V::bits(v[k] == V::fset(0.f));
            if (z) {
                const float first_zero = x[k * V::N + first_lane<V>(z)];
                if (mn == 0.f) mn = first_zero;
                if (mx == 0.f) mx = first_zero;
                break;
            }
        }
    }
}

// True if any lane of v[0..nv) is NaN.
template <class V>
inline bool any_nan(const typename V::F* v, int nv) {
    typename V::M m = V::none_set();
    for (int k = 0; k < nv; ++k) m = m | (v[k] != v[k]);
    return V::any(m);
}

// ---- Q4_0 / Q5_0: x = d * (q - 2^(b-1)), d = max / -2^(b-1) -------------------
// q = MIN(qmax, (int8_t)(x * id + offset)) with offset = 2^(b-1) + 0.5.
template <class V, int kBits>
inline void quant_sym_block(const float* xb, uint16_t& d_out, uint8_t* qs, uint8_t* qh) {
    using F = typename V::F;
    using I = typename V::I;
    constexpr int NV = QK4_0 / V::N, HALF = NV / 2;
    constexpr int kLevels = 1 << (kBits - 1);  // 8 or 16
    F v[NV];
    prefetch_ahead<V>(xb, QK4_0);
    for (int k = 0; k < NV; ++k) v[k] = V::load(xb + k * V::N);
    const float max = first_absmax<V>(xb, v, NV);
    const float d = max / static_cast<float>(-kLevels);
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    d_out = V::half(d);
    const F idv = V::fset(id), off = V::fset(static_cast<float>(kLevels) + 0.5f);
    const I qmax = V::iset(2 * kLevels - 1);
    uint32_t high = 0;
    for (int k = 0; k < HALF; ++k) {
        const I q0 = V::min(qmax, sext8<V>(V::trunc_to_int(v[k] * idv + off)));
        const I q1 = V::min(qmax, sext8<V>(V::trunc_to_int(v[k + HALF] * idv + off)));
        if (kBits == 4) {
            V::store_u8(qs + k * V::N, q0 | (q1 << 4));
        } else {
            V::store_u8(qs + k * V::N, (q0 & V::iset(0x0f)) | ((q1 & V::iset(0x0f)) << 4));
            high |= V::bits(V::test(q0, 0x10)) << (k * V::N);
            high |= V::bits(V::test(q1, 0x10)) << (k * V::N + QK4_0 / 2);
        }
    }
    if (qh) std::memcpy(qh, &high, 4);
}

// ---- Q4_1 / Q5_1: x = d * q + m, d = (max - min) / (2^b - 1) ------------------
// Q4_1: q = MIN(15, (int8_t)((x - min) * id + 0.5f)); Q5_1: q = (uint8_t)(...).
template <class V, int kBits>
inline void quant_affine_block(const float* xb, uint16_t& d_out, uint16_t& m_out, uint8_t* qs, uint8_t* qh) {
    using F = typename V::F;
    using I = typename V::I;
    constexpr int NV = QK4_1 / V::N, HALF = NV / 2;
    F v[NV];
    prefetch_ahead<V>(xb, QK4_1);
    for (int k = 0; k < NV; ++k) v[k] = V::load(xb + k * V::N);
    float mn, mx;
    first_min_max<V>(xb, v, NV, mn, mx);
    const float d = (mx - mn) / static_cast<float>((1 << kBits) - 1);
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    d_out = V::half(d);
    m_out = V::half(mn);
    const F idv = V::fset(id), mnv = V::fset(mn), half = V::fset(0.5f);
    uint32_t high = 0;
    for (int k = 0; k < HALF; ++k) {
        I q0 = V::trunc_to_int((v[k] - mnv) * idv + half);
        I q1 = V::trunc_to_int((v[k + HALF] - mnv) * idv + half);
        if (kBits == 4) {
            q0 = V::min(V::iset(15), sext8<V>(q0));
            q1 = V::min(V::iset(15), sext8<V>(q1));
            V::store_u8(qs + k * V::N, q0 | (q1 << 4));
        } else {
            V::store_u8(qs + k * V::N, (q0 & V::iset(0x0f)) | ((q1 & V::iset(0x0f)) << 4));
            high |= V::bits(V::test(q0, 0x10)) << (k * V::N);
            high |= V::bits(V::test(q1, 0x10)) << (k * V::N + QK4_1 / 2);
        }
    }
    if (qh) std::memcpy(qh, &high, 4);
}

template <class V>
void quantize_q4_0(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q4_0*>(vy);
    for (int64_t i = 0; i < n / QK4_0; ++i) quant_sym_block<V, 4>(x + i * QK4_0, y[i].d, y[i].qs, nullptr);
}
template <class V>
void quantize_q5_0(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q5_0*>(vy);
    for (int64_t i = 0; i < n / QK5_0; ++i) quant_sym_block<V, 5>(x + i * QK5_0, y[i].d, y[i].qs, y[i].qh);
}
template <class V>
void quantize_q4_1(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q4_1*>(vy);
    for (int64_t i = 0; i < n / QK4_1; ++i) quant_affine_block<V, 4>(x + i * QK4_1, y[i].d, y[i].m, y[i].qs, nullptr);
}
template <class V>
void quantize_q5_1(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q5_1*>(vy);
    for (int64_t i = 0; i < n / QK5_1; ++i) quant_affine_block<V, 5>(x + i * QK5_1, y[i].d, y[i].m, y[i].qs, y[i].qh);
}

// roundf(a) converted to int as C does ((int)roundf: cvttss2si of the rounded
// value): round half away from zero; 0x80000000 for NaN and out of range.
template <class V>
inline typename V::I round_away(typename V::F a) {
    using I = typename V::I;
    const I t = V::trunc_to_int(a);                  // exact integer part when in range
    const typename V::F frac = a - V::to_float(t);  // exact: a and t share the integer part
    const typename V::M up = (V::abs(frac) >= V::fset(0.5f)) & (t != V::iset(INT32_MIN));
    const I step = V::select(a < V::fset(0.f), V::iset(-1), V::iset(1));
    return V::select(up, t + step, t);
}

// ---- Q8_0 / Q8_1: x = d * q, d = max|x| / 127, q = roundf(x / d) --------------
// ggml's MAX(amax, fabsf(v)) lets a NaN through in an order-dependent way, so
// blocks holding a NaN are left to the reference.
template <class V, bool kSum>
inline void quant_q8_block(const float* xb, uint16_t& d_out, uint16_t* s_out, int8_t* qs) {
    using F = typename V::F;
    using I = typename V::I;
    constexpr int NV = QK8_0 / V::N;
    F v[NV];
    for (int k = 0; k < NV; ++k) v[k] = V::load(xb + k * V::N);
    F m = V::fset(0.f);
    for (int k = 0; k < NV; ++k) m = V::select(V::abs(v[k]) > m, V::abs(v[k]), m);
    const float amax = V::hmax(m);
    const float d = amax / ((1 << 7) - 1);
    const float id = d != 0.f ? 1.0f / d : 0.0f;
    d_out = V::half(d);
    const F idv = V::fset(id);
    I sum = V::iset(0);
    for (int k = 0; k < NV; ++k) {
        const I q = round_away<V>(v[k] * idv);
        V::store_u8(reinterpret_cast<uint8_t*>(qs) + k * V::N, q);
        if (kSum) sum = sum + sext8<V>(q);  // ggml sums the stored int8 values
    }
    if (kSum) *s_out = V::half(static_cast<float>(V::hsum(sum)) * d);
}

template <class V>
void quantize_q8_0(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q8_0*>(vy);
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        const float* xb = x + i * QK8_0;
        prefetch_ahead<V>(xb, QK8_0);
        typename V::F v[QK8_0 / V::N];
        for (int k = 0; k < QK8_0 / V::N; ++k) v[k] = V::load(xb + k * V::N);
        if (any_nan<V>(v, QK8_0 / V::N)) {
            ref::quantize_row_q8_0(xb, &y[i], QK8_0, nullptr);
            continue;
        }
        quant_q8_block<V, false>(xb, y[i].d, nullptr, y[i].qs);
    }
}

template <class V>
void quantize_q8_1(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<block_q8_1*>(vy);
    for (int64_t i = 0; i < n / QK8_1; ++i) {
        const float* xb = x + i * QK8_1;
        prefetch_ahead<V>(xb, QK8_1);
        typename V::F v[QK8_1 / V::N];
        for (int k = 0; k < QK8_1 / V::N; ++k) v[k] = V::load(xb + k * V::N);
        if (any_nan<V>(v, QK8_1 / V::N)) {
            ref::quantize_row_q8_1(xb, &y[i], QK8_1, nullptr);
            continue;
        }
        quant_q8_block<V, true>(xb, y[i].d, &y[i].s, y[i].qs);
    }
}

// ---- Q8_K: x = d * q, d = 1 / iscale, iscale = -127 / max (fp32 scale) -------
template <class V>
void quantize_q8_K(const float* x, void* vy, int64_t n) {
    using F = typename V::F;
    using I = typename V::I;
    constexpr int NV = QK_K / V::N;
    constexpr int GROUP = 16 / V::N > 0 ? 16 / V::N : 1;  // vectors per bsums group of 16
    static_assert(V::N <= 16, "bsums groups of 16 must hold whole vectors");
    auto* y = static_cast<block_q8_K*>(vy);
    for (int64_t i = 0; i < n / QK_K; ++i) {
        const float* xb = x + i * QK_K;
        prefetch_ahead<V>(xb, QK_K, 1024);
        F v[NV];
        for (int k = 0; k < NV; ++k) v[k] = V::load(xb + k * V::N);
        const float max = first_absmax<V>(xb, v, NV);  // `if (ax > amax)`: same rule
        if (max == 0.f) {
            y[i].d = 0.f;
            std::memset(y[i].qs, 0, sizeof(y[i].qs));
            std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
            continue;
        }
        const float iscale = -127.f / max;
        const F isv = V::fset(iscale);
        for (int g = 0; g < QK_K / 16; ++g) {
            I sum = V::iset(0);
            for (int k = g * GROUP; k < (g + 1) * GROUP; ++k) {
                const I q = sext8<V>(V::min(V::iset(127), nearest_int<V>(isv * v[k])));
                V::store_u8(reinterpret_cast<uint8_t*>(y[i].qs) + k * V::N, q);
                sum = sum + q;
            }
            y[i].bsums[g] = static_cast<int16_t>(V::hsum(sum));
        }
        y[i].d = 1 / iscale;
    }
}

// ---- F16 / BF16 ------------------------------------------------------------------
template <class V>
void quantize_f16(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<uint16_t*>(vy);
    int64_t i = 0;
    for (; i + V::N <= n; i += V::N) V::store_u16(y + i, V::to_half(V::load(x + i)));
    for (; i < n; ++i) y[i] = V::half(x[i]);
}

// bf16 = round to nearest even of the top 16 bits; NaN keeps its top bits
// with the quiet bit (bit 6 of the bf16) set, as kq::fp32_to_bf16.
template <class V>
inline typename V::I to_bf16(typename V::F a) {
    using I = typename V::I;
    const I u = V::as_int(a);
    const I lsb = (u >> 16) & V::iset(1);
    const I rounded = ((u + V::iset(0x7fff) + lsb) >> 16) & V::iset(0xffff);
    const I quiet = ((u >> 16) & V::iset(0xffff)) | V::iset(64);
    return V::select(a != a, quiet, rounded);
}

template <class V>
void quantize_bf16(const float* x, void* vy, int64_t n) {
    auto* y = static_cast<uint16_t*>(vy);
    int64_t i = 0;
    for (; i + V::N <= n; i += V::N) V::store_u16(y + i, to_bf16<V>(V::load(x + i)));
    for (; i < n; ++i) {
        // Scalar tail through a single broadcast lane (same arithmetic).
        uint16_t tmp[V::N];
        V::store_u16(tmp, to_bf16<V>(V::fset(x[i])));
        y[i] = tmp[0];
    }
}

}  // namespace kq::lanes
