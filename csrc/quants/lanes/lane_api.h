// Lane templates: each fast quantizer is written once, here, over a small
// vector type V, and instantiated per ISA in csrc/isa/<isa>/ (V512 in
// isa/avx512/lanes512.h, V256 in isa/avx2/lanes256.h). No intrinsics here.
//
// Why lanes give ggml's bytes: ggml's reference quantizers are sequences of
// IEEE single-precision operations (add, sub, mul, div, sqrt, compare) plus
// integer bit tricks. A vector instruction applies the same correctly rounded
// operation to every lane, so if a lane is fed exactly the operands the scalar
// code would see, in the same order, it produces the same bits. The k-quant
// searches therefore put one *sub-block* in each lane (the data transposed so
// that vector i holds element i of every sub-block) and run the scalar
// algorithm unchanged, branch conditions becoming per-lane masks. Only
// order-independent reductions (max of |x|, integer sums) are ever done
// across lanes. FMA contraction is off for the whole project
// (-ffp-contract=off) and no intrinsic here fuses.
//
// The contract of V (all operations lane-wise unless stated):
//   V::N                      lanes
//   V::F, V::I, V::M          float / int32 / mask vectors
//   F + - * /                 IEEE single precision, round to nearest even
//   F < > <= >= ==            ordered compares (false on NaN) -> M;  != unordered
//   I + - & | << >>(arith)    int32;  I == != > -> M;   M & | ~
//   fset(float) iset(int) load store load_i32 store_i32
//   transpose(src, stride, ncols, F* out)   out[c] lane r = src[r*stride + c], c < ncols
//   gather_idx(base, I idx)   lane j = 4-byte element idx[j] of base;  mask_from_bits(uint32)
//   store_u8 / store_u16      low 8 / 16 bits of each lane, N consecutive outputs
//   abs neg sqrt select(m,t,f) min max (int) to_float trunc_to_int (cvtt: 0x80000000 if out of range)
//   fmin fmax                 minps / maxps: a < b ? a : b, so b when either is NaN
//   as_int as_float (bit casts)   test(I, bits) -> M (lane & bits != 0)
//   any(M) bits(M) (lane mask, lane 0 = bit 0) none_set() all_set()
//   hmax(F) (NaN-free input) hsum(I)
//   to_half(F) -> I, half(float), from_half(uint16)   exact fp16, NaN -> sign|0x7e00
//
// Every helper here is a template on V: the same header is compiled once per
// ISA with different flags, and distinct instantiations keep the linker from
// merging an AVX-512 copy into the AVX2 path.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/traits.h"

namespace kq::lanes {

// ggml's nearest_int: adding 1.5 * 2^23 puts round-to-nearest-even(f) in the
// low 23 mantissa bits (offset by 2^22) for |f| < 2^22. Outside that range the
// result is whatever the same bit operations give, exactly as in ggml.
template <class V>
inline typename V::I nearest_int(typename V::F f) {
    const typename V::F t = f + V::fset(12582912.f);  // 12582912 = 1.5 * 2^23
    return (V::as_int(t) & V::iset(0x007fffff)) - V::iset(0x00400000);
}

// Scalar nearest_int, for the per-super-block bookkeeping.
template <class V>
inline int nearest_int_s(float f) {
    const float t = f + 12582912.f;
    int32_t i;
    std::memcpy(&i, &t, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

// MAX(lo, MIN(hi, a)) on int lanes.
template <class V>
inline typename V::I clamp(typename V::I a, int lo, int hi) {
    return V::max(V::iset(lo), V::min(V::iset(hi), a));
}

// (int8_t) of an int32: sign-extend the low byte. ggml converts float to
// int8_t through a 32-bit truncating conversion (cvttss2si), then keeps the
// low byte; trunc_to_int followed by this does the same.
template <class V>
inline typename V::I sext8(typename V::I a) {
    return (a << 24) >> 24;
}

// First set lane of a mask word (w != 0).
template <class V>
inline int first_lane(uint32_t w) {
    return __builtin_ctz(w);
}

// The value ggml keeps in `if (amax < fabsf(v)) { amax = fabsf(v); max = v; }`
// over x[0..nv*N) (held in v[]): the first element of largest magnitude, NaNs
// skipped, 0 if every |x| is 0 or NaN.
template <class V>
inline float first_absmax(const float* x, const typename V::F* v, int nv) {
    using F = typename V::F;
    F m = V::fset(0.f);
    for (int k = 0; k < nv; ++k) {
        const F a = V::abs(v[k]);
        m = V::select(a > m, a, m);  // NaN compares false: skipped, as in ggml
    }
    const float amax = V::hmax(m);
    if (!(amax > 0.f)) return 0.f;
    // Branch-free search for the first lane equal to amax (which half of a
    // block holds it is data, a branch on it mispredicts half the time).
    const F am = V::fset(amax);
    uint32_t which = 0;  // bit k: vector k holds amax
    for (int k = 0; k < nv; ++k) which |= static_cast<uint32_t>(V::bits(V::abs(v[k]) == am) != 0) << k;
    const int k = first_lane<V>(which);
    return x[k * V::N + first_lane<V>(V::bits(V::abs(v[k]) == am))];
}

// Prefetches the 64-byte lines of [p + ahead, p + ahead + n) floats. The
// legacy quantizers do little work per byte; with the next blocks' data
// requested early they run at their in-cache speed on rows streamed from
// memory (2 KB ahead measured best, 256 B to 8 KB all help).
// Always inlined: GCC drops calls to a function whose only effect is a
// prefetch (its mod/ref analysis sees no memory written).
template <class V>
[[gnu::always_inline]] inline void prefetch_ahead(const float* p, int n, int ahead = 512) {
    for (int i = 0; i < n; i += 16) __builtin_prefetch(p + ahead + i);
}

// Quantize one row with the plain path, or with the importance-weighted one
// when an imatrix is given.
template <void (*Fast)(const float*, void*, int64_t), quantize_row_fn Weighted>
void fast_or_weighted(const float* x, void* y, int64_t n, const float* imatrix) {
    if (imatrix) {
        Weighted(x, y, n, imatrix);
    } else {
        Fast(x, y, n);
    }
}

// Types whose quantizer ignores importance weights.
template <void (*Fast)(const float*, void*, int64_t)>
void fast_only(const float* x, void* y, int64_t n, const float*) {
    Fast(x, y, n);
}

}  // namespace kq::lanes
