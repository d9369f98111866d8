// Interleaved ("packed") layouts of weights and activations for the SIMD
// matmul kernels, and the shared code that builds them.
//
// ggml stores each block's values contiguously, so a SIMD dot product needs
// one horizontal sum and one float scale per block per output. The packed
// layouts put 16 blocks side by side instead: 32-bit lane j of every 64-byte
// vector belongs to block j of a group of 16. An integer dot product
// instruction (vpdpbusd, sdot, pmaddubsw) then accumulates every block of the
// group in its own lane with no horizontal step, and the scales of a group
// are a 16-lane float vector: per group and output, a kernel does LB/4 dot
// instructions and 3-4 float operations.
//
// Terms. LB (lane block): elements of one block in a lane -- 32 for the
// legacy formats and Q4_K/Q5_K (their 32-element sub-blocks), 16 for
// Q2_K/Q3_K/Q6_K. A group is 16 lane blocks; a row of k elements has
// ceil(k / LB / 16) groups, the last one zero-padded (zero values and zero
// scales contribute nothing). "Value vector t" (t = 0 .. LB/4-1) holds
// elements 4t .. 4t+3 of each lane's block, one byte each, in element order:
// this is the order of activation vector t, so value vector t . activation
// vector t summed over t is each block's integer dot product.
//
// ---- weights (one layout per type; bytes per group) ------------------------
// Vectors are 64 bytes; "lane j byte i" is byte 4j + i of a vector.
//  N  nibble vectors (legacy, Q4_K, Q5_K: 4 of them): vector v lane j byte i
//     low nibble = element 4v+i, high nibble = element 16+4v+i of block j
//     (for the legacy formats this is exactly ggml's qs, dword v of block j).
//     Value vector t = N[t] & 15 (t < 4), N[t-4] >> 4 (t >= 4).
//  H5 bit 4 of the Q5 values: lane j byte i bit v = bit 4 of element 4v+i,
//     bit 4+v = bit 4 of element 16+4v+i (v = 0..3).
//  Q4_0  N, D[16] fp16                       288  (= 16 x 18, ggml's size)
//  Q4_1  N, D[16], M[16] fp16                320
//  Q5_0  N, H5, D[16]                        352
//  Q5_1  N, H5, D[16], M[16]                 384
//  Q8_0  V: 8 value vectors (int8), D[16]    544
//  Q4_K  N, SC[16] u8, MN[16] u8, D[2] fp16, DMIN[2] fp16              296
//        (lane j < 8 is a sub-block of the group's first super-block, lane
//        j >= 8 of the second: D[j / 8]; value = D*SC*q - DMIN*MN)
//  Q5_K  N, H5, SC, MN, D[2], DMIN[2]                                    360
//  Q6_K  (LB 16, one super-block) N6: 2 vectors, vector v lane j byte i low
//        nibble = low 4 bits of element 4v+i, high nibble = of element
//        8+4v+i; H6: lane j byte i bits 2w..2w+1 = top 2 bits of element
//        4w+i; SC[16] int8; D fp16. value = D*SC*(q - 32)                 210
//  Q3_K  (LB 16) L: lane j byte i bits 2w..2w+1 = low 2 bits of element 4w+i;
//        H3 (32 bytes): byte 4j+i (j < 8) bit w = high bit of element 4w+i
//        of block j, bit 4+w = of block j+8; SC[16] int8 (6-bit scale - 32);
//        D fp16. value = D*SC*(u - 4), u = low + 4*high                   114
//  Q2_K  (LB 16) L, SC[16] u8 (ggml's: low nibble scale, high nibble min),
//        D, DMIN fp16. value = D*(SC&15)*q - DMIN*(SC>>4)                  84
// Rows are padded to whole groups and start on a 64-byte boundary of the
// packed buffer when row_bytes is a multiple of 64 (kernels use unaligned
// loads; alignment only helps).
//
// ---- activations (per column, per group of 16 lane blocks) -----------------
//  Q   LB/4 value vectors of int8 (the vec_dot_type's quantized values)
//  DA  16 f32: the scale of each lane block (Q8_0/Q8_1 d; Q8_K d, repeated)
//  SA  16 f32: DA * sum of the block's values (Q8_1's s where available),
//      for the formats with a minimum: min * SA is the minimum's term
//  SUM 16 int32: sum of the block's values, for the formats stored with an
//      offset (q - 8, q - 16, q - 32, ...): kernels start the block's integer
//      sum at -offset * SUM
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/traits.h"

namespace kq::packed {

constexpr int kGroup = 16;    // lane blocks per group
constexpr int kVec = 64;      // bytes per vector

struct WeightLayout {
    TypeId type;
    int lb;                 // lane block: 16 or 32
    size_t group_bytes;     // packed bytes per group of 16 lane blocks
    TypeId act;             // vec_dot_type whose rows pack_act converts
    // ggml row (k elements) -> packed row (groups(k) * group_bytes bytes).
    void (*pack_row)(const void* src, int64_t k, void* dst);
};

// nullptr when the type has no packed layout (floats, Q8_1, Q8_K).
const WeightLayout* weight_layout(TypeId t);

constexpr int64_t groups(int64_t k, int lb) { return (k / lb + kGroup - 1) / kGroup; }
inline size_t packed_row_bytes(const WeightLayout& L, int64_t k) {
    return static_cast<size_t>(groups(k, L.lb)) * L.group_bytes;
}

// Activations: bytes per group of a column, and the conversion of one row of
// the layout's vec_dot_type (as its quantize kernel writes it) into a packed
// column. Offsets of the parts within a group:
constexpr size_t act_group_bytes(int lb) { return static_cast<size_t>(lb / 4) * kVec + 3 * kVec; }
constexpr size_t act_da_offset(int lb) { return static_cast<size_t>(lb / 4) * kVec; }
constexpr size_t act_sa_offset(int lb) { return act_da_offset(lb) + kVec; }
constexpr size_t act_sum_offset(int lb) { return act_da_offset(lb) + 2 * kVec; }
inline size_t act_row_bytes(int lb, int64_t k) { return static_cast<size_t>(groups(k, lb)) * act_group_bytes(lb); }
void pack_act_row(const WeightLayout& L, const void* q_row, int64_t k, void* dst);

// ---- tail groups (legacy formats: one ggml block per lane) -------------------
// A row whose lane blocks are not a multiple of 16 would pad its last group.
// For mat-mat the driver packs the whole groups as usual and the `tail`
// remaining blocks (from block k_main / lb on) in tail groups with rows in
// the lanes: tail group (tile, b) holds block k_main / lb + b of rows
// 16 * tile + j in lane j (zero blocks past the last row), and the
// activation's tail group b holds that column's block k_main / lb + b in
// all 16 lanes. Both are the ordinary group layouts of a 16-block row (so
// the ordinary packers build them); a kernel then accumulates lane j into
// output row j instead of summing the lanes (TypeKernels::gemm_tail).
//   weights: tiles = ceil(nr / 16) x tail groups of group_bytes, tile-major
//   activations: tail groups of act_group_bytes(lb), per column
void pack_weight_tail(const WeightLayout& L, void (*pack_row)(const void*, int64_t, void*), const void* rows,
                      size_t row_stride, int64_t nr, int64_t k_main, int64_t tail, void* dst);
void pack_act_tail(const WeightLayout& L, const void* q_row, int64_t k_main, int64_t tail, void* dst);

}  // namespace kq::packed
