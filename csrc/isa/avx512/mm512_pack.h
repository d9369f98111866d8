// AVX-512 packers: ggml rows -> the packed layouts of matmul/packed.h, the
// same bytes as the scalar packers there (tests/test_matmul.py compares
// them), at ~10x their speed. They make kquants.matmul on unprepared weights
// cheap enough for the one-token mat-vec, which packs every row per call.
//
// A group's 16 lanes are built side by side: lane j's words are fetched with
// one gather (legacy formats: lane j = block j, at a fixed stride) or one
// cross-lane permute of the super-block's bytes (k-quants: lane j's source row
// is a function of j), then shifted by a per-lane count (vpsrlvd) and masked.
// Partial last groups of the k-quants go to the scalar packer (groups are
// independent, so packing the tail as a row of its own gives the same bytes).
#pragma once
#include <cstring>

#include "core/blocks.h"
#include "isa/avx512/mm512_common.h"
#include "matmul/packed.h"

namespace kq::isa_avx512 {
namespace {

inline __m512i iota16() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
inline __m512i set32(uint32_t v) { return _mm512_set1_epi32(static_cast<int>(v)); }
inline void store512(uint8_t* p, __m512i v) { _mm512_storeu_si512(reinterpret_cast<void*>(p), v); }

// H5 lanes from Q5 qh words (packed.cpp h5_lane, in 16 lanes): one multiply
// gathers 4 + 4 bits per output byte.
inline __m512i h5_lanes(__m512i qh) {
    __m512i out = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
        const __m512i y = _mm512_and_si512(_mm512_srli_epi32(qh, i), set32(0x11111111u));
        const __m512i p = _mm512_mullo_epi32(y, set32(0x1248u));
        const __m512i nib = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(p, 12), set32(0x0Fu)),
                                            _mm512_and_si512(_mm512_srli_epi32(p, 24), set32(0xF0u)));
        out = _mm512_or_si512(out, _mm512_slli_epi32(nib, 8 * i));
    }
    return out;
}

// ---- legacy formats ----------------------------------------------------------------
// 16 bytes of each block (a row of 4 dwords) are loaded four blocks to a zmm
// (Z_q = blocks 4q .. 4q+3), then transposed: vector v = dword v of the 16
// blocks = [Z_0[v], Z_0[4+v], Z_0[8+v], Z_0[12+v], Z_1[v], ...]. (Gathers at
// the block stride do the same in one instruction per vector but measured
// 2x slower here.) A partial last group goes to the scalar packer.
template <size_t kSize>
inline __m512i rows4(const uint8_t* b, size_t off) {
    __m512i z = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + off)));
    z = _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kSize + off)), 1);
    z = _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 * kSize + off)), 2);
    return _mm512_inserti32x4(z, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 3 * kSize + off)), 3);
}

// The 4 vectors of dwords 0..3 of a 16-byte field at `off` of 16 blocks.
template <size_t kSize>
inline void transpose_rows(const uint8_t* b, size_t off, uint8_t* out) {
    __m512i z[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) z[q] = rows4<kSize>(b + 4 * q * kSize, off);
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
        const __m512i idx = _mm512_add_epi32(_mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28),
                                             set32(static_cast<uint32_t>(v)));
        const __m512i u = _mm512_permutex2var_epi32(z[0], idx, z[1]), w = _mm512_permutex2var_epi32(z[2], idx, z[3]);
        store512(out + 64 * v, _mm512_shuffle_i64x2(u, w, 0x44));
    }
}

