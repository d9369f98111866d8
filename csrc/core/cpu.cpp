#include "core/cpu.h"

// One implementation per architecture, chosen at file scope.
#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

#include <cstdlib>

namespace kq {
namespace {

void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

// XCR0 via XGETBV (encoded by hand so this file needs no -mxsave).
unsigned long long xgetbv0() {
    unsigned eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuFeatures detect() {
    CpuFeatures f;
    unsigned r[4];
    cpuid(0, 0, r);
    const unsigned max_leaf = r[0];
    // Vendor string "AuthenticAMD" in ebx, edx, ecx.
    const bool amd = r[1] == 0x68747541u && r[3] == 0x69746e65u && r[2] == 0x444d4163u;
    if (max_leaf < 1) return f;
    cpuid(1, 0, r);
    const bool osxsave = (r[2] >> 27) & 1;
    const bool has_fma = (r[2] >> 12) & 1, has_f16c = (r[2] >> 29) & 1, has_avx = (r[2] >> 28) & 1;
    if (!osxsave || !has_avx) return f;
    const unsigned long long xcr0 = xgetbv0();
    const bool ymm_os = (xcr0 & 0x6) == 0x6;           // SSE + AVX state
    const bool zmm_os = (xcr0 & 0xe6) == 0xe6;         // + opmask, ZMM_Hi256, Hi16_ZMM
    if (!ymm_os || max_leaf < 7) return f;
    cpuid(7, 0, r);
    const unsigned ebx = r[1], ecx = r[2];
    f.avx2 = (ebx >> 5) & 1;
    f.bmi2 = (ebx >> 8) & 1;
    f.fma = has_fma;
    f.f16c = has_f16c;
    if (zmm_os) {
        f.avx512f = (ebx >> 16) & 1;
        f.avx512dq = (ebx >> 17) & 1;
        f.avx512bw = (ebx >> 30) & 1;
        f.avx512vl = (ebx >> 31) & 1;
        f.avx512vnni = (ecx >> 11) & 1;
        cpuid(7, 1, r);
        f.avx512bf16 = (r[0] >> 5) & 1;
        f.fast_dpbf16 = amd && f.avx512bf16;
        // KQUANTS_DPBF16=0/1 overrides the choice (tests run both kernels on any CPU with AVX512_BF16).
        if (const char* e = std::getenv("KQUANTS_DPBF16"); e && *e) f.fast_dpbf16 = f.avx512bf16 && *e != '0';
    }
    return f;
}

}  // namespace
}  // namespace kq

#elif defined(__aarch64__)
#include <sys/auxv.h>

namespace kq {
namespace {
CpuFeatures detect() {
    CpuFeatures f;
    const unsigned long hw = getauxval(AT_HWCAP);
    f.neon = true;                 // mandatory on AArch64
    f.fp16 = (hw >> 9) & 1;        // HWCAP_ASIMDHP
    f.dotprod = (hw >> 20) & 1;    // HWCAP_ASIMDDP
    return f;
}
}  // namespace
}  // namespace kq

#else
namespace kq {
namespace {
CpuFeatures detect() { return {}; }
}  // namespace
}  // namespace kq
#endif

namespace kq {

const CpuFeatures& cpu_features() {
    static const CpuFeatures f = detect();
    return f;
}

std::string cpu_features_string() {
    const CpuFeatures& f = cpu_features();
    struct { bool on; const char* name; } flags[] = {
        {f.avx2, "avx2"}, {f.fma, "fma"}, {f.f16c, "f16c"}, {f.bmi2, "bmi2"},
        {f.avx512f, "avx512f"}, {f.avx512bw, "avx512bw"}, {f.avx512vl, "avx512vl"},
        {f.avx512dq, "avx512dq"}, {f.avx512vnni, "avx512vnni"}, {f.avx512bf16, "avx512bf16"},
        {f.fast_dpbf16, "fast-dpbf16"},
        {f.neon, "neon"}, {f.dotprod, "dotprod"}, {f.fp16, "fp16"},
    };
    std::string s;
    for (const auto& fl : flags)
        if (fl.on) { if (!s.empty()) s += ' '; s += fl.name; }
    return s;
}

}  // namespace kq
