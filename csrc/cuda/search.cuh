// The scale searches of the device quantizers are the reference's own code:
// csrc/quants/kquant_search.h, compiled for the GPU as __host__ __device__
// functions (see there for the arithmetic rules that keep the bytes equal).
// This header brings them into kq::cuda::dev, where the quantizers call them.
#pragma once
#include "cuda/device_math.cuh"
#include "quants/kquant_search.h"

namespace kq::cuda::dev {

using ref::ks::clamp_int;
using ref::ks::imatrix_weights;
using ref::ks::kGroupMaxEps;
using ref::ks::kMaxGroup;
using ref::ks::make_q3_quants;
using ref::ks::make_qkx_quants;
using ref::ks::make_qp_quants;
using ref::ks::make_qx_quants;
using ref::ks::nearest_int;
using ref::ks::pack_2bit_256;
using ref::ks::pack_scale_min_k4;
using ref::ks::signed_absmax;
using ref::ks::sum_squares;
using ref::ks::unpack_scale_min_k4;

}  // namespace kq::cuda::dev
