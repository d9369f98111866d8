// Builders of the packed layouts described in packed.h. Plain C++ (built for
// the baseline CPU): weights are packed once (kquants.PreparedWeight) or once
// per row chunk and call; activations once per call.
#include "matmul/packed.h"

#include <cstring>

#include "core/blocks.h"
#include "core/error.h"
#include "core/fp16.h"

namespace kq::packed {
namespace {

// The packers work on 32- and 64-bit words of the source blocks (memcpy'd:
// rows may be unaligned) and write whole 32-bit lanes.
inline uint32_t rd32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline uint64_t rd64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
inline void wr32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void wr16(uint8_t* p, const uint8_t* src) { std::memcpy(p, src, 2); }
// Lane j of vector v of a group.
inline uint8_t* lane(uint8_t* g, int v, int j) { return g + v * kVec + 4 * j; }

// Groups of 16 lane blocks: f(group, first block, blocks in it). Only a
// partial last group is zero-filled first (its missing lanes stay zero).
template <class F>
void for_groups(int64_t k, int lb, size_t group_bytes, void* dst, F&& f) {
    const int64_t nblocks = k / lb, ng = groups(k, lb);
    for (int64_t gi = 0; gi < ng; ++gi) {
        uint8_t* g = static_cast<uint8_t*>(dst) + gi * group_bytes;
        const int64_t b0 = gi * kGroup;
        const int n = static_cast<int>(nblocks - b0 < kGroup ? nblocks - b0 : kGroup);
        if (n < kGroup) std::memset(g, 0, group_bytes);
        f(g, b0, n);
    }
}

// ---- legacy formats -----------------------------------------------------------
constexpr size_t kN = 4 * kVec;   // bytes of the nibble vectors
constexpr size_t kH5 = kVec;      // bytes of the Q5 high-bit vector

// H5 lane from a Q5 qh word: byte i, bit v = qh bit 4v+i; bit 4+v = qh bit
// 16+4v+i. For each i, y = bits i, 4+i, ..., 28+i of qh (at 0, 4, ..., 28)
// times 2^3 + 2^6 + 2^9 + 2^12 gathers bits 0, 4, 8, 12 at bits 12..15 and
// bits 16, 20, 24, 28 at bits 28..31; every partial product lands on its own
// bit, so nothing carries into them.
inline uint32_t h5_lane(uint32_t qh) {
    uint32_t out = 0;
    for (int i = 0; i < 4; ++i) {
        const uint32_t p = ((qh >> i) & 0x11111111u) * 0x1248u;
        out |= (((p >> 12) & 0x0Fu) | ((p >> 24) & 0xF0u)) << (8 * i);
    }
    return out;
}

// ggml block byte offsets of each legacy format.
template <size_t kSize, size_t kQs, int kQh, int kM>
struct LegacyBlock {
    static constexpr size_t size = kSize, qs = kQs;
    static constexpr int qh = kQh, m = kM;  // -1: absent
};
using Q4_0Block = LegacyBlock<sizeof(block_q4_0), 2, -1, -1>;
using Q4_1Block = LegacyBlock<sizeof(block_q4_1), 4, -1, 2>;
using Q5_0Block = LegacyBlock<sizeof(block_q5_0), 6, 2, -1>;
using Q5_1Block = LegacyBlock<sizeof(block_q5_1), 8, 4, 2>;

template <class B>
void pack_legacy(const void* src, int64_t k, void* dst) {
    constexpr bool kQ5 = B::qh >= 0, kMin = B::m >= 0;
    constexpr size_t kD = kN + (kQ5 ? kH5 : 0);  // D[16], then M[16]
    constexpr size_t kBytes = kD + 32 + (kMin ? 32 : 0);
    const uint8_t* s = static_cast<const uint8_t*>(src);
    for_groups(k, 32, kBytes, dst, [&](uint8_t* g, int64_t b0, int n) {
        for (int j = 0; j < n; ++j) {
            const uint8_t* b = s + (b0 + j) * B::size;
            // N vector v, lane j = dword v of qs (low nibble: element 4v+i,
            // high nibble: element 16+4v+i -- ggml's own order).
            for (int v = 0; v < 4; ++v) std::memcpy(lane(g, v, j), b + B::qs + 4 * v, 4);
            if constexpr (kQ5) wr32(lane(g, 4, j), h5_lane(rd32(b + B::qh)));
            wr16(g + kD + 2 * j, b);
            if constexpr (kMin) wr16(g + kD + 32 + 2 * j, b + B::m);
        }
    });
}

void pack_q8_0(const void* src, int64_t k, void* dst) {
    const uint8_t* s = static_cast<const uint8_t*>(src);
    for_groups(k, 32, 8 * kVec + 32, dst, [&](uint8_t* g, int64_t b0, int n) {
        for (int j = 0; j < n; ++j) {
            const uint8_t* b = s + (b0 + j) * sizeof(block_q8_0);
            for (int t = 0; t < 8; ++t) std::memcpy(lane(g, t, j), b + 2 + 4 * t, 4);
            wr16(g + 8 * kVec + 2 * j, b);
        }
    });
}

// ---- Q4_K / Q5_K: lane j = sub-block j % 8 of super-block 2g + j / 8 ---------
// The 8 6-bit scales and mins of a Q4_K/Q5_K super-block from ggml's 12
// bytes: sub-block j < 4 in the low 6 bits of bytes j (scale) and j+4 (min);
// j >= 4 in a nibble of byte j+4 (low: scale, high: min) plus the top two
// bits of bytes j-4 (scale) and j (min). Word-wise, four sub-blocks at once.
void k4_scales(const uint8_t* s, uint8_t* sc, uint8_t* mn) {
    const uint32_t a0 = rd32(s), a1 = rd32(s + 4), a2 = rd32(s + 8);
    wr32(sc, a0 & 0x3F3F3F3Fu);
    wr32(mn, a1 & 0x3F3F3F3Fu);
    wr32(sc + 4, (a2 & 0x0F0F0F0Fu) | ((a0 >> 6) & 0x03030303u) << 4);
    wr32(mn + 4, ((a2 >> 4) & 0x0F0F0F0Fu) | ((a1 >> 6) & 0x03030303u) << 4);
}

// 8x8 bit matrix in a word (bit 8r + c = row r, column c) -> its transpose
// (Hacker's Delight 7-3).
inline uint64_t transpose8x8(uint64_t x) {
    uint64_t t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
    x = x ^ t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
    x = x ^ t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
    return x ^ t ^ (t << 28);
}

// ggml Q4_K/Q5_K: d, dmin (fp16), scales[12], [qh[32]], qs[128]. Sub-block s
// (32 elements): element l is the low (s even) or high (s odd) nibble of
// qs[32 * (s / 2) + l]; Q5_K adds qh[l] bit s as bit 4.
template <bool kQ5>
void pack_k45(const void* src, int64_t k, void* dst) {
    constexpr size_t kSrcQs = kQ5 ? 48 : 16, kSrcSize = kQ5 ? sizeof(block_q5_K) : sizeof(block_q4_K);
    constexpr size_t kSC = kN + (kQ5 ? kH5 : 0), kMN = kSC + 16, kD = kMN + 16, kDM = kD + 4;
    constexpr size_t kBytes = kDM + 4;
    constexpr uint64_t kLo = 0x0F0F0F0F0F0F0F0Full;
    const int64_t nsb = k / QK_K;
    const uint8_t* s = static_cast<const uint8_t*>(src);
    for (int64_t gi = 0; gi < groups(k, 32); ++gi) {
        uint8_t* g = static_cast<uint8_t*>(dst) + gi * kBytes;
        if (2 * gi + 1 >= nsb) std::memset(g, 0, kBytes);
        for (int h = 0; h < 2 && 2 * gi + h < nsb; ++h) {
            const uint8_t* b = s + (2 * gi + h) * kSrcSize;
            wr16(g + kD + 2 * h, b);
            wr16(g + kDM + 2 * h, b + 2);
            uint64_t hbt[4] = {};  // transposed qh: byte s of hbt[t] = bits s of qh[8t..8t+7]
            if constexpr (kQ5)
                for (int t = 0; t < 4; ++t) hbt[t] = transpose8x8(rd64(b + 16 + 8 * t));
            for (int c = 0; c < 4; ++c) {
                uint64_t x[4];
                for (int w = 0; w < 4; ++w) x[w] = rd64(b + kSrcQs + 32 * c + 8 * w);
                for (int odd = 0; odd < 2; ++odd) {
                    const int sb = 2 * c + odd, ln = 8 * h + sb;
                    uint64_t q[4];  // element nibbles 8w..8w+7, one per byte
                    for (int w = 0; w < 4; ++w) q[w] = (odd ? x[w] >> 4 : x[w]) & kLo;
                    // byte e of the lane (e < 16) = element e | element e+16 << 4
                    const uint64_t lo = q[0] | q[2] << 4, hi = q[1] | q[3] << 4;
                    wr32(lane(g, 0, ln), static_cast<uint32_t>(lo));
                    wr32(lane(g, 1, ln), static_cast<uint32_t>(lo >> 32));
                    wr32(lane(g, 2, ln), static_cast<uint32_t>(hi));
                    wr32(lane(g, 3, ln), static_cast<uint32_t>(hi >> 32));
                    if constexpr (kQ5) {
                        uint32_t hb = 0;  // bit l = bit 4 of element l
                        for (int t = 0; t < 4; ++t) hb |= static_cast<uint32_t>((hbt[t] >> (8 * sb)) & 0xFF) << (8 * t);
                        wr32(lane(g, 4, ln), h5_lane(hb));
                    }
                }
            }
            k4_scales(b + 4, g + kSC + 8 * h, g + kMN + 8 * h);
        }
    }
}

// ---- LB 16 k-quants: one super-block per group, lane j = elements 16j.. -------
// In ggml's 2-bit planes (Q2_K/Q3_K qs) and Q6_K's ql/qh, the 16 elements of
// lane j sit in 16 consecutive bytes at 32*(j/8) + 16*(j%2) (+ 32*(r%2) in
// Q6_K's ql), at bit shift 2*r (4*(r/2) for ql), r = (j%8)/2. Word w of those
// bytes holds elements 4w..4w+3, one per byte.

// L lane: byte i, bits 2w..2w+1 = low 2 bits of element 4w+i.
inline uint32_t l2_lane(const uint8_t* bytes, int shift) {
    uint32_t out = 0;
    for (int w = 0; w < 4; ++w) out |= ((rd32(bytes + 4 * w) >> shift) & 0x03030303u) << (2 * w);
    return out;
}

// Q2_K: scales[16], qs[64], d, dmin.
void pack_q2_K(const void* src, int64_t k, void* dst) {
    const uint8_t* s = static_cast<const uint8_t*>(src);
    for_groups(k, 16, kVec + 20, dst, [&](uint8_t* g, int64_t b0, int) {  // L | SC | D | DMIN
        const uint8_t* b = s + (b0 / 16) * sizeof(block_q2_K);
        for (int j = 0; j < 16; ++j) wr32(lane(g, 0, j), l2_lane(b + 16 + 32 * (j / 8) + 16 * (j & 1), 2 * ((j % 8) / 2)));
        std::memcpy(g + kVec, b, 16);
        std::memcpy(g + kVec + 16, b + 80, 4);
    });
}

// Q3_K: hmask[32], qs[64], scales[12], d. The high bit of element e is bit
// e/32 of hmask[e%32]: for lane j, bit j/2 of the 16 bytes at 16*(j%2).
void pack_q3_K(const void* src, int64_t k, void* dst) {
    const uint8_t* s = static_cast<const uint8_t*>(src);
    for_groups(k, 16, kVec + 32 + 18, dst, [&](uint8_t* g, int64_t b0, int) {  // L | H3 | SC | D
        const uint8_t* b = s + (b0 / 16) * sizeof(block_q3_K);
        uint32_t hb[16];  // lane j: byte i bit w = high bit of element 4w+i
        for (int j = 0; j < 16; ++j) {
            wr32(lane(g, 0, j), l2_lane(b + 32 + 32 * (j / 8) + 16 * (j & 1), 2 * ((j % 8) / 2)));
            hb[j] = 0;
            for (int w = 0; w < 4; ++w) hb[j] |= ((rd32(b + 16 * (j & 1) + 4 * w) >> (j / 2)) & 0x01010101u) << w;
        }
        for (int j = 0; j < 8; ++j) wr32(g + kVec + 4 * j, hb[j] | hb[j + 8] << 4);
        const uint8_t* sc = b + 96;
        for (int j = 0; j < 16; ++j) {  // 6-bit scales, see ref_dot.cpp decode_q3_K
            const int lo = j < 8 ? (sc[j] & 0x0F) : (sc[j - 8] >> 4);
            const int hi = (sc[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
            g[kVec + 32 + j] = static_cast<uint8_t>(static_cast<int8_t>((lo | hi << 4) - 32));
        }
        wr16(g + kVec + 48, b + 108);
    });
}

// Q6_K: ql[128], qh[64], scales[16], d.
void pack_q6_K(const void* src, int64_t k, void* dst) {
    const uint8_t* s = static_cast<const uint8_t*>(src);
    for_groups(k, 16, 3 * kVec + 18, dst, [&](uint8_t* g, int64_t b0, int) {  // N6 | H6 | SC | D
        const uint8_t* b = s + (b0 / 16) * sizeof(block_q6_K);
        for (int j = 0; j < 16; ++j) {
            const int c = j / 8, r = (j % 8) / 2, jb = j & 1;
            const uint8_t* ql = b + 64 * c + 32 * (r & 1) + 16 * jb;
            uint32_t nib[4];  // elements 4w..4w+3: low 4 bits
            for (int w = 0; w < 4; ++w) nib[w] = (rd32(ql + 4 * w) >> (4 * (r >> 1))) & 0x0F0F0F0Fu;
            wr32(lane(g, 0, j), nib[0] | nib[2] << 4);
            wr32(lane(g, 1, j), nib[1] | nib[3] << 4);
            wr32(lane(g, 2, j), l2_lane(b + 128 + 32 * c + 16 * jb, 2 * r));
        }
        std::memcpy(g + 3 * kVec, b + 192, 16);
        wr16(g + 3 * kVec + 16, b + 208);
    });
}

const WeightLayout kLayouts[] = {
    {TypeId::Q4_0, 32, kN + 32, TypeId::Q8_0, pack_legacy<Q4_0Block>},
    {TypeId::Q4_1, 32, kN + 64, TypeId::Q8_1, pack_legacy<Q4_1Block>},
    {TypeId::Q5_0, 32, kN + kH5 + 32, TypeId::Q8_0, pack_legacy<Q5_0Block>},
    {TypeId::Q5_1, 32, kN + kH5 + 64, TypeId::Q8_1, pack_legacy<Q5_1Block>},
    {TypeId::Q8_0, 32, 8 * kVec + 32, TypeId::Q8_0, pack_q8_0},
    {TypeId::Q2_K, 16, kVec + 20, TypeId::Q8_K, pack_q2_K},
    {TypeId::Q3_K, 16, kVec + 32 + 18, TypeId::Q8_K, pack_q3_K},
    {TypeId::Q4_K, 32, kN + 40, TypeId::Q8_K, pack_k45<false>},
    {TypeId::Q5_K, 32, kN + kH5 + 40, TypeId::Q8_K, pack_k45<true>},
    {TypeId::Q6_K, 16, 3 * kVec + 18, TypeId::Q8_K, pack_q6_K},
};

// ---- activations ------------------------------------------------------------------
// One lane block of an activation row: its LB int8 values and fields.
struct ActBlock {
    const int8_t* q;
    float da, sa;
    int32_t sum;
};

}  // namespace

const WeightLayout* weight_layout(TypeId t) {
    for (const WeightLayout& L : kLayouts)
        if (L.type == t) return &L;
    return nullptr;
}

void pack_act_row(const WeightLayout& L, const void* q_row, int64_t k, void* dst) {
    const int lb = L.lb;
    const size_t gb = act_group_bytes(lb);
    const uint8_t* row = static_cast<const uint8_t*>(q_row);
    // Blocks of the source row, in place (rows come from the driver's own
    // aligned buffer, so the structs can be read directly).
    auto block = [&](int64_t b) -> ActBlock {
        if (L.act == TypeId::Q8_K) {
            const int per = QK_K / lb;  // lane blocks per super-block
            const auto* s = reinterpret_cast<const block_q8_K*>(row) + b / per;
            const int j = static_cast<int>(b % per);
            int32_t sum = 0;
            for (int g = j * lb / 16; g < (j + 1) * lb / 16; ++g) sum += s->bsums[g];
            return {s->qs + j * lb, s->d, s->d * static_cast<float>(sum), sum};
        }
        if (L.act == TypeId::Q8_1) {
            const auto* s = reinterpret_cast<const block_q8_1*>(row) + b;
            int32_t sum = 0;
            for (int i = 0; i < 32; ++i) sum += s->qs[i];
            return {s->qs, fp16_to_fp32(s->d), fp16_to_fp32(s->s), sum};
        }
        const auto* s = reinterpret_cast<const block_q8_0*>(row) + b;
        int32_t sum = 0;
        for (int i = 0; i < 32; ++i) sum += s->qs[i];
        const float d = fp16_to_fp32(s->d);
        return {s->qs, d, d * static_cast<float>(sum), sum};
    };
    for_groups(k, lb, gb, dst, [&](uint8_t* g, int64_t b0, int n) {
        for (int j = 0; j < n; ++j) {
            const ActBlock a = block(b0 + j);
            for (int t = 0; t < lb / 4; ++t) std::memcpy(lane(g, t, j), a.q + 4 * t, 4);
            std::memcpy(g + act_da_offset(lb) + 4 * j, &a.da, 4);
            std::memcpy(g + act_sa_offset(lb) + 4 * j, &a.sa, 4);
            std::memcpy(g + act_sum_offset(lb) + 4 * j, &a.sum, 4);
        }
    });
}

void pack_weight_tail(const WeightLayout& L, void (*pack_row)(const void*, int64_t, void*), const void* rows,
                      size_t row_stride, int64_t nr, int64_t k_main, int64_t tail, void* dst) {
    const size_t bb = type_traits(L.type).type_size;  // bytes of one ggml block (= one lane block)
    const int64_t b_main = k_main / L.lb;
    uint8_t virt[kGroup * sizeof(block_q8_1)];  // 16 blocks; the largest legacy block is 36 bytes
    if (bb * kGroup > sizeof(virt)) throw Error("pack_weight_tail: not a legacy block format");
    const uint8_t* src = static_cast<const uint8_t*>(rows);
    uint8_t* out = static_cast<uint8_t*>(dst);
    for (int64_t r0 = 0; r0 < nr; r0 += kGroup) {
        const int64_t n = nr - r0 < kGroup ? nr - r0 : kGroup;
        for (int64_t b = 0; b < tail; ++b) {
            std::memset(virt, 0, sizeof(virt));
            for (int64_t j = 0; j < n; ++j)
                std::memcpy(virt + j * bb, src + (r0 + j) * row_stride + (b_main + b) * bb, bb);
            pack_row(virt, static_cast<int64_t>(kGroup) * L.lb, out);
            out += L.group_bytes;
        }
    }
}

void pack_act_tail(const WeightLayout& L, const void* q_row, int64_t k_main, int64_t tail, void* dst) {
    const size_t bb = type_traits(L.act).type_size;
    uint8_t virt[kGroup * sizeof(block_q8_1)];
    if (bb * kGroup > sizeof(virt)) throw Error("pack_act_tail: not a Q8_0/Q8_1 activation row");
    const uint8_t* src = static_cast<const uint8_t*>(q_row) + (k_main / L.lb) * bb;
    for (int64_t b = 0; b < tail; ++b) {
        for (int j = 0; j < kGroup; ++j) std::memcpy(virt + j * bb, src + b * bb, bb);
        pack_act_row(L, virt, static_cast<int64_t>(kGroup) * L.lb, static_cast<uint8_t*>(dst) + b * act_group_bytes(L.lb));
    }
}

}  // namespace kq::packed
