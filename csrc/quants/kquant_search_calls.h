// Out-of-line entry points to two of the scale searches of
// quants/kquant_search.h, for the SIMD quantizers (quants/lanes/), which call
// them once per super-block on their imatrix paths only. Built once, for the
// baseline CPU, in kquant_search.cpp: with the bodies inlined into the ISA
// builds, GCC grew the lane quantizers by up to half and the plain paths of
// Q2_K and Q6_K measured 5-8% slower.
#pragma once
#include <cstdint>

namespace kq::ref::ks_calls {

float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* qw);
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* w);

}  // namespace kq::ref::ks_calls
