// F32 / F16 / BF16 "quantizers": element-wise conversions (block size 1).
#include <cstring>

#include "core/fp16.h"
#include "quants/ref.h"

namespace kq::ref {

void quantize_row_f32(const float* x, void* y, int64_t n, const float*) {
    std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}
void dequantize_row_f32(const void* x, float* y, int64_t n) {
    std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}

void quantize_row_f16(const float* x, void* y, int64_t n, const float*) {
    auto* out = static_cast<uint16_t*>(y);
    for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(x[i]);
}
void dequantize_row_f16(const void* x, float* y, int64_t n) {
    const auto* in = static_cast<const uint16_t*>(x);
    for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(in[i]);
}

void quantize_row_bf16(const float* x, void* y, int64_t n, const float*) {
    auto* out = static_cast<uint16_t*>(y);
    for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(x[i]);
}
void dequantize_row_bf16(const void* x, float* y, int64_t n) {
    const auto* in = static_cast<const uint16_t*>(x);
    for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(in[i]);
}

}  // namespace kq::ref
