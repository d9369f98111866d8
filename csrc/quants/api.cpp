#include "quants/api.h"

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "core/fp16.h"
#include "core/threadpool.h"

namespace kq {
namespace {

// Rows per task: enough work per chunk (~64K values) to amortise the hand-off.
int64_t grain_rows(int64_t cols) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, cols)); }

void to_f32(const void* src, SrcKind kind, int64_t offset, int64_t n, float* out) {
    switch (kind) {
        case SrcKind::F32: {
            const float* s = static_cast<const float*>(src) + offset;
            std::copy(s, s + n, out);
            break;
        }
        case SrcKind::F16: {
            const uint16_t* s = static_cast<const uint16_t*>(src) + offset;
            for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(s[i]);
            break;
        }
        case SrcKind::BF16: {
            const uint16_t* s = static_cast<const uint16_t*>(src) + offset;
            for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_fp32(s[i]);
            break;
        }
    }
}

}  // namespace

void quantize_rows(const void* src, SrcKind kind, int64_t rows, int64_t cols, const TypeTraits& type,
                   const float* imatrix, void* dst, int threads, const KernelSet* ks) {
    const size_t rs = row_size(type, cols);
    const quantize_row_fn q = (ks ? *ks : kernels())[type.id].quantize;
    if (!q) throw Error(std::string("type ") + type.name + " cannot be quantized to");
    const float* w = type.uses_imatrix ? imatrix : nullptr;
    // F16 / BF16 rows are widened by that type's own dequantize kernel (the
    // active ISA's: F16C / AVX-512 conversions, exact like the scalar one),
    // which otherwise would take longer than a legacy quantizer.
    const KernelSet& set = ks ? *ks : kernels();
    const dequantize_row_fn widen = kind == SrcKind::F16    ? set[TypeId::F16].dequantize
                                    : kind == SrcKind::BF16 ? set[TypeId::BF16].dequantize
                                                            : nullptr;
    parallel_for(rows, grain_rows(cols), threads, [&](int64_t r0, int64_t r1) {
        std::vector<float> buf(kind == SrcKind::F32 ? 0 : static_cast<size_t>(cols));
        for (int64_t r = r0; r < r1; ++r) {
            const float* row = static_cast<const float*>(src) + r * cols;
            if (kind != SrcKind::F32) {
                if (widen)
                    widen(static_cast<const uint16_t*>(src) + r * cols, buf.data(), cols);
                else
                    to_f32(src, kind, r * cols, cols, buf.data());
                row = buf.data();
            }
            q(row, static_cast<uint8_t*>(dst) + static_cast<size_t>(r) * rs, cols, w);
        }
    });
}

void dequantize_rows(const void* src, int64_t rows, int64_t cols, const TypeTraits& type, float* dst,
                     int threads, const KernelSet* ks) {
    const size_t rs = row_size(type, cols);
    const dequantize_row_fn dq = (ks ? *ks : kernels())[type.id].dequantize;
    if (!dq) throw Error(std::string("type ") + type.name + " cannot be dequantized");
    parallel_for(rows, grain_rows(cols), threads, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r)
            dq(static_cast<const uint8_t*>(src) + static_cast<size_t>(r) * rs, dst + r * cols, cols);
    });
}

}  // namespace kq
