// Pack<V, K>: K vectors of V used as one vector of K*V::N lanes.
//
// The searches whose per-element steps form a long dependency chain
// (make_q3_quants updates its sums after every element, and each update
// waits on a division) are latency-bound on one vector. Running K
// independent vectors through the same code gives the core K chains to
// overlap. Every operation is V's, applied to each part, so the lane
// contract of lane_api.h holds unchanged.
#pragma once
#include "quants/lanes/lane_api.h"

namespace kq::lanes {

template <class V, int K>
struct PackF { typename V::F v[K]; };
template <class V, int K>
struct PackI { typename V::I v[K]; };
template <class V, int K>
struct PackM { typename V::M v[K]; };

#define KQ_PACK_BINARY(RET, ARG, OP)                                  \
    template <class V, int K>                                         \
    inline RET<V, K> operator OP(const ARG<V, K>& a, const ARG<V, K>& b) { \
        RET<V, K> r;                                                  \
        for (int k = 0; k < K; ++k) r.v[k] = a.v[k] OP b.v[k];        \
        return r;                                                     \
    }
KQ_PACK_BINARY(PackF, PackF, +)
KQ_PACK_BINARY(PackF, PackF, -)
KQ_PACK_BINARY(PackF, PackF, *)
KQ_PACK_BINARY(PackF, PackF, /)
KQ_PACK_BINARY(PackM, PackF, <)
KQ_PACK_BINARY(PackM, PackF, >)
KQ_PACK_BINARY(PackM, PackF, <=)
KQ_PACK_BINARY(PackM, PackF, >=)
KQ_PACK_BINARY(PackM, PackF, ==)
KQ_PACK_BINARY(PackM, PackF, !=)
KQ_PACK_BINARY(PackI, PackI, +)
KQ_PACK_BINARY(PackI, PackI, -)
KQ_PACK_BINARY(PackI, PackI, &)
KQ_PACK_BINARY(PackI, PackI, |)
KQ_PACK_BINARY(PackM, PackI, ==)
KQ_PACK_BINARY(PackM, PackI, !=)
KQ_PACK_BINARY(PackM, PackI, >)
KQ_PACK_BINARY(PackM, PackM, &)
KQ_PACK_BINARY(PackM, PackM, |)
#undef KQ_PACK_BINARY

template <class V, int K>
inline PackM<V, K> operator~(const PackM<V, K>& a) {
    PackM<V, K> r;
    for (int k = 0; k < K; ++k) r.v[k] = ~a.v[k];
    return r;
}
template <class V, int K>
inline PackI<V, K> operator<<(const PackI<V, K>& a, int s) {
    PackI<V, K> r;
    for (int k = 0; k < K; ++k) r.v[k] = a.v[k] << s;
    return r;
}
template <class V, int K>
inline PackI<V, K> operator>>(const PackI<V, K>& a, int s) {
    PackI<V, K> r;
    for (int k = 0; k < K; ++k) r.v[k] = a.v[k] >> s;
    return r;
}

template <class V, int K>
struct Pack {
    static constexpr int N = V::N * K;
    using F = PackF<V, K>;
    using I = PackI<V, K>;
    using M = PackM<V, K>;

    static F fset(float x) {
        F r;
        for (int k = 0; k < K; ++k) r.v[k] = V::fset(x);
        return r;
    }
    static I iset(int32_t x) {
        I r;
        for (int k = 0; k < K; ++k) r.v[k] = V::iset(x);
        return r;
    }
    static F load(const float* p) {
        F r;
        for (int k = 0; k < K; ++k) r.v[k] = V::load(p + k * V::N);
        return r;
    }
    static void store(float* p, const F& a) {
        for (int k = 0; k < K; ++k) V::store(p + k * V::N, a.v[k]);
    }
    static I load_i32(const int32_t* p) {
        I r;
        for (int k = 0; k < K; ++k) r.v[k] = V::load_i32(p + k * V::N);
        return r;
    }
    static void store_i32(int32_t* p, const I& a) {
        for (int k = 0; k < K; ++k) V::store_i32(p + k * V::N, a.v[k]);
    }

    // out[c] lane r = src[r * stride + c] for r < N, c < ncols: part k holds
    // rows k*V::N .. (k+1)*V::N - 1.
    static void transpose(const float* src, int64_t stride, int ncols, F* out) {
        typename V::F tmp[64];
        for (int k = 0; k < K; ++k) {
            for (int c0 = 0; c0 < ncols; c0 += 64) {
                const int nc = ncols - c0 < 64 ? ncols - c0 : 64;
                V::transpose(src + k * V::N * stride + c0, stride, nc, tmp);
                for (int c = 0; c < nc; ++c) out[c0 + c].v[k] = tmp[c];
            }
        }
    }

#define KQ_PACK_UNARY(RET, NAME, ARG)              \
    static RET NAME(const ARG& a) {                \
        RET r;                                     \
        for (int k = 0; k < K; ++k) r.v[k] = V::NAME(a.v[k]); \
        return r;                                  \
    }
    KQ_PACK_UNARY(F, abs, F)
    KQ_PACK_UNARY(F, neg, F)
    KQ_PACK_UNARY(F, sqrt, F)
    KQ_PACK_UNARY(F, to_float, I)
    KQ_PACK_UNARY(I, trunc_to_int, F)
    KQ_PACK_UNARY(I, as_int, F)
    KQ_PACK_UNARY(F, as_float, I)
#undef KQ_PACK_UNARY

    static F select(const M& m, const F& t, const F& f) {
        F r;
        for (int k = 0; k < K; ++k) r.v[k] = V::select(m.v[k], t.v[k], f.v[k]);
        return r;
    }
    static I select(const M& m, const I& t, const I& f) {
        I r;
        for (int k = 0; k < K; ++k) r.v[k] = V::select(m.v[k], t.v[k], f.v[k]);
        return r;
    }
    static I min(const I& a, const I& b) {
        I r;
        for (int k = 0; k < K; ++k) r.v[k] = V::min(a.v[k], b.v[k]);
        return r;
    }
    static I max(const I& a, const I& b) {
        I r;
        for (int k = 0; k < K; ++k) r.v[k] = V::max(a.v[k], b.v[k]);
        return r;
    }
    static F fmin(const F& a, const F& b) {
        F r;
        for (int k = 0; k < K; ++k) r.v[k] = V::fmin(a.v[k], b.v[k]);
        return r;
    }
    static F fmax(const F& a, const F& b) {
        F r;
        for (int k = 0; k < K; ++k) r.v[k] = V::fmax(a.v[k], b.v[k]);
        return r;
    }
    static F round_even(const F& a) {
        F r;
        for (int k = 0; k < K; ++k) r.v[k] = V::round_even(a.v[k]);
        return r;
    }
    static bool any(const M& m) {
        bool r = false;
        for (int k = 0; k < K; ++k) r = r || V::any(m.v[k]);
        return r;
    }
    static M none_set() {
        M r;
        for (int k = 0; k < K; ++k) r.v[k] = V::none_set();
        return r;
    }
    static M all_set() {
        M r;
        for (int k = 0; k < K; ++k) r.v[k] = V::all_set();
        return r;
    }
};

}  // namespace kq::lanes
