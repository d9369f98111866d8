// Activation ops of the decoder: RMSNorm, RoPE, softmax, causal attention,
// SwiGLU. Plain C++ loops written so the compiler can vectorize them for the
// baseline CPU (several independent accumulators instead of one serial sum,
// since -ffp-contract=off and no -ffast-math forbid reassociation).
//
// Conventions: activations are float32, row-major [n_tokens, width].
#pragma once
#include <cstdint>

namespace kq::ops {

// Dot product of n floats (any n), eight-way split accumulation.
float dot_f32(const float* a, const float* b, int64_t n);
// y += a * x over n floats.
void axpy_f32(float a, const float* x, float* y, int64_t n);

// y[i] = x[i] / sqrt(mean(x^2) + eps) * w[i] for each of `rows` rows of n.
// The mean of squares is accumulated in double (as ggml's rms_norm does).
void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps);

// Rotary position embedding, applied in place to `rows` rows, each holding
// n_heads heads of head_dim floats; row r is at position pos[r]. Only the
// first n_rot dims of each head rotate.
//   normal mode (llama): pairs (2i, 2i+1)  -- the GGUF converter permuted Q/K
//                        rows so that the HF "rotate half" becomes adjacent pairs;
//   neox mode  (qwen2):  pairs (i, i + n_rot/2).
// Pair i turns by angle pos * freq_scale * base^(-2i/n_rot) / freq_factors[i]
// (freq_factors: nullptr = all 1; Llama-3 scaling ships them as rope_freqs).
struct RopeParams {
    int n_rot = 0;
    float freq_base = 10000.0f;
    float freq_scale = 1.0f;          // 1 / linear scaling factor
    const float* freq_factors = nullptr;  // n_rot/2 divisors, or nullptr
    bool neox = false;
};
void rope(float* x, const int32_t* pos, int64_t rows, int n_heads, int head_dim, const RopeParams& p);

// In-place softmax of n floats (max-subtracted, float exp, double sum).
void softmax(float* x, int64_t n);
// The scalar reference of KernelSet::softmax_row (core/kernels.h):
// softmax(scale * x), then optionally each value rounded to fp16.
void softmax_row_ref(float* x, int64_t n, float scale, bool round_fp16);

// Causal grouped-query attention for one layer.
//   q:   [n, n_head * hd]          queries of the new tokens (positions n_past .. n_past+n-1)
//   k,v: caches [n_past + n, n_kv * hd] holding every position so far (row stride kv_stride)
//   out: [n, n_head * hd]
// Query head h reads kv head h / (n_head / n_kv). Scores are scaled by 1/sqrt(hd).
// round_probs: round the softmax output to fp16 before weighting V, as
// ggml's mul_mat(V, KQ) does with an F16 V cache (it converts KQ to V's type).
void attention(const float* q, const float* k, const float* v, int64_t kv_stride, float* out, int64_t n,
               int64_t n_past, int n_head, int n_kv, int hd, bool round_probs, int threads);

// x[i] = fp16(x[i]) as float: the values an F16 cache / F16 operand holds.
void round_fp16(float* x, int64_t n);

// SwiGLU: g[i] = silu(g[i]) * u[i] over n floats, silu(x) = x / (1 + exp(-x)).
void swiglu(float* g, const float* u, int64_t n);

}  // namespace kq::ops
