// Host emulation of the CUDA backend's per-block device code.
//
// The device headers (csrc/cuda/device_math.cuh, search.cuh, quant_*.cuh,
// dequant.cuh, vecdot.cuh) use only a handful of CUDA intrinsics. Defining
// those here lets the host compiler build the very same functions, so their
// bytes can be compared with the CPU reference (kq::ref) in every build, with
// or without CUDA or a GPU. The quantizers' block code is the reference's own
// (csrc/quants/block/); for them this checks the device interface around it
// (block slicing, the imatrix slice, the row's sigma2 pass). The chunked
// dequantizers and the dp4a unpackers are device ports, checked value by value. With -ffp-contract=off the host float arithmetic
// is IEEE single precision without contraction, as the device code compiled
// with -fmad=false -prec-div=true -prec-sqrt=true -ftz=false, so a mismatch
// here is a porting error (the GPU tests then check the real device).
// Exposed as kquants._core.cuda_emulation_check(); tests/test_cuda.py runs it.
#include <math.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

// ---- the CUDA intrinsics the device headers use --------------------------------------
#define __device__
#define __forceinline__ inline
static inline uint32_t __float_as_uint(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
static inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
static inline int __clz(uint32_t x) { return x ? __builtin_clz(x) : 32; }
static inline uint32_t __vsub4(uint32_t a, uint32_t b) {  // per-byte wrap-around subtraction
    uint32_t r = 0;
    for (int i = 0; i < 4; ++i) r |= ((((a >> (8 * i)) & 0xFF) - ((b >> (8 * i)) & 0xFF)) & 0xFFu) << (8 * i);
    return r;
}
static inline int __dp4a(int a, int b, int c) {  // signed bytes
    for (int i = 0; i < 4; ++i) c += static_cast<int8_t>(a >> (8 * i)) * static_cast<int8_t>(b >> (8 * i));
    return c;
}
namespace kq::cuda::dev {
using std::min;
}

#include "core/fp16.h"
#include "core/traits.h"
#include "cuda/types.cuh"
#include "cuda_emu/emu_check.h"
#include "quants/ref.h"

namespace {

using namespace kq;

// Mismatch messages (the first kMaxReports) of the current run.
constexpr size_t kMaxReports = 20;
thread_local std::vector<std::string>* g_report = nullptr;

void fail(const std::string& msg) {
    if (g_report->size() < kMaxReports) g_report->push_back(msg);
}

void check_fp16() {
    for (uint32_t h = 0; h < 65536; ++h) {
        const float a = fp16_to_fp32(static_cast<uint16_t>(h)), b = cuda::dev::fp16_to_fp32(static_cast<uint16_t>(h));
        if (f32_bits(a) != f32_bits(b)) fail("fp16_to_fp32 " + std::to_string(h));
    }
    // A stride through all float32 patterns (every exponent, both signs).
    // The narrowing code is textually the reference's, so this mainly guards
    // against edits; the GPU tests check the device itself exhaustively.
    for (uint64_t u = 0; u < (1ull << 32); u += 65521) {
        const float f = f32_from_bits(static_cast<uint32_t>(u));
        if (fp32_to_fp16(f) != cuda::dev::fp32_to_fp16(f)) fail("fp32_to_fp16 " + std::to_string(u));
        if (fp32_to_bf16(f) != cuda::dev::fp32_to_bf16(f)) fail("fp32_to_bf16 " + std::to_string(u));
    }
}

// Rows of awkward values, n per row.
std::vector<std::vector<float>> cases(int n) {
    std::mt19937 rng(1234);
    std::normal_distribution<float> g(0.f, 1.f);
    std::student_t_distribution<float> t2(2.f);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    std::vector<std::vector<float>> rows;
    auto add = [&](auto gen) {
        std::vector<float> r(static_cast<size_t>(n));
        for (int i = 0; i < n; ++i) r[static_cast<size_t>(i)] = gen(i);
        rows.push_back(r);
    };
    for (int rep = 0; rep < 6; ++rep) add([&](int) { return g(rng); });
    for (int rep = 0; rep < 3; ++rep) add([&](int) { return t2(rng); });
    add([&](int) { return std::fabs(g(rng)) + 0.1f; });
    add([&](int) { return -std::fabs(g(rng)) - 0.1f; });
    add([&](int i) { return i == 0 ? 65504.f : (i == n - 1 ? -65504.f : u(rng) * 65504.f); });
    add([&](int) { return 65504.f; });
    add([&](int) { return 0.f; });
    add([&](int i) { return (i / 32) % 2 ? g(rng) : 0.f; });
    add([&](int) { return g(rng) * 1e-6f; });
    add([&](int) { return g(rng) * 1e-40f; });
    add([&](int) { return std::round(g(rng) * 4.f); });
    add([&](int i) { return i % 97 == 0 ? 1000.f : g(rng) * 0.01f; });
    return rows;
}

template <class Q, class D, class V>
void check_type(const TypeTraits& t) {
    using Block = typename Q::Block;
    const int n = 2048;
    const int bs = static_cast<int>(t.block_size);
    const int nb = n / bs;
    std::vector<float> imat(static_cast<size_t>(n));
    std::mt19937 rng(99);
    std::uniform_real_distribution<float> uw(0.01f, 1.01f);
    for (auto& w : imat) w = uw(rng);
    std::normal_distribution<float> ga(0.f, 1.f);
    int row_id = 0;
    for (const auto& row : cases(n)) {
        for (int with_imatrix = 0; with_imatrix < (t.uses_imatrix ? 2 : 1); ++with_imatrix) {
            const float* qw = with_imatrix ? imat.data() : nullptr;
            std::vector<Block> ref(static_cast<size_t>(nb)), got(static_cast<size_t>(nb));
            t.quantize_ref(row.data(), ref.data(), n, qw);
            // The device's row pass: sum of squares left to right / n.
            float s = 0.0f;
            for (int i = 0; i < n; ++i) s += row[static_cast<size_t>(i)] * row[static_cast<size_t>(i)];
            const float sigma2 = s / static_cast<float>(n);
            for (int i = 0; i < nb; ++i) {
                Block b;
                std::memset(&b, 0xA5, sizeof b);  // unwritten bytes would show
                Q::quantize(row.data() + i * bs, b, qw ? qw + i * bs : nullptr, Q::kRowSigma2 ? sigma2 : 0.0f);
                got[static_cast<size_t>(i)] = b;
            }
            if (std::memcmp(ref.data(), got.data(), sizeof(Block) * static_cast<size_t>(nb)) != 0) {
                int blk = 0;
                while (std::memcmp(&ref[static_cast<size_t>(blk)], &got[static_cast<size_t>(blk)], sizeof(Block)) == 0)
                    ++blk;
                fail(std::string(t.name) + " quantize row " + std::to_string(row_id) + (qw ? " imatrix" : "") +
                     " block " + std::to_string(blk));
            }
            // Dequantize chunk by chunk.
            std::vector<float> dref(static_cast<size_t>(n));
            t.dequantize_ref(ref.data(), dref.data(), n);
            for (int c = 0; c < n / 32; ++c) {
                float v[32];
                cuda::dev::load_chunk<D>(reinterpret_cast<const uint8_t*>(ref.data()), n, c, v);
                for (int l = 0; l < 32; ++l)
                    if (f32_bits(v[l]) != f32_bits(dref[static_cast<size_t>(32 * c + l)])) {
                        fail(std::string(t.name) + " dequantize row " + std::to_string(row_id) + " value " +
                             std::to_string(32 * c + l));
                        l = 32;
                        c = n;
                    }
            }
            // dp4a chunk dots against an 8-bit activation chunk.
            for (int c = 0; c < n / 32; ++c) {
                int8_t aq[32];
                int s0 = 0, s1 = 0;
                for (int l = 0; l < 32; ++l) {
                    aq[l] = static_cast<int8_t>(std::max(-127, std::min(127, static_cast<int>(ga(rng) * 40))));
                    (l < 16 ? s0 : s1) += aq[l];
                }
                int a[8];
                std::memcpy(a, aq, 32);
                cuda::dev::Unpacked u;
                V::unpack(ref[static_cast<size_t>(c / V::kParts)], c % V::kParts, u);
                const float xd = 0.01f;
                const double got_dot = cuda::dev::chunk_dot(u, a, xd, s0, s1);
                double want = 0, mag = 0;
                for (int l = 0; l < 32; ++l) {
                    want += static_cast<double>(dref[static_cast<size_t>(32 * c + l)]) * xd * aq[l];
                    mag += std::fabs(static_cast<double>(dref[static_cast<size_t>(32 * c + l)]) * xd * aq[l]);
                }
                if (!(std::fabs(got_dot - want) <= 1e-5 * mag + 1e-30) && std::isfinite(want)) {
                    fail(std::string(t.name) + " vecdot row " + std::to_string(row_id) + " chunk " +
                         std::to_string(c) + ": " + std::to_string(got_dot) + " vs " + std::to_string(want));
                    c = n;
                }
            }
        }
        ++row_id;
    }
}

}  // namespace

namespace kq::cuda_emu {

std::vector<std::string> self_check() {
    std::vector<std::string> report;
    g_report = &report;
    check_fp16();
#define KQ_EMU(ID, Q, D, V) check_type<cuda::dev::Q, cuda::dev::D, cuda::dev::V>(type_traits(TypeId::ID));
    KQ_CUDA_QUANT_TYPES(KQ_EMU)
#undef KQ_EMU
    g_report = nullptr;
    return report;
}

}  // namespace kq::cuda_emu
