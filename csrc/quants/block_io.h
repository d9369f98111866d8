// Alignment-safe access to the blocks of a quantized row.
//
// Rows come from NumPy buffers, mmapped GGUF files and packed tensors, so a
// block may start at any byte offset (a Q5_0 row is 22 bytes a block, a
// sliced array may be odd). The reference kernels therefore copy each block
// into a properly aligned local struct and back; compilers turn these
// fixed-size memcpy calls into plain loads and stores.
#pragma once
#include <cstdint>
#include <cstring>

namespace kq::ref {

template <class Block>
inline Block load_block(const void* row, int64_t i) {
    Block b;
    std::memcpy(&b, static_cast<const uint8_t*>(row) + static_cast<size_t>(i) * sizeof(Block), sizeof(Block));
    return b;
}

template <class Block>
inline void store_block(void* row, int64_t i, const Block& b) {
    std::memcpy(static_cast<uint8_t*>(row) + static_cast<size_t>(i) * sizeof(Block), &b, sizeof(Block));
}

// A row of n values quantized block by block: Fn(x, qw, b) for each block of
// kQK values, qw its slice of the imatrix (null without one).
template <class Block, int kQK, void (*Fn)(const float*, const float*, Block&)>
void quantize_blocks(const float* x, void* y, int64_t n, const float* imatrix) {
    for (int64_t i = 0; i < n / kQK; ++i) {
        Block b;
        Fn(x + i * kQK, imatrix ? imatrix + i * kQK : nullptr, b);
        store_block(y, i, b);
    }
}

// The same for formats that take no imatrix: Fn(x, b).
template <class Block, int kQK, void (*Fn)(const float*, Block&)>
void quantize_blocks(const float* x, void* y, int64_t n) {
    for (int64_t i = 0; i < n / kQK; ++i) {
        Block b;
        Fn(x + i * kQK, b);
        store_block(y, i, b);
    }
}

}  // namespace kq::ref
