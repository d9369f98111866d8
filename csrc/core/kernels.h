// Run-time kernel dispatch.
//
// A KernelSet holds one entry per type id (see traits.h). It starts as the
// scalar reference from the traits table; each compiled ISA folder
// (csrc/isa/<name>/) then overrides the entries it accelerates through
// kq_register_<name>(KernelSet&). ISAs are layered from the baseline up
// (avx2 -> avx512 -> avx512vnni, or neon), so an entry an ISA leaves alone
// keeps the best lower implementation.
//
// The active set is the highest ISA the CPU supports, or the one named by the
// environment variable KQUANTS_ISA (generic|avx2|avx512|avx512vnni|neon).
#pragma once
#include <string>
#include <vector>

#include "core/traits.h"

namespace kq {

struct TypeKernels {
    quantize_row_fn quantize = nullptr;      // same contract and bytes as the reference
    dequantize_row_fn dequantize = nullptr;
};

struct KernelSet {
    std::string isa = "generic";
    TypeKernels by_type[kMaxTypeId];
    const TypeKernels& operator[](TypeId id) const { return by_type[static_cast<uint32_t>(id)]; }
    TypeKernels& operator[](TypeId id) { return by_type[static_cast<uint32_t>(id)]; }
};

// The active kernel set (chosen once, on first use).
const KernelSet& kernels();
// The kernel set for a named ISA; throws kq::Error if it is not compiled in
// or the CPU lacks it. "generic" is the scalar reference.
const KernelSet& kernels_for(const std::string& isa);

std::vector<std::string> compiled_isas();   // "generic" first
std::vector<std::string> supported_isas();  // compiled and runnable here
std::string active_isa();

}  // namespace kq
