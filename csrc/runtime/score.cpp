#include "runtime/score.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/threadpool.h"

namespace kq::rt {
namespace {

// Round to nearest with the float magic-number trick:
// adding 1.5 * 2^23 leaves the integer in the low mantissa bits (valid for
// |v| < 2^22), rounding to nearest even.
int nearest_int(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    std::memcpy(&i, &t, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

}  // namespace

void nll_rows(const float* logits, int64_t rows, int64_t n_vocab, const int32_t* next, double* nll, int threads) {
    parallel_for(rows, 4, threads, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* l = logits + r * n_vocab;
            float mx = l[0];
            for (int64_t i = 1; i < n_vocab; ++i) mx = std::max(mx, l[i]);
            double sum = 0.0;
            for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(l[i] - mx);
            nll[r] = -(static_cast<double>(l[next[r]] - mx) - std::log(sum));
        }
    });
}

void kld_rows(const float* logits, const float* base, int64_t rows, int64_t n_vocab, const int32_t* next,
              KldRow* out, int threads) {
    parallel_for(rows, 4, threads, [&](int64_t r0, int64_t r1) {
        std::vector<uint16_t> q(static_cast<size_t>(n_vocab));
        for (int64_t r = r0; r < r1; ++r) {
            const int32_t tok = next[r];
            // --- base row -> 16-bit log-probs: lp = scale * q + min_lp ---
            const float* b = base + r * n_vocab;
            float bmax = b[0], bmin = b[0];
            for (int64_t i = 1; i < n_vocab; ++i) {
                bmax = std::max(bmax, b[i]);
                bmin = std::min(bmin, b[i]);
            }
            bmin = std::max(bmin, bmax - 16.0f);  // 16 nats below the top: e^-16 ~ 1e-7
            double bsum = 0.0;
            for (int64_t i = 0; i < n_vocab; ++i) bsum += std::exp(b[i] - bmax);
            const float b_lse = static_cast<float>(std::log(bsum));
            const float min_lp = bmin - bmax - b_lse;
            const float scale = (bmax - bmin) / 65535.0f;  // 16-bit range
            if (scale != 0.0f) {
                const float inv = 1.0f / scale;
                for (int64_t i = 0; i < n_vocab; ++i)
                    q[static_cast<size_t>(i)] = b[i] > bmin ? static_cast<uint16_t>(nearest_int(inv * (b[i] - bmin))) : 0;
            } else {
                std::fill(q.begin(), q.end(), uint16_t{0});
            }
            // --- model row ---
            const float* l = logits + r * n_vocab;
            float mx = l[0];
            int64_t imax = 0;
            for (int64_t i = 1; i < n_vocab; ++i)
                if (l[i] > mx) { mx = l[i]; imax = i; }
            double sum = 0.0;
            for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(l[i] - mx);
            const float lse = static_cast<float>(std::log(sum));
            KldRow& o = out[r];
            o.nll = mx + lse - l[tok];
            o.nll_base = -(scale * q[static_cast<size_t>(tok)] + min_lp);
            const float norm = mx + lse;
            double kld = 0.0;
            int64_t imax_base = -1;
            float lp_base_max = 0.0f;
            for (int64_t i = 0; i < n_vocab; ++i) {
                const float lpb = scale * q[static_cast<size_t>(i)] + min_lp;
                if (i == 0 || lpb > lp_base_max) { lp_base_max = lpb; imax_base = i; }
                if (lpb > -16.0f) kld += std::exp(lpb) * (lpb - l[i] + norm);
            }
            o.kld = kld;
            o.same_top = imax == imax_base;
            o.p_diff = std::exp(-o.nll) - std::exp(-o.nll_base);
        }
    });
}

}  // namespace kq::rt
