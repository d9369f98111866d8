// Block structs of every ggml quantized format, byte for byte.
//
// All multi-byte fields are little-endian, as ggml writes them. Each struct is
// a plain aggregate with a static_assert on its size, so a layout slip fails
// the build rather than corrupting files. Scales stored as fp16 are kept as
// raw uint16_t bits (see fp16.h): conversion is explicit and bit-exact.
#pragma once
#include <cstdint>

namespace kq {

using half_bits = uint16_t;  // IEEE binary16, raw bits

// Elements per block of the legacy formats.
constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32, QK8_1 = 32;
// Elements per super-block of the k-quants.
constexpr int QK_K = 256;
// Bytes holding the packed 6-bit scales and mins of Q3_K/Q4_K/Q5_K.
constexpr int K_SCALE_SIZE = 12;

// Q4_0: x = d * (q - 8), q in [0,15].
// qs[j] low nibble = q[j], high nibble = q[j + 16]   (j = 0..15)
struct block_q4_0 {
    half_bits d;
    uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 2 + QK4_0 / 2, "block_q4_0 size");

// Q4_1: x = d * q + m, q in [0,15]; nibble order as Q4_0.
struct block_q4_1 {
    half_bits d;
    half_bits m;
    uint8_t qs[QK4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 4 + QK4_1 / 2, "block_q4_1 size");

// Q5_0: x = d * (q - 16), q in [0,31]. Low 4 bits as Q4_0; bit 4 of q[j] is
// bit j of the little-endian uint32 qh.
struct block_q5_0 {
    half_bits d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 2 + 4 + QK5_0 / 2, "block_q5_0 size");

// Q5_1: x = d * q + m, q in [0,31]; bit packing as Q5_0.
struct block_q5_1 {
    half_bits d;
    half_bits m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 4 + 4 + QK5_1 / 2, "block_q5_1 size");

// Q8_0: x = d * q, q in [-127,127].
struct block_q8_0 {
    half_bits d;
    int8_t qs[QK8_0];
};
static_assert(sizeof(block_q8_0) == 2 + QK8_0, "block_q8_0 size");

// Q8_1: x = d * q; s = d * sum(q) (fp16), used as activations for Q4_1/Q5_1.
struct block_q8_1 {
    half_bits d;
    half_bits s;
    int8_t qs[QK8_1];
};
static_assert(sizeof(block_q8_1) == 4 + QK8_1, "block_q8_1 size");

// Q2_K: 16 sub-blocks of 16. x = d*sc*q - dmin*m, q in [0,3].
// scales[i]: low nibble = sc (4 bit), high nibble = m (4 bit).
// qs: per 128 elements, 32 bytes; byte l holds q[l], q[l+32], q[l+64], q[l+96]
// in bit pairs 0-1, 2-3, 4-5, 6-7.
struct block_q2_K {
    uint8_t scales[QK_K / 16];
    uint8_t qs[QK_K / 4];
    half_bits d;
    half_bits dmin;
};
static_assert(sizeof(block_q2_K) == 2 * 2 + QK_K / 16 + QK_K / 4, "block_q2_K size");

// Q3_K: 16 sub-blocks of 16. x = d * (sc - 32) * (q - 4*!hbit), q low 2 bits.
// hmask[l] bit j = high bit of element l + 32*j. qs as Q2_K.
// scales: 16 x 6-bit; low 4 bits in bytes 0..7 (nibbles), high 2 bits in 8..11.
struct block_q3_K {
    uint8_t hmask[QK_K / 8];
    uint8_t qs[QK_K / 4];
    uint8_t scales[K_SCALE_SIZE];
    half_bits d;
};
static_assert(sizeof(block_q3_K) == 2 + QK_K / 4 + QK_K / 8 + K_SCALE_SIZE, "block_q3_K size");

// Q4_K: 8 sub-blocks of 32. x = d*sc*q - dmin*m, q in [0,15].
// scales: 8 x 6-bit sc and 8 x 6-bit m (see get_scale_min_k4 in kquants).
// qs: per 64 elements, 32 bytes; low nibble = first 32, high nibble = next 32.
struct block_q4_K {
    half_bits d;
    half_bits dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 2 * 2 + K_SCALE_SIZE + QK_K / 2, "block_q4_K size");

// Q5_K: as Q4_K with a 5th bit; qh[l] bit j = bit 4 of element l + 32*j.
struct block_q5_K {
    half_bits d;
    half_bits dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 2 * 2 + K_SCALE_SIZE + QK_K / 2 + QK_K / 8, "block_q5_K size");

// Q6_K: 16 sub-blocks of 16. x = d * sc * (q - 32), q in [0,63], sc int8.
// ql: low 4 bits, qh: high 2 bits (per 128 elements: 64 ql bytes, 32 qh bytes).
struct block_q6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    half_bits d;
};
static_assert(sizeof(block_q6_K) == 2 + QK_K / 16 + 3 * QK_K / 4, "block_q6_K size");

// Q8_K: activations for the k-quant dot products. x = d * q, d is fp32.
// bsums[i] = sum of q over the i-th group of 16.
struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};
static_assert(sizeof(block_q8_K) == 4 + QK_K + QK_K / 16 * 2, "block_q8_K size");

}  // namespace kq
