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

}  // namespace kq::ref
