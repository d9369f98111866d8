// Device quantizers of the k-quants Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: ports of
// csrc/quants/q{2,3,4,6}_k.cpp, one thread per super-block of 256. Same
// interface as quant_legacy.cuh; sigma2 is unused (the k-quants take the
// mean square of their own super-block).
#pragma once
#include <cstdint>

#include "cuda/search.cuh"

namespace kq::cuda::dev {

// ---- Q2_K: 16 sub-blocks of 16, 4-bit scales and mins ---------------------------------
struct QuantQ2_K {
    using Block = block_q2_K;
    static constexpr bool kRowSigma2 = false;
    static constexpr int kSub = 16, kNumSub = 16;

    __device__ static void requantize(const float* x, const Block& b, uint8_t* L) {
        const float dall = fp16_to_fp32(b.d);
        const float mall = fp16_to_fp32(b.dmin);
        for (int j = 0; j < kNumSub; ++j) {
            const float d = dall * static_cast<float>(b.scales[j] & 0xF);
            if (d == 0.0f) continue;
            const float m = mall * static_cast<float>(b.scales[j] >> 4);
            for (int k = 0; k < kSub; ++k)
                L[kSub * j + k] = static_cast<uint8_t>(clamp_int(nearest_int((x[kSub * j + k] + m) / d), 0, 3));
        }
    }

    __device__ static void quantize(const float* x, Block& b, const float* qw, float) {
        uint8_t L[QK_K];
        float scales[kNumSub], mins[kNumSub];
        if (!qw) {
            float weights[kSub];
            float max_scale = 0.0f, max_min = 0.0f;
            for (int j = 0; j < kNumSub; ++j) {
                for (int k = 0; k < kSub; ++k) weights[k] = fabsf(x[kSub * j + k]);
                scales[j] = make_qkx_quants<false>(kSub, 3, x + kSub * j, weights, L + kSub * j, &mins[j], -0.5f,
                                                   0.1f, 15, true);
                if (scales[j] > max_scale) max_scale = scales[j];
                if (mins[j] > max_min) max_min = mins[j];
            }
            if (max_scale > 0) {
                const float iscale = 15.f / max_scale;
                for (int j = 0; j < kNumSub; ++j) b.scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
                b.d = fp32_to_fp16(max_scale / 15.f);
            } else {
                for (int j = 0; j < kNumSub; ++j) b.scales[j] = 0;
                b.d = fp32_to_fp16(0.f);
            }
            if (max_min > 0) {
                const float iscale = 15.f / max_min;
                for (int j = 0; j < kNumSub; ++j) {
                    const auto lm = static_cast<unsigned>(nearest_int(iscale * mins[j]));
                    b.scales[j] = static_cast<uint8_t>(b.scales[j] | (lm << 4));
                }
                b.dmin = fp32_to_fp16(max_min / 15.f);
            } else {
                b.dmin = fp32_to_fp16(0.f);
            }
        } else {
            float weight[kSub], sw[kNumSub];
            uint8_t Ls[kNumSub], Lm[kNumSub];
            const float sigma2 = sum_squares(x, QK_K) / QK_K;
            for (int j = 0; j < kNumSub; ++j) {
                imatrix_weights(qw + kSub * j, x + kSub * j, kSub, sigma2, weight);
                float s = 0.0f;
                for (int k = 0; k < kSub; ++k) s += weight[k];
                sw[j] = s;
                scales[j] = make_qkx_quants<true>(kSub, 3, x + kSub * j, weight, L + kSub * j, &mins[j], -0.9f, 0.05f,
                                                  36, false);
            }
            const float dm = make_qp_quants(kNumSub, 15, scales, Ls, sw);
            const float mm = make_qp_quants(kNumSub, 15, mins, Lm, sw);
            b.d = fp32_to_fp16(dm);
            b.dmin = fp32_to_fp16(mm);
            for (int j = 0; j < kNumSub; ++j) b.scales[j] = static_cast<uint8_t>(Ls[j] | (Lm[j] << 4));
        }
        requantize(x, b, L);
        pack_2bit_256(L, b.qs);
    }
};

// ---- Q3_K: 16 sub-blocks of 16, signed 6-bit scales, 3-bit levels ---------------------
struct QuantQ3_K {
    using Block = block_q3_K;
    static constexpr bool kRowSigma2 = false;
    static constexpr int kSub = 16, kNumSub = 16;

