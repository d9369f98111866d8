// Device quantizers of the legacy formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q8_1) and Q8_K, one thread per block: the reference's own block code
// (csrc/quants/block/legacy.h and q6_q8_k.h, compiled for the GPU), behind
// the interface the quantize kernel takes. Each `quantize(x, b, qw, sigma2)`
// fills block b from the block's values x; qw is the block's slice of the
// imatrix (nullptr: none) and sigma2 the row's mean square (only read when qw
// is set; computed by a separate pass because it is a left-to-right sum over
// the whole row). kRowSigma2 says whether the format needs that pass.
#pragma once
#include <cstdint>

#include "cuda/search.cuh"
#include "quants/block/legacy.h"
#include "quants/block/q6_q8_k.h"

namespace kq::cuda::dev {

// Block quantizer Fn(x, qw, sigma2, b) as a kernel's Q parameter.
template <class B, bool kSigma2, void (*Fn)(const float*, const float*, float, B&)>
struct QuantWith {
    using Block = B;
    static constexpr bool kRowSigma2 = kSigma2;
    __device__ static void quantize(const float* x, Block& b, const float* qw, float sigma2) { Fn(x, qw, sigma2, b); }
};

// Formats that ignore the imatrix: Fn(x, b).
template <class B, void (*Fn)(const float*, B&)>
struct QuantPlain {
    using Block = B;
    static constexpr bool kRowSigma2 = false;
    __device__ static void quantize(const float* x, Block& b, const float*, float) { Fn(x, b); }
};

using QuantQ4_0 = QuantWith<block_q4_0, true, ref::legacy::quantize_q4_0>;
using QuantQ4_1 = QuantWith<block_q4_1, true, ref::legacy::quantize_q4_1>;
using QuantQ5_0 = QuantWith<block_q5_0, true, ref::legacy::quantize_q5_0>;
using QuantQ5_1 = QuantWith<block_q5_1, true, ref::legacy::quantize_q5_1>;
using QuantQ8_0 = QuantPlain<block_q8_0, ref::legacy::quantize_q8_0>;
using QuantQ8_1 = QuantPlain<block_q8_1, ref::legacy::quantize_q8_1>;
using QuantQ8_K = QuantPlain<block_q8_K, ref::q8k::quantize>;

}  // namespace kq::cuda::dev
