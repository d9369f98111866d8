#include "ops/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/fp16.h"
#include "core/kernels.h"
#include "core/traits.h"
#include "matmul/matmul.h"
#include "core/threadpool.h"

namespace kq::ops {

// Eight independent partial sums: the compiler maps them onto vector lanes
// without needing to reassociate one serial sum.
constexpr int kLanes = 8;

inline float fp16_round(float x) { return fp16_to_fp32(fp32_to_fp16(x)); }

float dot_f32(const float* a, const float* b, int64_t n) {
    float acc[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void rmsnorm(const float* x, const float* w, float* y, int64_t rows, int64_t n, float eps) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * n;
        float* yr = y + r * n;
        double acc[kLanes] = {};
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes)
            for (int j = 0; j < kLanes; ++j) acc[j] += static_cast<double>(xr[i + j]) * xr[i + j];
        double ss = 0;
        for (int j = 0; j < kLanes; ++j) ss += acc[j];
        for (; i < n; ++i) ss += static_cast<double>(xr[i]) * xr[i];
        const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
        for (int64_t k = 0; k < n; ++k) yr[k] = (xr[k] * scale) * w[k];
    }
}

void rope(float* x, const int32_t* pos, int64_t rows, int n_heads, int head_dim, const RopeParams& p) {
    const int half = p.n_rot / 2;
    // theta_i = pos * base^(-2i/n_rot): built by repeated multiplication with
    // base^(-2/n_rot), the same recurrence ggml uses for its rope cache.
    const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
    std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t r = 0; r < rows; ++r) {
        float theta = static_cast<float>(pos[r]);
        for (int i = 0; i < half; ++i) {
            const float ff = p.freq_factors ? p.freq_factors[i] : 1.0f;
            const float t = p.freq_scale * (theta / ff);
            cs[static_cast<size_t>(i)] = std::cos(t);
            sn[static_cast<size_t>(i)] = std::sin(t);
            theta *= theta_scale;
        }
        // neox pairs elements half apart; normal pairs neighbours.
        const int stride = p.neox ? 1 : 2;
        const int offset = p.neox ? half : 1;
        for (int h = 0; h < n_heads; ++h) {
            float* v = x + r * static_cast<int64_t>(n_heads) * head_dim + static_cast<int64_t>(h) * head_dim;
            for (int i = 0; i < half; ++i) {
                float* a = v + i * stride;
                float* b = a + offset;
                const float x0 = *a, x1 = *b;
                *a = x0 * cs[static_cast<size_t>(i)] - x1 * sn[static_cast<size_t>(i)];
                *b = x0 * sn[static_cast<size_t>(i)] + x1 * cs[static_cast<size_t>(i)];
            }
        }
    }
}

