#include "runtime/linear.h"

#include <algorithm>
#include <vector>

#include "core/threadpool.h"
#include "ops/ops.h"

namespace kq::rt {
namespace {

// Weight rows dequantized at once per task: 16 rows of k floats stay in L1/L2
// while every input row is multiplied with them.
constexpr int64_t kRowTile = 16;

}  // namespace

void linear(const WeightView& w, const float* x, int64_t n, float* y, int threads) {
    const int64_t k = w.ne0, m = w.ne1;
    const dequantize_row_fn dq = row_dequantizer(*w.type, w.name);
    const int64_t tiles = (m + kRowTile - 1) / kRowTile;
    parallel_for(tiles, 1, threads, [&](int64_t t0, int64_t t1) {
        std::vector<float> buf(static_cast<size_t>(kRowTile * k));
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t r0 = t * kRowTile, r1 = std::min(m, r0 + kRowTile);
            for (int64_t r = r0; r < r1; ++r)
                dq(w.data + static_cast<size_t>(r) * w.row_bytes, buf.data() + (r - r0) * k, k);
            for (int64_t i = 0; i < n; ++i) {
                const float* xi = x + i * k;
                float* yi = y + i * m;
                for (int64_t r = r0; r < r1; ++r) yi[r] = ops::dot_f32(xi, buf.data() + (r - r0) * k, k);
            }
        }
    });
}

void get_rows(const WeightView& w, const int32_t* ids, int64_t n, float* y) {
    const dequantize_row_fn dq = row_dequantizer(*w.type, w.name);
    for (int64_t i = 0; i < n; ++i)
        dq(w.data + static_cast<size_t>(ids[i]) * w.row_bytes, y + i * w.ne0, w.ne0);
}

}  // namespace kq::rt
