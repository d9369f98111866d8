// Native check of the matmul kernels, without Python: every weight type on
// every ISA compiled in and supported here, against the scalar reference
// ("generic") and against the dequantized weights in double precision, with
// the tolerances of the traits table (the checks of tests/test_matmul.py).
// Set KQ_CHECK_VERBOSE=1 to print every case's errors.
//
// Built and run by tests/test_matmul_native.py, mainly to test the NEON
// kernels on an x86 CI machine: cross-compiled for aarch64 and run under
// qemu-aarch64. Prints one line per failure; exit status 1 if any.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/kernels.h"
#include "core/traits.h"
#include "matmul/matmul.h"

namespace {

// Deterministic pseudo-normal numbers (xorshift64, sum of 4 uniforms).
struct Rng {
    uint64_t s;
    float uniform() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return static_cast<float>((s >> 40) & 0xFFFFFF) / 16777216.0f;
    }
    float normal() { return (uniform() + uniform() + uniform() + uniform() - 2.0f) * 1.7320508f; }
};

struct Shape {
    const char* id;
    int64_t m, k, n;  // k < 0: -k blocks
};

// ISA vs the scalar reference: same integer sums, only the float summation
// order differs (tests/test_matmul.py: ISA_RTOL).
constexpr double kIsaRtol = 1e-5;

int g_failures = 0;

void fail(const std::string& what) {
    std::printf("FAIL %s\n", what.c_str());
    ++g_failures;
}

void check_type(const kq::TypeTraits& t, const Shape& s, const std::vector<std::string>& isas) {
    const int64_t k = s.k < 0 ? -s.k * t.block_size : s.k;
    const int64_t m = s.m, n = s.n;
    Rng rng{0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(t.id) << 20) ^ static_cast<uint64_t>(k * 131 + n)};
    std::vector<float> w(m * k), x(n * k), wd(m * k);
    for (auto& v : w) v = rng.normal();
    for (auto& v : x) v = rng.normal();
    const size_t rs = kq::row_size(t, k);
    std::vector<uint8_t> q(rs * m);
    for (int64_t r = 0; r < m; ++r) {
        t.quantize_ref(&w[r * k], &q[r * rs], k, nullptr);
        t.dequantize_ref(&q[r * rs], &wd[r * k], k);
    }
    std::vector<double> ref(n * m), scale(n * m);
    for (int64_t c = 0; c < n; ++c)
        for (int64_t r = 0; r < m; ++r) {
            double s1 = 0, s2 = 0;
            for (int64_t i = 0; i < k; ++i) {
                s1 += static_cast<double>(x[c * k + i]) * wd[r * k + i];
                s2 += std::fabs(static_cast<double>(x[c * k + i]) * wd[r * k + i]);
            }
            ref[c * m + r] = s1;
            scale[c * m + r] = s2 + 1e-30;
        }
    std::vector<float> gen(n * m), y(n * m);
    kq::matmul(t, q.data(), m, k, x.data(), n, gen.data(), 2, &kq::kernels_for("generic"));
    auto err = [&](const std::vector<float>& a, bool vs_gen) {
        double e = 0;
        for (int64_t i = 0; i < n * m; ++i) {
            const double d = std::fabs(a[i] - (vs_gen ? static_cast<double>(gen[i]) : ref[i])) / scale[i];
            e = std::isfinite(a[i]) ? (d > e ? d : e) : 1e30;
        }
        return e;
    };
    for (const std::string& isa : isas) {
        const kq::KernelSet& ks = kq::kernels_for(isa);
        kq::matmul(t, q.data(), m, k, x.data(), n, y.data(), 2, &ks);
        const double e_ref = err(y, false), e_gen = err(y, true);
        char msg[256];
        std::snprintf(msg, sizeof msg, "%s %s %s: error vs dequantized %.3g, vs generic %.3g, rtol %.3g", t.name,
                      s.id, isa.c_str(), e_ref, e_gen, static_cast<double>(t.matmul_rtol));
        if (std::getenv("KQ_CHECK_VERBOSE")) std::printf("%s\n", msg);
        if (e_ref > t.matmul_rtol || e_gen > kIsaRtol) fail(msg);
        {  // vec_dot of row 0 and column 0 against the same output of generic
            const kq::TypeTraits& at = kq::type_traits(t.vec_dot_type);
            std::vector<uint8_t> arow(kq::row_size(at, k));
            at.quantize_ref(x.data(), arow.data(), k, nullptr);
            const float d = ks[t.id].vec_dot(k, q.data(), arow.data());
            if (!(std::fabs(d - gen[0]) <= kIsaRtol * scale[0]))
                fail(std::string(t.name) + " " + s.id + " " + isa + ": vec_dot " + std::to_string(d) + " vs " +
                     std::to_string(gen[0]));
        }
        const size_t pr = kq::prepared_row_bytes(t, k, &ks);
        if (pr) {  // prepared weights give the same bytes of output
            std::vector<uint8_t> p(pr * m);
            kq::prepare_weights(t, q.data(), m, k, p.data(), 2, &ks);
            std::vector<float> yp(n * m);
            kq::matmul(t, p.data(), m, k, x.data(), n, yp.data(), 1, &ks, true);
            if (std::memcmp(yp.data(), y.data(), sizeof(float) * n * m) != 0)
                fail(std::string(t.name) + " " + s.id + " " + isa + ": prepared weights differ");
        }
    }
}

}  // namespace

int main() {
    const Shape shapes[] = {
        {"one_block_n7", 37, -1, 7}, {"m67_n1", 67, -2, 1},      {"m37_n7", 37, -2, 7},
        {"large_k_n3", 5, 14336, 3}, {"m9_n512", 9, -2, 512},
    };
    std::vector<std::string> isas;
    for (const std::string& isa : kq::supported_isas())
        if (isa != "generic") isas.push_back(isa);
    std::printf("ISAs:");
    for (const auto& i : isas) std::printf(" %s", i.c_str());
    std::printf("\n");
    int checked = 0;
    for (size_t i = 0; i < kq::kNumTypes; ++i) {
        const kq::TypeTraits& t = kq::kTypeTraits[i];
        if (!kq::kernels_for("generic")[t.id].gemm || t.matmul_rtol <= 0) continue;
        for (const Shape& s : shapes) {
            check_type(t, s, isas);
            ++checked;
        }
    }
    std::printf("%d type x shape cases, %d failures\n", checked, g_failures);
    return g_failures ? 1 : 0;
}