// kNV / 4 fields of 16 bytes at kQs (nibble formats: 1, Q8_0: 2), then H5
// (Q5), D, M; byte offsets within a ggml block as in packed.cpp.
template <TypeId kType, size_t kSize, size_t kQs, int kQh, int kM, int kNV>
void pack_legacy_simd(const void* src, int64_t k, void* dst) {
    constexpr size_t kD = kNV * 64 + (kQh >= 0 ? 64 : 0);
    constexpr size_t kBytes = kD + 32 + (kM >= 0 ? 32 : 0);
    const uint8_t* s = static_cast<const uint8_t*>(src);
    uint8_t* out = static_cast<uint8_t*>(dst);
    const int64_t nb = k / 32, full = nb / 16;
    for (int64_t gi = 0; gi < full; ++gi) {
        const uint8_t* b = s + gi * 16 * kSize;
        uint8_t* o = out + gi * kBytes;
#pragma GCC unroll 2
        for (int f = 0; f < kNV / 4; ++f) transpose_rows<kSize>(b, kQs + 16 * f, o + 256 * f);
        alignas(64) uint32_t qh[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; ++j) {
            const uint8_t* blk = b + j * kSize;
            std::memcpy(o + kD + 2 * j, blk, 2);
            if constexpr (kM >= 0) std::memcpy(o + kD + 32 + 2 * j, blk + kM, 2);
            if constexpr (kQh >= 0) std::memcpy(qh + j, blk + kQh, 4);
        }
        if constexpr (kQh >= 0) store512(o + 64 * kNV, h5_lanes(_mm512_load_si512(qh)));
    }
    if (nb > 16 * full)
        packed::weight_layout(kType)->pack_row(s + full * 16 * kSize, (nb - 16 * full) * 32, out + full * kBytes);
}

// ---- k-quants: permutes of a super-block's bytes -------------------------------------
// 2-bit plane lanes (packed.cpp l2_lane): lane j = sum over w of
// ((dword 4 * row(j) + w of q) >> shift(j)) & 0x03030303, shifted by 2w.
inline __m512i l2_lanes(__m512i q, __m512i row4, __m512i shift) {
    __m512i out = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int w = 0; w < 4; ++w) {
        const __m512i t = _mm512_permutexvar_epi32(_mm512_add_epi32(row4, set32(w)), q);
        out = _mm512_or_si512(out, _mm512_slli_epi32(_mm512_and_si512(_mm512_srlv_epi32(t, shift), set32(0x03030303u)), 2 * w));
    }
    return out;
}

// Per-lane constants of the LB-16 k-quants: lane j covers elements 16j..16j+15
// of the super-block; chunk c = j / 8, r = (j % 8) / 2, jb = j % 2.
struct Lb16Lanes {
    __m512i row4_2bit;  // 4 * (2c + jb): the 16-byte row of a 64-byte 2-bit plane
    __m512i shift_2r;   // 2r
    Lb16Lanes() {
        const __m512i j = iota16();
        const __m512i c = _mm512_srli_epi32(j, 3), jb = _mm512_and_si512(j, set32(1));
        const __m512i r = _mm512_srli_epi32(_mm512_and_si512(j, set32(7)), 1);
        row4_2bit = _mm512_slli_epi32(_mm512_add_epi32(_mm512_slli_epi32(c, 1), jb), 2);
        shift_2r = _mm512_slli_epi32(r, 1);
    }
};

template <size_t kSrcSize, class F>
void for_superblocks(const void* src, int64_t k, void* dst, size_t group_bytes, F&& f) {
    const uint8_t* s = static_cast<const uint8_t*>(src);
    uint8_t* o = static_cast<uint8_t*>(dst);
    for (int64_t i = 0; i < k / QK_K; ++i) f(s + i * kSrcSize, o + i * group_bytes);
}

void pack_q2_K_simd(const void* src, int64_t k, void* dst) {
    const Lb16Lanes L;
    for_superblocks<sizeof(block_q2_K)>(src, k, dst, 64 + 20, [&](const uint8_t* b, uint8_t* o) {
        store512(o, l2_lanes(load512(b + 16), L.row4_2bit, L.shift_2r));
        std::memcpy(o + 64, b, 16);       // scales
        std::memcpy(o + 80, b + 80, 4);   // d, dmin
    });
}

