// Run-time CPU feature detection (cpuid + XGETBV on x86, hwcaps on ARM).
#pragma once
#include <string>

namespace kq {

struct CpuFeatures {
    // x86: instruction support *and* OS support for the register state.
    bool avx2 = false, fma = false, f16c = false, bmi2 = false;
    bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
    bool avx512vnni = false, avx512bf16 = false;
    // A kernel choice, not an instruction set: vdpbf16ps issues at the rate
    // of an f32 FMA (AMD Zen 4 and later: one 512-bit op per cycle for
    // both, so the bf16 op does twice the multiply-adds). On Intel
    // (Cooper Lake, Sapphire Rapids) it does not, and BF16 mat-mat keeps
    // the f32 kernel there.
    bool fast_dpbf16 = false;
    // ARM
    bool neon = false, dotprod = false, fp16 = false;
};

const CpuFeatures& cpu_features();
std::string cpu_features_string();

}  // namespace kq
