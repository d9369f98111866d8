// The out-of-line entry points of quants/kquant_search_calls.h.
#include "quants/kquant_search_calls.h"

#include "quants/kquant_search.h"

namespace kq::ref::ks_calls {

float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* qw) {
    return ks::make_qx_quants(n, nmax, x, L, qw);
}

float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* w) {
    return ks::make_qp_quants(n, nmax, x, L, w);
}

}  // namespace kq::ref::ks_calls
