#include "runtime/linear.h"

#include "core/error.h"
#include "core/kernels.h"
#include "matmul/matmul.h"

namespace kq::rt {

void linear(const WeightView& w, const float* x, int64_t n, float* y, int threads) {
    matmul(*w.type, w.data, w.ne1, w.ne0, x, n, y, threads);
}

void get_rows(const WeightView& w, const int32_t* ids, int64_t n, float* y) {
    const dequantize_row_fn dq = row_dequantizer(*w.type, w.name);
    for (int64_t i = 0; i < n; ++i)
        dq(w.data + static_cast<size_t>(ids[i]) * w.row_bytes, y + i * w.ne0, w.ne0);
}

dequantize_row_fn row_dequantizer(const TypeTraits& t, const std::string& what) {
    const dequantize_row_fn fn = kernels()[t.id].dequantize;
    if (!fn) throw Error(what + ": tensor type " + t.name + " cannot be dequantized");
    return fn;
}

}  // namespace kq::rt
