// exp over SIMD lanes, shared by the softmax kernels of the ISA folders
// (templates on a lane type V of csrc/isa/*/lanes*.h: no intrinsics here, so
// each folder instantiates it with its own flags).
//
// exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 in
// [-ln2/2, ln2/2]: ln 2 split in a high part with 12 significant bits, so
// n * ln2_hi is exact for |n| < 2^10, and the rest. exp(r) is its Taylor
// polynomial to r^7: the remainder r^8 / 8! < 6e-9 relative is below half an
// ulp, so with Horner's roundings the result is within ~2 ulp of expf.
// The caller scales by 2^n (vscalefps, or the exponent bits).
#pragma once

namespace kq::lanes {

// exp(r) for x's reduced argument r; n receives round(x / ln 2).
template <class V>
inline typename V::F exp_reduced(typename V::F x, typename V::F& n) {
    using F = typename V::F;
    n = V::round_even(x * V::fset(1.44269504088896341f));
    F r = V::fnmadd(n, V::fset(0.693145751953125f), x);         // x - n * ln2_hi
    r = V::fnmadd(n, V::fset(1.428606765330187045e-06f), r);     // - n * (ln2 - ln2_hi)
    F p = V::fset(1.0f / 5040);
    for (const float c : {1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f}) p = V::fmadd(p, r, V::fset(c));
    return p;
}

}  // namespace kq::lanes