void softmax(float* x, int64_t n) {
    float mx = x[0];
    for (int64_t i = 1; i < n; ++i) mx = std::max(mx, x[i]);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
        x[i] = std::exp(x[i] - mx);
        sum += x[i];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void softmax_row_ref(float* x, int64_t n, float scale, bool round_fp16) {
    for (int64_t j = 0; j < n; ++j) x[j] *= scale;
    softmax(x, n);
    if (round_fp16)
        for (int64_t j = 0; j < n; ++j) x[j] = fp16_round(x[j]);
}

namespace {

// Below this many query rows the per-(row, head) loop is used: for decoding
// one token the matmul hand-offs would cost more than the arithmetic.
constexpr int64_t kMatmulAttnMinRows = 16;
// Multiply-adds (per Q.K or P.V pass) below which attention runs serially:
// ~0.1 ms of work, about what waking a parked worker can cost on a busy machine.
constexpr int64_t kSerialAttnWork = 1 << 18;

void attention_rows(const float* q, const float* k, const float* v, int64_t kv_stride, float* out, int64_t n,
                    int64_t n_past, int n_head, int n_kv, int hd, bool round_probs, int threads) {
    const int group = n_head / n_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const softmax_row_fn smax = kernels().softmax_row;
    const int64_t q_stride = static_cast<int64_t>(n_head) * hd;
    // Too little work to pay for waking the pool (decoding with a short
    // cache): run on the calling thread.
    const int64_t work = n * n_head * (n_past + n) * hd;
    if (work < kSerialAttnWork) threads = 1;
    // One task = one (query row, head); the longest rows carry the most work,
    // so small grains keep the threads balanced.
    parallel_for(n * n_head, 4, threads, [&](int64_t t0, int64_t t1) {
        std::vector<float> sc(static_cast<size_t>(n_past + n));
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t i = t / n_head;
            const int h = static_cast<int>(t % n_head);
            const int kvh = h / group;
            const float* qi = q + i * q_stride + static_cast<int64_t>(h) * hd;
            const int64_t n_keys = n_past + i + 1;  // causal: keys 0 .. own position
            for (int64_t j = 0; j < n_keys; ++j)
                sc[static_cast<size_t>(j)] = dot_f32(qi, k + j * kv_stride + static_cast<int64_t>(kvh) * hd, hd);
            smax(sc.data(), n_keys, scale, round_probs);
            float* o = out + i * q_stride + static_cast<int64_t>(h) * hd;
            std::fill(o, o + hd, 0.0f);
            for (int64_t j = 0; j < n_keys; ++j)
                axpy_f32(sc[static_cast<size_t>(j)], v + j * kv_stride + static_cast<int64_t>(kvh) * hd, o, hd);
        }
    });
}

// Batched prompt: per head, S = Q K^T and O = P V as two float matmuls
// (kq::matmul, the ISA gemm kernels), like ggml's non-flash attention:
// the full n x n_keys score rectangle is computed and the causal part masked.
void attention_matmul(const float* q, const float* k, const float* v, int64_t kv_stride, float* out, int64_t n,
                      int64_t n_past, int n_head, int n_kv, int hd, bool round_probs, int threads) {
    const TypeTraits& f32 = type_traits(TypeId::F32);
    const softmax_row_fn smax = kernels().softmax_row;
    const int group = n_head / n_kv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const int64_t q_stride = static_cast<int64_t>(n_head) * hd;
    const int64_t n_keys = n_past + n;
    std::vector<float> kh(static_cast<size_t>(n_keys * hd)), vt(static_cast<size_t>(hd * n_keys));
    std::vector<float> qh(static_cast<size_t>(n * hd)), oh(static_cast<size_t>(n * hd));
    std::vector<float> s(static_cast<size_t>(n * n_keys));
    for (int kvh = 0; kvh < n_kv; ++kvh) {
        // K rows of this kv head, contiguous; V transposed ([hd, n_keys]) so
        // that O = P @ (V^T)^T is again "x @ W^T".
        for (int64_t j = 0; j < n_keys; ++j) {
            const float* kr = k + j * kv_stride + static_cast<int64_t>(kvh) * hd;
            const float* vr = v + j * kv_stride + static_cast<int64_t>(kvh) * hd;
            std::copy(kr, kr + hd, kh.data() + j * hd);
            for (int d = 0; d < hd; ++d) vt[static_cast<size_t>(d * n_keys + j)] = vr[d];
        }
        for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
            for (int64_t i = 0; i < n; ++i) {
                const float* src = q + i * q_stride + static_cast<int64_t>(h) * hd;
                std::copy(src, src + hd, qh.data() + i * hd);
            }
            matmul(f32, kh.data(), n_keys, hd, qh.data(), n, s.data(), threads);
            parallel_for(n, 16, threads, [&](int64_t r0, int64_t r1) {
                for (int64_t i = r0; i < r1; ++i) {
                    float* row = s.data() + i * n_keys;
                    const int64_t valid = n_past + i + 1;  // causal mask
                    smax(row, valid, scale, round_probs);
                    std::fill(row + valid, row + n_keys, 0.0f);
                }
            });
            matmul(f32, vt.data(), hd, n_keys, s.data(), n, oh.data(), threads);
            for (int64_t i = 0; i < n; ++i)
                std::copy(oh.data() + i * hd, oh.data() + (i + 1) * hd, out + i * q_stride + static_cast<int64_t>(h) * hd);
        }
    }
}

}  // namespace

void attention(const float* q, const float* k, const float* v, int64_t kv_stride, float* out, int64_t n,
               int64_t n_past, int n_head, int n_kv, int hd, bool round_probs, int threads) {
    if (n < kMatmulAttnMinRows)
        attention_rows(q, k, v, kv_stride, out, n, n_past, n_head, n_kv, hd, round_probs, threads);
    else
        attention_matmul(q, k, v, kv_stride, out, n, n_past, n_head, n_kv, hd, round_probs, threads);
}

void round_fp16(float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] = fp16_round(x[i]);
}

void swiglu(float* g, const float* u, int64_t n) {
    for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

}  // namespace kq::ops
