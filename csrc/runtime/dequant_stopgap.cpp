// TEMPORARY: row dequantizers for Q4_0 / Q4_1 / Q8_0 until the reference
// quantizers (branch ref-quants) land; csrc/quants/placeholder_todo.cpp still
// throws for them. Delete this table, keeping row_dequantizer, after merging.
#include <string>

#include "core/blocks.h"
#include "core/error.h"
#include "core/fp16.h"
#include "core/kernels.h"
#include "runtime/linear.h"

namespace kq::rt {
namespace {

// Q4_0: x = d * (q - 8); byte j: low nibble = element j, high = element j + 16.
void dq_q4_0(const void* src, float* y, int64_t n) {
    const auto* b = static_cast<const block_q4_0*>(src);
    for (int64_t i = 0; i < n / QK4_0; ++i, y += QK4_0) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK4_0 / 2; ++j) {
            y[j] = static_cast<float>((b[i].qs[j] & 0x0f) - 8) * d;
            y[j + QK4_0 / 2] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

// Q4_1: x = d * q + m, nibble order as Q4_0.
void dq_q4_1(const void* src, float* y, int64_t n) {
    const auto* b = static_cast<const block_q4_1*>(src);
    for (int64_t i = 0; i < n / QK4_1; ++i, y += QK4_1) {
        const float d = fp16_to_fp32(b[i].d), m = fp16_to_fp32(b[i].m);
        for (int j = 0; j < QK4_1 / 2; ++j) {
            y[j] = static_cast<float>(b[i].qs[j] & 0x0f) * d + m;
            y[j + QK4_1 / 2] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
        }
    }
}

// Q8_0: x = d * q.
void dq_q8_0(const void* src, float* y, int64_t n) {
    const auto* b = static_cast<const block_q8_0*>(src);
    for (int64_t i = 0; i < n / QK8_0; ++i, y += QK8_0) {
        const float d = fp16_to_fp32(b[i].d);
        for (int j = 0; j < QK8_0; ++j) y[j] = static_cast<float>(b[i].qs[j]) * d;
    }
}

struct Stopgap {
    TypeId id;
    dequantize_row_fn fn;
};
const Stopgap kStopgaps[] = {{TypeId::Q4_0, dq_q4_0}, {TypeId::Q4_1, dq_q4_1}, {TypeId::Q8_0, dq_q8_0}};

}  // namespace

dequantize_row_fn row_dequantizer(const TypeTraits& t, const std::string& what) {
    for (const Stopgap& s : kStopgaps)
        if (s.id == t.id) return s.fn;
    const dequantize_row_fn fn = kernels()[t.id].dequantize;
    if (!fn) throw Error(what + ": tensor type " + t.name + " cannot be dequantized");
    return fn;
}

}  // namespace kq::rt
