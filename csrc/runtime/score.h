// Per-token scores of logits, computed the way llama-perplexity does.
#pragma once
#include <cstdint>

namespace kq::rt {

// nll[i] = -log softmax(logits[i])[next[i]] for `rows` rows of n_vocab.
// As llama.cpp: max in float, sum of expf(l - max) in double, result in double.
void nll_rows(const float* logits, int64_t rows, int64_t n_vocab, const int32_t* next, double* nll, int threads);

// KL divergence of `logits` from `base` (a reference model's logits for the
// same tokens), per row, as llama-perplexity --kl-divergence computes it.
// llama.cpp stores the base model's log-probs as 16-bit integers (range
// [max-16, max] of the logits in 65535 steps, see perplexity.cpp); this
// encoding is reproduced so the statistics match, i.e. terms whose base
// log-prob is below -16 are dropped and base log-probs carry that rounding.
struct KldRow {
    double kld;       // sum_i p_base(i) * (log p_base(i) - log p(i))
    float nll;        // -log p(next)
    float nll_base;   // -log p_base(next)
    float p_diff;     // p(next) - p_base(next)
    bool same_top;    // argmax agrees
};
void kld_rows(const float* logits, const float* base, int64_t rows, int64_t n_vocab, const int32_t* next,
              KldRow* out, int threads);

}  // namespace kq::rt