    __device__ static void put_scale(uint8_t* scales, int j, int l) {
        if (j < 8)
            scales[j] = static_cast<uint8_t>(l & 0xF);
        else
            scales[j - 8] = static_cast<uint8_t>(scales[j - 8] | ((l & 0xF) << 4));
        scales[8 + j % 4] = static_cast<uint8_t>(scales[8 + j % 4] | ((l >> 4) << (2 * (j / 4))));
    }
    __device__ static int get_scale(const uint8_t* scales, int j) {
        const int lo = j < 8 ? (scales[j] & 0xF) : (scales[j - 8] >> 4);
        const int hi = (scales[8 + j % 4] >> (2 * (j / 4))) & 3;
        return (lo | (hi << 4)) - 32;
    }

    __device__ static void finish_block(const float* x, int8_t* L, Block& b) {
        const float dall = fp16_to_fp32(b.d);
        for (int j = 0; j < kNumSub; ++j) {
            const float d = dall * static_cast<float>(static_cast<int8_t>(get_scale(b.scales, j)));
            if (d == 0.0f) continue;
            for (int k = 0; k < kSub; ++k) {
                const int l = clamp_int(nearest_int(x[kSub * j + k] / d), -4, 3);
                L[kSub * j + k] = static_cast<int8_t>(l + 4);
            }
        }
        for (int j = 0; j < QK_K / 8; ++j) b.hmask[j] = 0;
        for (int j = 0; j < QK_K; ++j) {
            if (L[j] > 3) {
                b.hmask[j % 32] = static_cast<uint8_t>(b.hmask[j % 32] | (1u << (j / 32)));
                L[j] = static_cast<int8_t>(L[j] - 4);
            }
        }
        pack_2bit_256(reinterpret_cast<const uint8_t*>(L), b.qs);
    }

    __device__ static void quantize(const float* x, Block& b, const float* qw, float) {
        int8_t L[QK_K];
        float scales[kNumSub];
        for (int j = 0; j < K_SCALE_SIZE; ++j) b.scales[j] = 0;
        if (!qw) {
            float max_scale = 0.0f, amax = 0.0f;
            for (int j = 0; j < kNumSub; ++j) {
                scales[j] = make_q3_quants(kSub, 4, x + kSub * j, L + kSub * j);
                const float a = fabsf(scales[j]);
                if (a > amax) {
                    amax = a;
                    max_scale = scales[j];
                }
            }
            if (max_scale != 0.0f) {
                const float iscale = -32.f / max_scale;
                for (int j = 0; j < kNumSub; ++j) {
                    int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
                    l = static_cast<int8_t>(clamp_int(l, -32, 31) + 32);
                    put_scale(b.scales, j, l);
                }
                b.d = fp32_to_fp16(1 / iscale);
            } else {
                b.d = fp32_to_fp16(0.f);
            }
        } else {
            float weight[kSub], sw[kNumSub];
            int8_t Ls[kNumSub];
            const float sigma2 = 2 * sum_squares(x, QK_K) / QK_K;
            for (int j = 0; j < kNumSub; ++j) {
                imatrix_weights(qw + kSub * j, x + kSub * j, kSub, sigma2, weight);
                float s = 0.0f;
                for (int k = 0; k < kSub; ++k) s += weight[k];
                sw[j] = s;
                scales[j] = make_qx_quants(kSub, 4, x + kSub * j, L + kSub * j, weight);
            }
            const float d_block = make_qx_quants(kNumSub, 32, scales, Ls, sw);
            for (int j = 0; j < kNumSub; ++j) put_scale(b.scales, j, Ls[j]);
            b.d = fp32_to_fp16(d_block);
        }
        finish_block(x, L, b);
    }
};

// ---- Q4_K / Q5_K: 8 sub-blocks of 32, 6-bit scales and mins ---------------------------
struct KHeader {
    half_bits d, dmin;
    uint8_t scales[K_SCALE_SIZE];
};

// kNmax 15 (Q4_K) or 31 (Q5_K); plain-search parameters as in q4_k.cpp.
template <int kNmax>
struct QuantQ45 {
    static constexpr int kSub = 32, kNumSub = 8;
    static constexpr float kRmin = kNmax == 15 ? -1.0f : -0.5f;
    static constexpr float kRdelta = 0.1f;
    static constexpr int kNstep = kNmax == 15 ? 20 : 15;
    static constexpr bool kClampLevels = kNmax == 31;  // imatrix path: Q5_K clamps to 63, Q4_K wraps

