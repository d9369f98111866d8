// Builders of the packed layouts described in packed.h. Plain C++ (built for
// the baseline CPU): weights are packed once (kquants.PreparedWeight) or once
// per row chunk and call; activations once per call.
#include "matmul/packed.h"

#include <cstring>

#include "core/blocks.h"
#include "core/fp16.h"
#include "quants/block_io.h"

namespace kq::packed {
namespace {

using ref::load_block;

// Per-group writer: zero-fills the group, then places 4-byte words of lane
// blocks into vectors and per-lane fields after them.
struct Group {
    uint8_t* g;
    uint8_t* vec(int v) const { return g + v * kVec; }
    void word(int v, int lane, const uint8_t* src) const { std::memcpy(vec(v) + 4 * lane, src, 4); }
    void byte(int v, int lane, int i, uint8_t b) const { vec(v)[4 * lane + i] = b; }
    template <class T>
    void field(size_t off, int lane, T value) const { std::memcpy(g + off + lane * sizeof(T), &value, sizeof(T)); }
};

template <class F>
void for_groups(int64_t k, int lb, size_t group_bytes, void* dst, F&& f) {
    const int64_t nblocks = k / lb, ng = groups(k, lb);
    for (int64_t gi = 0; gi < ng; ++gi) {
        Group grp{static_cast<uint8_t*>(dst) + gi * group_bytes};
        std::memset(grp.g, 0, group_bytes);
        const int64_t b0 = gi * kGroup;
        const int n = static_cast<int>(nblocks - b0 < kGroup ? nblocks - b0 : kGroup);
        f(grp, b0, n);
    }
}

// ---- legacy formats -----------------------------------------------------------
// N vectors: the 16 qs bytes of a block are dwords v = 0..3 of lane j.
constexpr size_t kN = 4 * kVec;   // bytes of the nibble vectors
constexpr size_t kH5 = kVec;      // bytes of the Q5 high-bit vector

// H5 byte i: bit v <- qh bit 4v+i, bit 4+v <- qh bit 16+4v+i.
void put_h5(const Group& grp, int v_h5, int lane, uint32_t qh) {
    for (int i = 0; i < 4; ++i) {
        uint8_t b = 0;
        for (int v = 0; v < 4; ++v)
            b |= static_cast<uint8_t>(((qh >> (4 * v + i)) & 1u) << v | ((qh >> (16 + 4 * v + i)) & 1u) << (4 + v));
        grp.byte(v_h5, lane, i, b);
    }
}

uint32_t qh32(const uint8_t qh[4]) {
    return static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 | static_cast<uint32_t>(qh[2]) << 16 |
           static_cast<uint32_t>(qh[3]) << 24;
}

template <class B, bool kMin, bool kQ5>
void pack_legacy(const void* src, int64_t k, void* dst) {
    constexpr size_t kD = kN + (kQ5 ? kH5 : 0);  // D[16], then M[16]
    constexpr size_t kBytes = kD + 32 + (kMin ? 32 : 0);
    for_groups(k, 32, kBytes, dst, [&](const Group& grp, int64_t b0, int n) {
        for (int j = 0; j < n; ++j) {
            const B b = load_block<B>(src, b0 + j);
            for (int v = 0; v < 4; ++v) grp.word(v, j, b.qs + 4 * v);
            if constexpr (kQ5) put_h5(grp, 4, j, qh32(b.qh));
            grp.field<uint16_t>(kD, j, b.d);
            if constexpr (kMin) grp.field<uint16_t>(kD + 32, j, b.m);
        }
    });
}

void pack_q8_0(const void* src, int64_t k, void* dst) {
    for_groups(k, 32, 8 * kVec + 32, dst, [&](const Group& grp, int64_t b0, int n) {
        for (int j = 0; j < n; ++j) {
            const auto b = load_block<block_q8_0>(src, b0 + j);
            for (int t = 0; t < 8; ++t) grp.word(t, j, reinterpret_cast<const uint8_t*>(b.qs) + 4 * t);
            grp.field<uint16_t>(8 * kVec, j, b.d);
        }
    });
}

// ---- Q4_K / Q5_K: lane j = sub-block j % 8 of super-block 2g + j / 8 ---------
void scale_min_k4(const uint8_t* s, int j, uint8_t& sc, uint8_t& mn) {
    if (j < 4) {
        sc = s[j] & 63;
        mn = s[j + 4] & 63;
    } else {
        sc = static_cast<uint8_t>((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4));
        mn = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

// Sub-block s of ggml's Q4_K/Q5_K: element l is the low (s even) or high
// (s odd) nibble of qs[32 * (s / 2) + l]; Q5_K adds qh[l] bit s as bit 4.
template <class B, bool kQ5>
void pack_k45(const void* src, int64_t k, void* dst) {
    constexpr size_t kSC = kN + (kQ5 ? kH5 : 0), kMN = kSC + 16, kD = kMN + 16, kDM = kD + 4;
    constexpr size_t kBytes = kDM + 4;
    const int64_t nsb = k / QK_K;
    for (int64_t gi = 0; gi < groups(k, 32); ++gi) {
        Group grp{static_cast<uint8_t*>(dst) + gi * kBytes};
        std::memset(grp.g, 0, kBytes);
        for (int h = 0; h < 2 && 2 * gi + h < nsb; ++h) {
            const B b = load_block<B>(src, 2 * gi + h);
            grp.field<uint16_t>(kD, h, b.d);
            grp.field<uint16_t>(kDM, h, b.dmin);
            for (int s = 0; s < 8; ++s) {
                const int lane = 8 * h + s;
                uint8_t q[32];
                for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>((b.qs[32 * (s / 2) + l] >> (4 * (s & 1))) & 0x0F);
                for (int v = 0; v < 4; ++v)
                    for (int i = 0; i < 4; ++i)
                        grp.byte(v, lane, i, static_cast<uint8_t>(q[4 * v + i] | q[16 + 4 * v + i] << 4));
                if constexpr (kQ5) {
                    uint32_t hb = 0;  // bit l = bit 4 of element l
                    for (int l = 0; l < 32; ++l) hb |= static_cast<uint32_t>((b.qh[l] >> s) & 1) << l;
                    put_h5(grp, 4, lane, hb);
                }
                uint8_t sc, mn;
                scale_min_k4(b.scales, s, sc, mn);
                grp.field<uint8_t>(kSC, lane, sc);
                grp.field<uint8_t>(kMN, lane, mn);
            }
        }
    }
}

// ---- LB 16 k-quants: one super-block per group, lane j = elements 16j.. -------
// Element e of a 2-bit plane (Q2_K / Q3_K qs): byte 32*(e/128) + e%32, bits
// 2*((e%128)/32).
int q2_at(const uint8_t* qs, int e) { return (qs[(e / 128) * 32 + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

// L vector: lane j byte i bits 2w..2w+1 = low 2 bits of u[16j + 4w + i].
void put_l2(const Group& grp, int v, const uint8_t u[QK_K]) {
    for (int j = 0; j < 16; ++j)
        for (int i = 0; i < 4; ++i) {
            uint8_t b = 0;
            for (int w = 0; w < 4; ++w) b |= static_cast<uint8_t>((u[16 * j + 4 * w + i] & 3) << (2 * w));
            grp.byte(v, j, i, b);
        }
}

void pack_q2_K(const void* src, int64_t k, void* dst) {
    // L (64) | SC (16) | D (2) | DMIN (2)
    for_groups(k, 16, kVec + 20, dst, [&](const Group& grp, int64_t b0, int) {
        const auto b = load_block<block_q2_K>(src, b0 / 16);
        uint8_t u[QK_K];
        for (int e = 0; e < QK_K; ++e) u[e] = static_cast<uint8_t>(q2_at(b.qs, e));
        put_l2(grp, 0, u);
        std::memcpy(grp.g + kVec, b.scales, 16);
        grp.field<uint16_t>(kVec + 16, 0, b.d);
        grp.field<uint16_t>(kVec + 18, 0, b.dmin);
    });
}

void pack_q3_K(const void* src, int64_t k, void* dst) {
    // L (64) | H3 (32) | SC (16, int8) | D (2)
    for_groups(k, 16, kVec + 32 + 18, dst, [&](const Group& grp, int64_t b0, int) {
        const auto b = load_block<block_q3_K>(src, b0 / 16);
        uint8_t u[QK_K];  // low 2 bits | high bit << 2
        for (int e = 0; e < QK_K; ++e)
            u[e] = static_cast<uint8_t>(q2_at(b.qs, e) | ((b.hmask[e % 32] >> (e / 32)) & 1) << 2);
        put_l2(grp, 0, u);
        uint8_t* h3 = grp.g + kVec;
        for (int j = 0; j < 8; ++j)
            for (int i = 0; i < 4; ++i) {
                uint8_t v = 0;
                for (int w = 0; w < 4; ++w)
                    v |= static_cast<uint8_t>((u[16 * j + 4 * w + i] >> 2) << w | (u[16 * (j + 8) + 4 * w + i] >> 2) << (4 + w));
                h3[4 * j + i] = v;
            }
        for (int g = 0; g < 16; ++g) {  // 6-bit scales, see ref_dot.cpp decode_q3_K
            const int lo = g < 8 ? (b.scales[g] & 0x0F) : (b.scales[g - 8] >> 4);
            const int hi = (b.scales[8 + (g & 3)] >> (2 * (g >> 2))) & 3;
            grp.field<int8_t>(kVec + 32, g, static_cast<int8_t>((lo | hi << 4) - 32));
        }
        grp.field<uint16_t>(kVec + 48, 0, b.d);
    });
}

void pack_q6_K(const void* src, int64_t k, void* dst) {
    // N6 (128) | H6 (64) | SC (16, int8) | D (2)
    for_groups(k, 16, 3 * kVec + 18, dst, [&](const Group& grp, int64_t b0, int) {
        const auto b = load_block<block_q6_K>(src, b0 / 16);
        uint8_t q[QK_K];  // 0..63
        for (int e = 0; e < QK_K; ++e) {
            const int c = e / 128, r = (e % 128) / 32, l = e % 32;
            const int lo = (b.ql[64 * c + l + 32 * (r & 1)] >> (4 * (r >> 1))) & 0x0F;
            const int hi = (b.qh[32 * c + l] >> (2 * r)) & 3;
            q[e] = static_cast<uint8_t>(lo | hi << 4);
        }
        for (int j = 0; j < 16; ++j)
            for (int i = 0; i < 4; ++i) {
                for (int v = 0; v < 2; ++v)
                    grp.byte(v, j, i, static_cast<uint8_t>((q[16 * j + 4 * v + i] & 15) | (q[16 * j + 8 + 4 * v + i] & 15) << 4));
                uint8_t h = 0;
                for (int w = 0; w < 4; ++w) h |= static_cast<uint8_t>((q[16 * j + 4 * w + i] >> 4) << (2 * w));
                grp.byte(2, j, i, h);
            }
        std::memcpy(grp.g + 3 * kVec, b.scales, 16);
        grp.field<uint16_t>(3 * kVec + 16, 0, b.d);
    });
}

const WeightLayout kLayouts[] = {
    {TypeId::Q4_0, 32, kN + 32, TypeId::Q8_0, pack_legacy<block_q4_0, false, false>},
    {TypeId::Q4_1, 32, kN + 64, TypeId::Q8_1, pack_legacy<block_q4_1, true, false>},
    {TypeId::Q5_0, 32, kN + kH5 + 32, TypeId::Q8_0, pack_legacy<block_q5_0, false, true>},
    {TypeId::Q5_1, 32, kN + kH5 + 64, TypeId::Q8_1, pack_legacy<block_q5_1, true, true>},
    {TypeId::Q8_0, 32, 8 * kVec + 32, TypeId::Q8_0, pack_q8_0},
    {TypeId::Q2_K, 16, kVec + 20, TypeId::Q8_K, pack_q2_K},
    {TypeId::Q3_K, 16, kVec + 32 + 18, TypeId::Q8_K, pack_q3_K},
    {TypeId::Q4_K, 32, kN + 40, TypeId::Q8_K, pack_k45<block_q4_K, false>},
    {TypeId::Q5_K, 32, kN + kH5 + 40, TypeId::Q8_K, pack_k45<block_q5_K, true>},
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
    for_groups(k, lb, gb, dst, [&](const Group& grp, int64_t b0, int n) {
        for (int j = 0; j < n; ++j) {
            const ActBlock a = block(b0 + j);
            for (int t = 0; t < lb / 4; ++t) grp.word(t, j, reinterpret_cast<const uint8_t*>(a.q) + 4 * t);
            grp.field<float>(act_da_offset(lb), j, a.da);
            grp.field<float>(act_sa_offset(lb), j, a.sa);
            grp.field<int32_t>(act_sum_offset(lb), j, a.sum);
        }
    });
}

}  // namespace kq::packed