void pack_q3_K_simd(const void* src, int64_t k, void* dst) {
    const Lb16Lanes L;
    const __m512i hrow = _mm512_slli_epi32(_mm512_and_si512(iota16(), set32(1)), 2);  // 4 * jb
    const __m512i hshift = _mm512_srli_epi32(iota16(), 1);                               // j / 2
    for_superblocks<sizeof(block_q3_K)>(src, k, dst, 64 + 32 + 18, [&](const uint8_t* b, uint8_t* o) {
        store512(o, l2_lanes(load512(b + 32), L.row4_2bit, L.shift_2r));
        // High bits: lane j byte i bit w = bit j/2 of hmask[16*jb + 4w + i].
        const __m512i hm = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)));
        __m512i hb = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int w = 0; w < 4; ++w) {
            const __m512i t = _mm512_permutexvar_epi32(_mm512_add_epi32(hrow, set32(w)), hm);
            hb = _mm512_or_si512(hb, _mm512_slli_epi32(_mm512_and_si512(_mm512_srlv_epi32(t, hshift), set32(0x01010101u)), w));
        }
        // H3 dword j (j < 8) = lane j | lane j+8 << 4
        const __m512i up = _mm512_shuffle_i64x2(hb, hb, 0xEE);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64),
                            _mm512_castsi512_si256(_mm512_or_si512(hb, _mm512_slli_epi32(up, 4))));
        // 16 6-bit scales - 32 (packed.cpp pack_q3_K), four at a time.
        uint32_t a0, a1, t;
        std::memcpy(&a0, b + 96, 4);
        std::memcpy(&a1, b + 100, 4);
        std::memcpy(&t, b + 104, 4);
        const __m128i sc = _mm_setr_epi32(
            static_cast<int>((a0 & 0x0F0F0F0Fu) | (t & 0x03030303u) << 4),
            static_cast<int>((a1 & 0x0F0F0F0Fu) | ((t >> 2) & 0x03030303u) << 4),
            static_cast<int>(((a0 >> 4) & 0x0F0F0F0Fu) | ((t >> 4) & 0x03030303u) << 4),
            static_cast<int>(((a1 >> 4) & 0x0F0F0F0Fu) | ((t >> 6) & 0x03030303u) << 4));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 96), _mm_sub_epi8(sc, _mm_set1_epi8(32)));
        std::memcpy(o + 112, b + 108, 2);  // d
    });
}

void pack_q6_K_simd(const void* src, int64_t k, void* dst) {
    const Lb16Lanes L;
    // ql row (16 bytes) of lane j: 4c + 2(r&1) + jb; nibble shift 4 * (r >> 1).
    const __m512i j = iota16();
    const __m512i c = _mm512_srli_epi32(j, 3), jb = _mm512_and_si512(j, set32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_and_si512(j, set32(7)), 1);
    const __m512i qlrow4 = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(c, 2), _mm512_slli_epi32(_mm512_and_si512(r, set32(1)), 1)), jb), 2);
    const __m512i nshift = _mm512_slli_epi32(_mm512_srli_epi32(r, 1), 2);
    for_superblocks<sizeof(block_q6_K)>(src, k, dst, 3 * 64 + 18, [&](const uint8_t* b, uint8_t* o) {
        const __m512i y0 = load512(b), y1 = load512(b + 64);
        __m512i nib[4];
#pragma GCC unroll 4
        for (int w = 0; w < 4; ++w)
            nib[w] = _mm512_and_si512(
                _mm512_srlv_epi32(_mm512_permutex2var_epi32(y0, _mm512_add_epi32(qlrow4, set32(w)), y1), nshift),
                set32(0x0F0F0F0Fu));
        store512(o, _mm512_or_si512(nib[0], _mm512_slli_epi32(nib[2], 4)));
        store512(o + 64, _mm512_or_si512(nib[1], _mm512_slli_epi32(nib[3], 4)));
        store512(o + 128, l2_lanes(load512(b + 128), L.row4_2bit, L.shift_2r));
        std::memcpy(o + 192, b + 192, 18);  // scales, d
    });
}

