// A Llama-family decoder (llama, qwen2) on the CPU.
//
// Per layer:  h = x + Wo * attn(rope(Wq*n1(x) [+bq]), rope(Wk*n1(x) [+bk]), Wv*n1(x) [+bv])
//             x' = h + Wdown * (silu(Wgate*n2(h)) * (Wup*n2(h)))
// with n1, n2 RMSNorms; then logits = Wout * rmsnorm(x) (Wout = token_embd
// when output.weight is absent: tied embeddings).
//
// Weights are views of the GGUF file's tensor data (see linear.h). The KV
// cache holds float32 K (after RoPE) and V rows for every position so far.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "runtime/linear.h"

namespace kq::rt {

struct ModelConfig {
    std::string arch;
    std::string path;          // file, for error messages
    int64_t n_vocab = 0;
    int64_t n_embd = 0;
    int64_t n_layer = 0;
    int64_t n_head = 0;
    int64_t n_head_kv = 0;
    int64_t head_dim = 0;      // per head, for Q, K and V
    int64_t n_ff = 0;
    int64_t n_ctx_train = 0;
    int64_t n_ctx = 0;         // KV cache capacity of this instance
    float rms_eps = 1e-5f;
    int n_rot = 0;             // rotated dims per head (<= head_dim)
    float rope_freq_base = 10000.0f;
    float rope_freq_scale = 1.0f;
    bool rope_neox = false;
    // F16 KV-cache numerics (llama.cpp's default cache type): K and V are
    // rounded to fp16 as they enter the cache, Q is rounded to fp16 for the
    // K.Q dot and the softmax weights to fp16 for the V product - exactly
    // the operands ggml's mul_mat sees with an F16 cache.
    bool kv_f16 = true;
    // Repack weights once into the kernels' layout, so that matmuls skip the
    // per-call packing: Off, On (every matrix), or Auto (the matrices whose
    // rows pack without padding, i.e. k a multiple of 16 lane blocks: the
    // packed copy is no larger than the original; a padded row, e.g. k=576
    // in 32-element blocks, packs to 32/18 of its bytes and its mat-vec,
    // memory-bound, gets slower by as much).
    enum class Pack { Off, On, Auto };
    Pack pack_weights = Pack::Auto;
};

using TensorMap = std::map<std::string, WeightView>;

class LlamaModel {
public:
    // Validates that every tensor the config needs is present with the right
    // shape; throws GGUFError naming the tensor and the file otherwise.
    LlamaModel(const ModelConfig& cfg, const TensorMap& tensors);

    // Runs ids[0..n) at positions n_past() .. n_past()+n-1, appending to the
    // KV cache. Writes logits of rows out_begin .. n-1 to `logits`
    // ([n - out_begin, n_vocab]); out_begin == n computes none.
    void decode(const int32_t* ids, int64_t n, int64_t out_begin, float* logits, int threads);

    void reset() { n_past_ = 0; }
    int64_t n_past() const { return n_past_; }
    const ModelConfig& config() const { return cfg_; }

private:
    struct Layer {
        std::vector<float> attn_norm, ffn_norm, bq, bk, bv;  // biases empty when absent
        WeightView wq, wk, wv, wo, gate, up, down;
        std::vector<float> k_cache, v_cache;                 // [positions, n_head_kv * head_dim]
    };

    void forward_batch(const int32_t* ids, int64_t n, int64_t out_begin, float* logits, int threads);
    void reserve_cache(int64_t positions);

    ModelConfig cfg_;
    WeightView tok_embd_, output_;
    std::vector<float> output_norm_, rope_factors_;
    std::vector<Layer> layers_;
    std::vector<PackedWeight> packed_;   // owners of repacked layer weights
    int64_t n_past_ = 0;
    int64_t cache_cap_ = 0;
    // Scratch reused between calls.
    std::vector<float> x_, xb_, q_, k_, v_, att_, tmp_, ff_g_, ff_u_;
    std::vector<int32_t> pos_;
};

}  // namespace kq::rt
