#include "runtime/model.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/threadpool.h"
#include "matmul/matmul.h"

namespace kq::rt {
namespace {

// Prompt tokens per forward pass: bounds the scratch memory (the same default
// micro-batch as llama.cpp's n_ubatch).
constexpr int64_t kMaxBatch = 512;
// The KV cache grows in steps of this many positions.
constexpr int64_t kCacheStep = 256;

std::string where(const ModelConfig& cfg) { return " in " + cfg.path; }

const WeightView* find(const TensorMap& t, const std::string& name) {
    auto it = t.find(name);
    return it == t.end() ? nullptr : &it->second;
}

WeightView require(const TensorMap& t, const ModelConfig& cfg, const std::string& name, int64_t ne0, int64_t ne1) {
    const WeightView* w = find(t, name);
    if (!w) throw GGUFError("tensor '" + name + "' is missing" + where(cfg));
    if (w->ne0 != ne0 || w->ne1 != ne1)
        throw GGUFError("tensor '" + name + "'" + where(cfg) + " has shape [" + std::to_string(w->ne0) + ", " +
                        std::to_string(w->ne1) + "], expected [" + std::to_string(ne0) + ", " +
                        std::to_string(ne1) + "]");
    row_dequantizer(*w->type, name);  // fail at load, not mid-run, on an unusable type
    return *w;
}

// A 1-D tensor (norm weight, bias, rope factors) dequantized to floats;
// empty when optional and absent.
std::vector<float> vector_of(const TensorMap& t, const ModelConfig& cfg, const std::string& name, int64_t n,
                             bool optional = false) {
    if (optional && !find(t, name)) return {};
    const WeightView w = require(t, cfg, name, n, 1);
    std::vector<float> out(static_cast<size_t>(n));
    row_dequantizer(*w.type, name)(w.data, out.data(), n);
    return out;
}

void add_bias(float* y, const std::vector<float>& b, int64_t rows) {
    if (b.empty()) return;
    const int64_t m = static_cast<int64_t>(b.size());
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < m; ++j) y[r * m + j] += b[static_cast<size_t>(j)];
}

void add_into(float* x, const float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

LlamaModel::LlamaModel(const ModelConfig& cfg, const TensorMap& t) : cfg_(cfg) {
    const int64_t E = cfg.n_embd, D = cfg.head_dim, H = cfg.n_head, HKV = cfg.n_head_kv;
    if (E <= 0 || D <= 0 || H <= 0 || HKV <= 0 || H % HKV != 0 || cfg.n_layer <= 0 || cfg.n_ff <= 0 ||
        cfg.n_vocab <= 0 || cfg.n_rot <= 0 || cfg.n_rot > D || cfg.n_rot % 2 != 0)
        throw GGUFError("inconsistent hyper-parameters" + where(cfg) + ": n_embd=" + std::to_string(E) +
                        " n_head=" + std::to_string(H) + " n_head_kv=" + std::to_string(HKV) +
                        " head_dim=" + std::to_string(D) + " n_rot=" + std::to_string(cfg.n_rot));
    if (cfg.n_ctx <= 0) throw Error("n_ctx must be positive, got " + std::to_string(cfg.n_ctx));
    tok_embd_ = require(t, cfg, "token_embd.weight", E, cfg.n_vocab);
    output_ = find(t, "output.weight") ? require(t, cfg, "output.weight", E, cfg.n_vocab) : tok_embd_;
    output_norm_ = vector_of(t, cfg, "output_norm.weight", E);
    rope_factors_ = vector_of(t, cfg, "rope_freqs.weight", cfg.n_rot / 2, true);
    layers_.resize(static_cast<size_t>(cfg.n_layer));
    for (int64_t i = 0; i < cfg.n_layer; ++i) {
        Layer& L = layers_[static_cast<size_t>(i)];
        const std::string p = "blk." + std::to_string(i) + ".";
        L.attn_norm = vector_of(t, cfg, p + "attn_norm.weight", E);
        L.ffn_norm = vector_of(t, cfg, p + "ffn_norm.weight", E);
        L.wq = require(t, cfg, p + "attn_q.weight", E, H * D);
        L.wk = require(t, cfg, p + "attn_k.weight", E, HKV * D);
        L.wv = require(t, cfg, p + "attn_v.weight", E, HKV * D);
        L.wo = require(t, cfg, p + "attn_output.weight", H * D, E);
        L.bq = vector_of(t, cfg, p + "attn_q.bias", H * D, true);
        L.bk = vector_of(t, cfg, p + "attn_k.bias", HKV * D, true);
        L.bv = vector_of(t, cfg, p + "attn_v.bias", HKV * D, true);
        L.gate = require(t, cfg, p + "ffn_gate.weight", E, cfg.n_ff);
        L.up = require(t, cfg, p + "ffn_up.weight", E, cfg.n_ff);
        L.down = require(t, cfg, p + "ffn_down.weight", cfg.n_ff, E);
    }
    if (cfg.pack_weights != ModelConfig::Pack::Off) {
        // The output matrix too (its own copy when tied: token_embd's rows
        // stay in ggml's layout for get_rows): unpacked, every decode step
        // repacks it, and it is the largest matrix of small models.
        packed_.reserve(layers_.size() * 7 + 1);
        std::vector<WeightView*> all{&output_};
        for (Layer& L : layers_) all.insert(all.end(), {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down});
        for (WeightView* w : all) {
            if (cfg.pack_weights == ModelConfig::Pack::Auto && prepared_row_bytes(*w->type, w->ne0) > w->row_bytes)
                continue;  // padded rows: see ModelConfig::pack_weights
            packed_.emplace_back(*w, 0);
            *w = packed_.back().view();
        }
    }
}

void LlamaModel::reserve_cache(int64_t positions) {
    if (positions <= cache_cap_) return;
    const int64_t cap = std::min(cfg_.n_ctx, (positions + kCacheStep - 1) / kCacheStep * kCacheStep);
    const size_t row = static_cast<size_t>(cfg_.n_head_kv * cfg_.head_dim);
    for (Layer& L : layers_) {
        L.k_cache.resize(static_cast<size_t>(cap) * row);
        L.v_cache.resize(static_cast<size_t>(cap) * row);
    }
    cache_cap_ = cap;
}

void LlamaModel::decode(const int32_t* ids, int64_t n, int64_t out_begin, float* logits, int threads) {
    if (n <= 0) throw Error("decode: no tokens given");
    if (out_begin < 0 || out_begin > n) throw Error("decode: out_begin out of range");
    if (n_past_ + n > cfg_.n_ctx)
        throw Error("context overflow: " + std::to_string(n_past_) + " cached + " + std::to_string(n) +
                    " new tokens exceed the context size n_ctx=" + std::to_string(cfg_.n_ctx) +
                    " (call reset() or create the model with a larger n_ctx)");
    for (int64_t i = 0; i < n; ++i)
        if (ids[i] < 0 || ids[i] >= cfg_.n_vocab)
            throw Error("token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                        " is outside the vocabulary [0, " + std::to_string(cfg_.n_vocab) + ")");
    reserve_cache(n_past_ + n);
    for (int64_t b = 0; b < n; b += kMaxBatch) {
        const int64_t nb = std::min(kMaxBatch, n - b);
        const int64_t ob = std::clamp<int64_t>(out_begin - b, 0, nb);
        float* out = logits + std::max<int64_t>(0, b - out_begin) * cfg_.n_vocab;
        forward_batch(ids + b, nb, ob, out, threads);
    }
}

void LlamaModel::forward_batch(const int32_t* ids, int64_t n, int64_t out_begin, float* logits, int threads) {
    const int64_t E = cfg_.n_embd, D = cfg_.head_dim, H = cfg_.n_head, HKV = cfg_.n_head_kv;
    const int64_t QW = H * D, KW = HKV * D;
    auto sized = [](std::vector<float>& v, int64_t count) {
        if (static_cast<int64_t>(v.size()) < count) v.resize(static_cast<size_t>(count));
        return v.data();
    };
    float* x = sized(x_, n * E);
    float* xb = sized(xb_, n * E);
    float* q = sized(q_, n * QW);
    float* k = sized(k_, n * KW);
    float* v = sized(v_, n * KW);
    float* att = sized(att_, n * QW);
    float* tmp = sized(tmp_, n * E);
    float* g = sized(ff_g_, n * cfg_.n_ff);
    float* u = sized(ff_u_, n * cfg_.n_ff);
    pos_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) pos_[static_cast<size_t>(i)] = static_cast<int32_t>(n_past_ + i);

    ops::RopeParams rp;
    rp.n_rot = cfg_.n_rot;
    rp.freq_base = cfg_.rope_freq_base;
    rp.freq_scale = cfg_.rope_freq_scale;
    rp.freq_factors = rope_factors_.empty() ? nullptr : rope_factors_.data();
    rp.neox = cfg_.rope_neox;

    // Row-parallel helpers for the cheap element-wise ops.
    auto rows_norm = [&](const float* in, const std::vector<float>& w, float* out, int64_t rows) {
        parallel_for(rows, 8, threads, [&](int64_t r0, int64_t r1) {
            ops::rmsnorm(in + r0 * E, w.data(), out + r0 * E, r1 - r0, E, cfg_.rms_eps);
        });
    };
    auto rows_rope = [&](float* t, int64_t heads) {
        parallel_for(n, 8, threads, [&](int64_t r0, int64_t r1) {
            ops::rope(t + r0 * heads * D, pos_.data() + r0, r1 - r0, static_cast<int>(heads), static_cast<int>(D), rp);
        });
    };

    get_rows(tok_embd_, ids, n, x);
    for (Layer& L : layers_) {
        rows_norm(x, L.attn_norm, xb, n);
        linear(L.wq, xb, n, q, threads);
        linear(L.wk, xb, n, k, threads);
        linear(L.wv, xb, n, v, threads);
        add_bias(q, L.bq, n);
        add_bias(k, L.bk, n);
        add_bias(v, L.bv, n);
        rows_rope(q, H);
        rows_rope(k, HKV);
        if (cfg_.kv_f16) {
            ops::round_fp16(q, n * QW);
            ops::round_fp16(k, n * KW);
            ops::round_fp16(v, n * KW);
        }
        std::memcpy(L.k_cache.data() + n_past_ * KW, k, sizeof(float) * static_cast<size_t>(n * KW));
        std::memcpy(L.v_cache.data() + n_past_ * KW, v, sizeof(float) * static_cast<size_t>(n * KW));
        ops::attention(q, L.k_cache.data(), L.v_cache.data(), KW, att, n, n_past_, static_cast<int>(H),
                       static_cast<int>(HKV), static_cast<int>(D), cfg_.kv_f16, threads);
        linear(L.wo, att, n, tmp, threads);
        add_into(x, tmp, n * E);

        rows_norm(x, L.ffn_norm, xb, n);
        linear(L.gate, xb, n, g, threads);
        linear(L.up, xb, n, u, threads);
        parallel_for(n, 8, threads, [&](int64_t r0, int64_t r1) {
            ops::swiglu(g + r0 * cfg_.n_ff, u + r0 * cfg_.n_ff, (r1 - r0) * cfg_.n_ff);
        });
        linear(L.down, g, n, tmp, threads);
        add_into(x, tmp, n * E);
    }
    n_past_ += n;
    const int64_t n_out = n - out_begin;
    if (n_out <= 0) return;
    rows_norm(x + out_begin * E, output_norm_, xb, n_out);
    linear(output_, xb, n_out, logits, threads);
}

}  // namespace kq::rt