// Q4_K / Q5_K: lane j = sub-block j % 8 of the group's super-block j / 8. Its
// 32 nibbles are dwords 8c .. 8c+7 (c = sub-block / 2) of the super-block's
// qs, low or high nibbles; packed dword v = nibbles of dwords v | v+4 << 4.
template <bool kQ5>
void pack_k45_simd(const void* src, int64_t k, void* dst) {
    constexpr size_t kSrcSize = kQ5 ? sizeof(block_q5_K) : sizeof(block_q4_K), kSrcQs = kQ5 ? 48 : 16;
    constexpr size_t kSC = kQ5 ? 320 : 256, kMN = kSC + 16, kD = kMN + 16, kBytes = kD + 8;
    const uint8_t* s = static_cast<const uint8_t*>(src);
    uint8_t* out = static_cast<uint8_t*>(dst);
    const __m512i sb = _mm512_and_si512(iota16(), set32(7));
    const __m512i row8 = _mm512_slli_epi32(_mm512_srli_epi32(sb, 1), 3);        // 8c
    const __m512i shift = _mm512_slli_epi32(_mm512_and_si512(sb, set32(1)), 2);  // 4 * (sub-block & 1)
    const int64_t nsb = k / QK_K;
    for (int64_t gi = 0; gi < nsb / 2; ++gi) {
        const uint8_t* b0 = s + 2 * gi * kSrcSize;
        const uint8_t* b1 = b0 + kSrcSize;
        uint8_t* o = out + gi * kBytes;
        const __m512i q00 = load512(b0 + kSrcQs), q01 = load512(b0 + kSrcQs + 64);
        const __m512i q10 = load512(b1 + kSrcQs), q11 = load512(b1 + kSrcQs + 64);
        auto dwords = [&](int w) {  // dword 8c + w of each lane's super-block, nibbles of its sub-block
            const __m512i idx = _mm512_add_epi32(row8, set32(w));
            const __m512i t = _mm512_mask_blend_epi32(0xFF00, _mm512_permutex2var_epi32(q00, idx, q01),
                                                      _mm512_permutex2var_epi32(q10, idx, q11));
            return _mm512_and_si512(_mm512_srlv_epi32(t, shift), set32(0x0F0F0F0Fu));
        };
#pragma GCC unroll 4
        for (int v = 0; v < 4; ++v) store512(o + 64 * v, _mm512_or_si512(dwords(v), _mm512_slli_epi32(dwords(v + 4), 4)));
        if constexpr (kQ5) {
            // bit l of lane (h, sub-block s) = bit s of qh[l]: bit 7 of each
            // byte after a shift by 7 - s, collected by vpmovmskb.
            alignas(64) uint32_t hb[16];
            for (int h = 0; h < 2; ++h) {
                const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>((h ? b1 : b0) + 16));
#pragma GCC unroll 8
                for (int t = 0; t < 8; ++t)
                    hb[8 * h + t] = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(qh, 7 - t)));
            }
            store512(o + 256, h5_lanes(_mm512_load_si512(hb)));
        }
        for (int h = 0; h < 2; ++h) {
            const uint8_t* b = h ? b1 : b0;
            uint32_t a0, a1, a2;  // packed.cpp k4_scales
            std::memcpy(&a0, b + 4, 4);
            std::memcpy(&a1, b + 8, 4);
            std::memcpy(&a2, b + 12, 4);
            const uint32_t w[4] = {a0 & 0x3F3F3F3Fu, (a2 & 0x0F0F0F0Fu) | ((a0 >> 6) & 0x03030303u) << 4,
                                   a1 & 0x3F3F3F3Fu, ((a2 >> 4) & 0x0F0F0F0Fu) | ((a1 >> 6) & 0x03030303u) << 4};
            std::memcpy(o + kSC + 8 * h, w, 8);
            std::memcpy(o + kMN + 8 * h, w + 2, 8);
            std::memcpy(o + kD + 2 * h, b, 2);
            std::memcpy(o + kD + 4 + 2 * h, b + 2, 2);
        }
    }
    if (nsb & 1)  // a last lone super-block: the scalar packer, as a row of its own
        packed::weight_layout(kQ5 ? TypeId::Q5_K : TypeId::Q4_K)
            ->pack_row(s + (nsb - 1) * kSrcSize, QK_K, out + (nsb / 2) * kBytes);
}

}  // namespace
}  // namespace kq::isa_avx512
