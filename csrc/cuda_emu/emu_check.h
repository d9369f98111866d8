// Host emulation check of the CUDA backend's device code (emu_check.cpp).
#pragma once
#include <string>
#include <vector>

namespace kq::cuda_emu {

// Runs every device quantizer, chunk dequantizer and dp4a unpacker of
// csrc/cuda/ on the host against the CPU reference; returns the first
// mismatches (empty: all bytes and values agree).
std::vector<std::string> self_check();

}  // namespace kq::cuda_emu
