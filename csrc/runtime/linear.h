// The decoder's linear layer behind one small interface, so the matmul
// implementation can change without touching the model code.
//
//   y[n, m] = x[n, k] @ W^T      W: m rows of k values of any tensor type
//
// A weight is a view of GGUF tensor data (ggml layout: ne0 = k values per
// row, ne1 = m rows), never copied.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "core/traits.h"

namespace kq::rt {

struct WeightView {
    std::string name;                 // GGUF tensor name, for error messages
    const uint8_t* data = nullptr;
    const TypeTraits* type = nullptr;
    int64_t ne0 = 0;                  // values per row (k)
    int64_t ne1 = 1;                  // rows (m)
    size_t row_bytes = 0;
    bool packed = false;              // data holds rows in the kernels' prepared layout
    bool present() const { return data != nullptr; }
};

// Owns a weight converted to the active kernel set's packed layout (what
// kq::prepare_weights writes), so matmuls skip the per-call packing.
class PackedWeight {
public:
    // Empty (no-op) when the kernel set reads ggml's rows for this type.
    explicit PackedWeight(const WeightView& w, int threads);
    // The view to use: packed if available, else the original.
    const WeightView& view() const { return view_; }

private:
    struct Free { void operator()(void* p) const; };
    std::unique_ptr<uint8_t, Free> mem_;
    WeightView view_;
};

// y[n, w.ne1] = x[n, w.ne0] @ W^T on `threads` threads (kq::matmul: x is
// quantized to the weight type's vec_dot_type, as ggml does).
void linear(const WeightView& w, const float* x, int64_t n, float* y, int threads);

// y[i, :] = row ids[i] of W, dequantized (embedding lookup). ids must be in
// range (checked by the caller).
void get_rows(const WeightView& w, const int32_t* ids, int64_t n, float* y);

// Row dequantizer for a type; throws naming `what`
// when the type cannot be dequantized.
dequantize_row_fn row_dequantizer(const TypeTraits& t, const std::string& what);

}  // namespace kq::rt
