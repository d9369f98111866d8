#include "matmul/ref_dot.h"

#include <cstring>

#include "core/blocks.h"
#include "core/fp16.h"

namespace kq::ref {
namespace {

// ---- float types: products summed in double, as ggml's ggml_float sums ----

float dot_f32(int64_t k, const void* w, const void* a) {
    const float* x = static_cast<const float*>(w);
    const float* y = static_cast<const float*>(a);
    double s = 0.0;
    for (int64_t i = 0; i < k; ++i) s += static_cast<double>(x[i]) * static_cast<double>(y[i]);
    return static_cast<float>(s);
}

template <float (*CVT)(uint16_t)>
float dot_half(int64_t k, const void* w, const void* a) {
    const uint16_t* x = static_cast<const uint16_t*>(w);
    const uint16_t* y = static_cast<const uint16_t*>(a);
    double s = 0.0;
    for (int64_t i = 0; i < k; ++i) s += static_cast<double>(CVT(x[i])) * static_cast<double>(CVT(y[i]));
    return static_cast<float>(s);
}

// ---- legacy formats (blocks of 32) against Q8_0 / Q8_1 -------------------
// Each block's integer sum is exact; the float combination per block is
// sumi * (dw * da) (+ mw * sa for the formats with a minimum).

// Weight values of one block as integers, in element order 0..31.
void unpack_q4_0(const block_q4_0& b, int v[32]) {
    for (int j = 0; j < 16; ++j) {
        v[j] = (b.qs[j] & 0x0F) - 8;
        v[j + 16] = (b.qs[j] >> 4) - 8;
    }
}
void unpack_q4_1(const block_q4_1& b, int v[32]) {
    for (int j = 0; j < 16; ++j) {
        v[j] = b.qs[j] & 0x0F;
        v[j + 16] = b.qs[j] >> 4;
    }
}
// Bit 4 of element j is bit j of the little-endian qh word.
uint32_t qh_word(const uint8_t qh[4]) {
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
           static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
}
void unpack_q5_0(const block_q5_0& b, int v[32]) {
    const uint32_t qh = qh_word(b.qh);
    for (int j = 0; j < 16; ++j) {
        v[j] = ((b.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4)) - 16;
        v[j + 16] = ((b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4)) - 16;
    }
}
void unpack_q5_1(const block_q5_1& b, int v[32]) {
    const uint32_t qh = qh_word(b.qh);
    for (int j = 0; j < 16; ++j) {
        v[j] = (b.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
        v[j + 16] = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    }
}

int dot32(const int v[32], const int8_t q[32]) {
    int s = 0;
    for (int j = 0; j < 32; ++j) s += v[j] * q[j];
    return s;
}

template <class B, void (*UNPACK)(const B&, int*)>
float dot_sym(int64_t k, const void* w, const void* a) {  // x = d * q
    const B* x = static_cast<const B*>(w);
    const block_q8_0* y = static_cast<const block_q8_0*>(a);
    float s = 0.0f;
    int v[32];
    for (int64_t i = 0; i < k / 32; ++i) {
        UNPACK(x[i], v);
        s += static_cast<float>(dot32(v, y[i].qs)) * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d));
    }
    return s;
}

template <class B, void (*UNPACK)(const B&, int*)>
float dot_min(int64_t k, const void* w, const void* a) {  // x = d * q + m
    const B* x = static_cast<const B*>(w);
    const block_q8_1* y = static_cast<const block_q8_1*>(a);
    float s = 0.0f;
    int v[32];
    for (int64_t i = 0; i < k / 32; ++i) {
        UNPACK(x[i], v);
        s += static_cast<float>(dot32(v, y[i].qs)) * (fp16_to_fp32(x[i].d) * fp16_to_fp32(y[i].d)) +
             fp16_to_fp32(x[i].m) * fp16_to_fp32(y[i].s);
    }
    return s;
}

void unpack_q8_0(const block_q8_0& b, int v[32]) {
    for (int j = 0; j < 32; ++j) v[j] = b.qs[j];
}

// ---- k-quants (super-blocks of 256) against Q8_K ---------------------------
// Every format is decoded to: q[256] integer values, one integer scale per
// group of 16 elements (sc[16]) and, for the formats with a minimum, one
// integer minimum per group (mn[16]). Then
//   dot = da * (d * sum_g sc[g] * sum(q*a over g) - dmin * sum_g mn[g] * bsums[g]).
struct KBlock {
    int q[QK_K];
    int sc[16];
    int mn[16];
    float d, dmin;
};

// Element e of a 2-bit plane: 128-element chunk e/128 uses 32 bytes; byte
// e%32 holds the four 32-element runs of the chunk in bit pairs 0,2,4,6.
int q2_at(const uint8_t* qs, int e) { return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

void decode_q2_K(const void* p, KBlock& o) {
    const block_q2_K& b = *static_cast<const block_q2_K*>(p);
    for (int e = 0; e < QK_K; ++e) o.q[e] = q2_at(b.qs, e);
    for (int g = 0; g < 16; ++g) {
        o.sc[g] = b.scales[g] & 0x0F;
        o.mn[g] = b.scales[g] >> 4;
    }
    o.d = fp16_to_fp32(b.d);
    o.dmin = fp16_to_fp32(b.dmin);
}

void decode_q3_K(const void* p, KBlock& o) {
    const block_q3_K& b = *static_cast<const block_q3_K*>(p);
    // hmask[e%32] bit e/32 is the high bit; a clear bit means q - 4.
    for (int e = 0; e < QK_K; ++e) o.q[e] = q2_at(b.qs, e) - (((b.hmask[e % 32] >> (e / 32)) & 1) ? 0 : 4);
    // 16 x 6-bit scales, stored biased by 32: low nibbles in bytes 0..7
    // (groups 0..7 low halves, 8..15 high halves), top two bits in bytes 8..11
    // (group g in byte 8 + g%4 at bit 2*(g/4)).
    for (int g = 0; g < 16; ++g) {
        const int lo = g < 8 ? (b.scales[g] & 0x0F) : (b.scales[g - 8] >> 4);
        const int hi = (b.scales[8 + (g & 3)] >> (2 * (g >> 2))) & 3;
        o.sc[g] = (lo | hi << 4) - 32;
        o.mn[g] = 0;
    }
    o.d = fp16_to_fp32(b.d);
    o.dmin = 0.0f;
}

// Q4_K / Q5_K: 8 x (6-bit scale, 6-bit min) in 12 bytes; sub-block j < 4 in
// the low 6 bits of bytes j and j+4, j >= 4 split into a nibble of byte j+4
// and the top two bits of bytes j-4 (scale) and j (min).
void scale_min_k4(const uint8_t* s, int j, int& sc, int& mn) {
    if (j < 4) {
        sc = s[j] & 63;
        mn = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Sub-block j (32 elements) of Q4_K/Q5_K: bytes 32*(j/2).. low nibbles for
// even j, high nibbles for odd j.
void decode_q4_K(const void* p, KBlock& o) {
    const block_q4_K& b = *static_cast<const block_q4_K*>(p);
    for (int e = 0; e < QK_K; ++e) o.q[e] = (b.qs[(e / 64) * 32 + e % 32] >> (4 * ((e / 32) & 1))) & 0x0F;
    for (int j = 0; j < 8; ++j) {
        int sc, mn;
        scale_min_k4(b.scales, j, sc, mn);
        o.sc[2 * j] = o.sc[2 * j + 1] = sc;
        o.mn[2 * j] = o.mn[2 * j + 1] = mn;
    }
    o.d = fp16_to_fp32(b.d);
    o.dmin = fp16_to_fp32(b.dmin);
}

void decode_q5_K(const void* p, KBlock& o) {
    const block_q5_K& b = *static_cast<const block_q5_K*>(p);
    // qh[e%32] bit e/32 is bit 4 of element e.
    for (int e = 0; e < QK_K; ++e)
        o.q[e] = ((b.qs[(e / 64) * 32 + e % 32] >> (4 * ((e / 32) & 1))) & 0x0F) |
                 (((b.qh[e % 32] >> (e / 32)) & 1) << 4);
    for (int j = 0; j < 8; ++j) {
        int sc, mn;
        scale_min_k4(b.scales, j, sc, mn);
        o.sc[2 * j] = o.sc[2 * j + 1] = sc;
        o.mn[2 * j] = o.mn[2 * j + 1] = mn;
    }
    o.d = fp16_to_fp32(b.d);
    o.dmin = fp16_to_fp32(b.dmin);
}

// Q6_K: per 128-element chunk, 64 ql bytes and 32 qh bytes. Element
// 32*r + l (r = 0..3, l = 0..31) takes the low nibble of ql[l + 32*(r&1)]
// (r < 2) or its high nibble (r >= 2), and bits 2r..2r+1 of qh[l].
void decode_q6_K(const void* p, KBlock& o) {
    const block_q6_K& b = *static_cast<const block_q6_K*>(p);
    for (int e = 0; e < QK_K; ++e) {
        const int c = e / 128, r = (e % 128) / 32, l = e % 32;
        const int lo = (b.ql[64 * c + l + 32 * (r & 1)] >> (4 * (r >> 1))) & 0x0F;
        const int hi = (b.qh[32 * c + l] >> (2 * r)) & 3;
        o.q[e] = (lo | hi << 4) - 32;
    }
    for (int g = 0; g < 16; ++g) {
        o.sc[g] = b.scales[g];
        o.mn[g] = 0;
    }
    o.d = fp16_to_fp32(b.d);
    o.dmin = 0.0f;
}

template <class B, void (*DECODE)(const void*, KBlock&)>
float dot_k(int64_t k, const void* w, const void* a) {
    const B* x = static_cast<const B*>(w);
    const block_q8_K* y = static_cast<const block_q8_K*>(a);
    float s = 0.0f;
    KBlock blk;
    for (int64_t i = 0; i < k / QK_K; ++i) {
        DECODE(&x[i], blk);
        int isum = 0, msum = 0;
        for (int g = 0; g < 16; ++g) {
            int gs = 0;
            for (int l = 0; l < 16; ++l) gs += blk.q[16 * g + l] * y[i].qs[16 * g + l];
            isum += blk.sc[g] * gs;
            msum += blk.mn[g] * y[i].bsums[g];
        }
        s += y[i].d * (blk.d * static_cast<float>(isum) - blk.dmin * static_cast<float>(msum));
    }
    return s;
}

// ---- generic gemm: the dot product per output ------------------------------
template <vec_dot_fn DOT>
void gemm_by_dot(int64_t k, const void* w, size_t w_stride, int64_t nr, const void* a, size_t a_stride, int64_t nc,
                 float* y, int64_t ldy) {
    const uint8_t* wb = static_cast<const uint8_t*>(w);
    const uint8_t* ab = static_cast<const uint8_t*>(a);
    for (int64_t c = 0; c < nc; ++c)
        for (int64_t r = 0; r < nr; ++r) y[c * ldy + r] = DOT(k, wb + r * w_stride, ab + c * a_stride);
}

#define KQ_REF_MM(ID, FN) {TypeId::ID, FN, gemm_by_dot<FN>}

const MatmulKernels kRefMatmul[] = {
    KQ_REF_MM(F32, dot_f32),
    KQ_REF_MM(F16, (dot_half<fp16_to_fp32>)),
    KQ_REF_MM(BF16, (dot_half<bf16_to_fp32>)),
    KQ_REF_MM(Q4_0, (dot_sym<block_q4_0, unpack_q4_0>)),
    KQ_REF_MM(Q4_1, (dot_min<block_q4_1, unpack_q4_1>)),
    KQ_REF_MM(Q5_0, (dot_sym<block_q5_0, unpack_q5_0>)),
    KQ_REF_MM(Q5_1, (dot_min<block_q5_1, unpack_q5_1>)),
    KQ_REF_MM(Q8_0, (dot_sym<block_q8_0, unpack_q8_0>)),
    KQ_REF_MM(Q2_K, (dot_k<block_q2_K, decode_q2_K>)),
    KQ_REF_MM(Q3_K, (dot_k<block_q3_K, decode_q3_K>)),
    KQ_REF_MM(Q4_K, (dot_k<block_q4_K, decode_q4_K>)),
    KQ_REF_MM(Q5_K, (dot_k<block_q5_K, decode_q5_K>)),
    KQ_REF_MM(Q6_K, (dot_k<block_q6_K, decode_q6_K>)),
};
#undef KQ_REF_MM

}  // namespace

const MatmulKernels* matmul_kernels(TypeId id) {
    for (const MatmulKernels& k : kRefMatmul)
        if (k.id == id) return &k;
    return nullptr;
}

}  // namespace kq::ref