    __device__ static void requantize(const float* x, const KHeader& h, uint8_t* L) {
        const float dall = fp16_to_fp32(h.d);
        const float mall = fp16_to_fp32(h.dmin);
        for (int j = 0; j < kNumSub; ++j) {
            uint8_t sc, m;
            unpack_scale_min_k4(j, h.scales, &sc, &m);
            const float d = dall * static_cast<float>(sc);
            if (d == 0.0f) continue;
            const float dm = mall * static_cast<float>(m);
            for (int k = 0; k < kSub; ++k)
                L[kSub * j + k] = static_cast<uint8_t>(clamp_int(nearest_int((x[kSub * j + k] + dm) / d), 0, kNmax));
        }
    }

    __device__ static void search(const float* x, const float* qw, KHeader& h, uint8_t* L) {
        float weights[kSub], scales[kNumSub], mins[kNumSub];
        uint8_t ls[kNumSub], lm[kNumSub];
        if (!qw) {
            float max_scale = 0.0f, max_min = 0.0f;
            for (int j = 0; j < kNumSub; ++j) {
                const float* xs = x + kSub * j;
                const float av_x = sqrtf(sum_squares(xs, kSub) / kSub);
                for (int k = 0; k < kSub; ++k) weights[k] = av_x + fabsf(xs[k]);
                scales[j] = make_qkx_quants<false>(kSub, kNmax, xs, weights, L + kSub * j, &mins[j], kRmin, kRdelta,
                                                   kNstep, false);
                if (scales[j] > max_scale) max_scale = scales[j];
                if (mins[j] > max_min) max_min = mins[j];
            }
            const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
            const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
            for (int j = 0; j < kNumSub; ++j) {
                const uint8_t s = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
                const uint8_t m = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
                ls[j] = s < 63 ? s : 63;
                lm[j] = m < 63 ? m : 63;
            }
            pack_scale_min_k4(ls, lm, h.scales);
            h.d = fp32_to_fp16(max_scale / 63.f);
            h.dmin = fp32_to_fp16(max_min / 63.f);
        } else {
            float sw[kNumSub];
            const float sigma2 = 2 * sum_squares(x, QK_K) / QK_K;
            for (int j = 0; j < kNumSub; ++j) {
                imatrix_weights(qw + kSub * j, x + kSub * j, kSub, sigma2, weights);
                float s = 0.0f;
                for (int k = 0; k < kSub; ++k) s += weights[k];
                sw[j] = s;
                scales[j] = make_qkx_quants<true>(kSub, kNmax, x + kSub * j, weights, L + kSub * j, &mins[j], -0.9f,
                                                  0.05f, 36, false);
            }
            const float d_block = make_qp_quants(kNumSub, 63, scales, ls, sw);
            const float m_block = make_qp_quants(kNumSub, 63, mins, lm, sw);
            if (kClampLevels) {
                for (int j = 0; j < kNumSub; ++j) {
                    ls[j] = ls[j] < 63 ? ls[j] : 63;
                    lm[j] = lm[j] < 63 ? lm[j] : 63;
                }
            }
            pack_scale_min_k4(ls, lm, h.scales);
            h.d = fp32_to_fp16(d_block);
            h.dmin = fp32_to_fp16(m_block);
        }
        requantize(x, h, L);
    }
};

template <class B>
__device__ inline void set_kheader(B& b, const KHeader& h) {
    b.d = h.d;
    b.dmin = h.dmin;
    for (int j = 0; j < K_SCALE_SIZE; ++j) b.scales[j] = h.scales[j];
}

struct QuantQ4_K {
    using Block = block_q4_K;
    static constexpr bool kRowSigma2 = false;
    __device__ static void quantize(const float* x, Block& b, const float* qw, float) {
        uint8_t L[QK_K];
        KHeader h;
        QuantQ45<15>::search(x, qw, h, L);
        set_kheader(b, h);
        for (int c = 0; c < QK_K / 64; ++c)
            for (int l = 0; l < 32; ++l)
                b.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + l + 32] << 4));
    }
};

