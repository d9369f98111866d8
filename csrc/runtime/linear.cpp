#include "runtime/linear.h"

#include <cstdlib>

#include "core/error.h"
#include "core/kernels.h"
#include "matmul/matmul.h"

namespace kq::rt {

void linear(const WeightView& w, const float* x, int64_t n, float* y, int threads) {
    matmul(*w.type, w.data, w.ne1, w.ne0, x, n, y, threads, nullptr, w.packed);
}

void PackedWeight::Free::operator()(void* p) const { std::free(p); }

PackedWeight::PackedWeight(const WeightView& w, int threads) : view_(w) {
    const size_t rb = prepared_row_bytes(*w.type, w.ne0);
    if (rb == 0) return;
    // 64-byte alignment: one cache line / one AVX-512 register per load.
    const size_t bytes = (rb * static_cast<size_t>(w.ne1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw Error("out of memory packing tensor '" + w.name + "'");
    mem_.reset(static_cast<uint8_t*>(p));
    prepare_weights(*w.type, w.data, w.ne1, w.ne0, p, threads);
    view_.data = mem_.get();
    view_.row_bytes = rb;
    view_.packed = true;
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
