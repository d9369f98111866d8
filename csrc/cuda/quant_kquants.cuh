// Device quantizers of the k-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, one thread
// per super-block of 256: the reference's own block code (csrc/quants/block/,
// compiled for the GPU) behind the interface of quant_legacy.cuh. sigma2 is
// unused (the k-quants take the mean square of their own super-block).
#pragma once
#include <cstdint>

#include "cuda/quant_legacy.cuh"
#include "quants/block/q2_q3_k.h"
#include "quants/block/q4_q5_k.h"
#include "quants/block/q6_q8_k.h"

namespace kq::cuda::dev {

// Block quantizer Fn(x, qw, b) of a k-quant as a kernel's Q parameter.
template <class B, void (*Fn)(const float*, const float*, B&)>
struct QuantSuper {
    using Block = B;
    static constexpr bool kRowSigma2 = false;
    __device__ static void quantize(const float* x, Block& b, const float* qw, float) { Fn(x, qw, b); }
};

using QuantQ2_K = QuantSuper<block_q2_K, ref::q2k::quantize>;
using QuantQ3_K = QuantSuper<block_q3_K, ref::q3k::quantize>;
using QuantQ4_K = QuantSuper<block_q4_K, ref::q45k::quantize_q4_K>;
using QuantQ5_K = QuantSuper<block_q5_K, ref::q45k::quantize_q5_K>;
using QuantQ6_K = QuantSuper<block_q6_K, ref::q6k::quantize>;

}  // namespace kq::cuda::dev