struct QuantQ5_K {
    using Block = block_q5_K;
    static constexpr bool kRowSigma2 = false;
    __device__ static void quantize(const float* x, Block& b, const float* qw, float) {
        uint8_t L[QK_K];
        KHeader h;
        QuantQ45<31>::search(x, qw, h, L);
        set_kheader(b, h);
        for (int j = 0; j < QK_K / 8; ++j) b.qh[j] = 0;
        for (int c = 0; c < QK_K / 64; ++c) {
            for (int l = 0; l < 32; ++l) {
                int l1 = L[64 * c + l], l2 = L[64 * c + l + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    b.qh[l] = static_cast<uint8_t>(b.qh[l] | (1u << (2 * c)));
                }
                if (l2 > 15) {
                    l2 -= 16;
                    b.qh[l] = static_cast<uint8_t>(b.qh[l] | (2u << (2 * c)));
                }
                b.qs[32 * c + l] = static_cast<uint8_t>(l1 | (l2 << 4));
            }
        }
    }
};

// ---- Q6_K: 16 sub-blocks of 16, int8 scales, 6-bit levels -----------------------------
struct QuantQ6_K {
    using Block = block_q6_K;
    static constexpr bool kRowSigma2 = false;
    static constexpr int kSub = 16, kNumSub = 16;

    __device__ static void quantize(const float* x, Block& b, const float* qw, float) {
        int8_t L[QK_K];
        float scales[kNumSub];
        float max_scale = 0.0f, max_abs_scale = 0.0f;
        for (int j = 0; j < kNumSub; ++j) {
            scales[j] = make_qx_quants(kSub, 32, x + kSub * j, L + kSub * j, qw ? qw + kSub * j : nullptr);
            const float a = fabsf(scales[j]);
            if (a > max_abs_scale) {
                max_abs_scale = a;
                max_scale = scales[j];
            }
        }
        if (max_abs_scale < kGroupMaxEps) {  // all-zero block: every byte 0
            uint8_t* p = reinterpret_cast<uint8_t*>(&b);
            for (size_t i = 0; i < sizeof(Block); ++i) p[i] = 0;
            return;
        }
        const float iscale = -128.f / max_scale;
        b.d = fp32_to_fp16(1 / iscale);
        for (int j = 0; j < kNumSub; ++j) {
            const int s = nearest_int(iscale * scales[j]);
            b.scales[j] = static_cast<int8_t>(s < 127 ? s : 127);
        }
        const float dall = fp16_to_fp32(b.d);
        for (int j = 0; j < kNumSub; ++j) {
            const float d = dall * static_cast<float>(b.scales[j]);
            if (d == 0.0f) continue;
            for (int k = 0; k < kSub; ++k) {
                const int l = clamp_int(nearest_int(x[kSub * j + k] / d), -32, 31);
                L[kSub * j + k] = static_cast<int8_t>(l + 32);
            }
        }
        for (int half = 0; half < 2; ++half) {
            const int8_t* v = L + 128 * half;
            uint8_t* ql = b.ql + 64 * half;
            uint8_t* qh = b.qh + 32 * half;
            for (int l = 0; l < 32; ++l) {
                ql[l] = static_cast<uint8_t>((v[l] & 0xF) | ((v[l + 64] & 0xF) << 4));
                ql[l + 32] = static_cast<uint8_t>((v[l + 32] & 0xF) | ((v[l + 96] & 0xF) << 4));
                qh[l] = static_cast<uint8_t>((v[l] >> 4) | ((v[l + 32] >> 4) << 2) | ((v[l + 64] >> 4) << 4) |
                                             ((v[l + 96] >> 4) << 6));
            }
        }
    }
};

}  // namespace kq::cuda::dev
