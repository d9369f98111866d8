#include "core/traits.h"

#include <cctype>
#include <string>

#include "core/blocks.h"
#include "core/error.h"
#include "quants/ref.h"

namespace kq {

// Tolerance column (matmul_rtol): the error allowed in kquants.matmul on
// every kernel set, per output, relative to sum_k |w * x|, against the exact
// product of the dequantized weights and x. It is dominated by the rounding
// of x to the vec_dot_type: per element at most half a step, i.e. 2^-11
// (F16), 2^-8 (BF16) or amax/254 per block (Q8_0/Q8_1/Q8_K, larger for the
// 32-element blocks of the legacy formats); each bound is about twice the
// largest error measured on the test shapes (tests/test_matmul.py). The
// kernels of every ISA must also agree with the scalar reference to 1e-5 of
// the same scale (same integer sums, only the float summation order differs).
#define KQ_ROW(ID, NAME, BS, TS, QUANT, IMAT, REFQ, REFDQ, DOT, TOL) \
    {TypeId::ID, NAME, BS, TS, QUANT, IMAT, REFQ, REFDQ, TypeId::DOT, TOL}

const TypeTraits kTypeTraits[] = {
    //     id    name    block   bytes/block           quant  imatrix  ref quantize           ref dequantize           dot with  matmul_rtol (0: no matmul)
    KQ_ROW(F32,  "f32",  1,      4,                    false, false, ref::quantize_row_f32,  ref::dequantize_row_f32,  F32,  1e-5f),
    KQ_ROW(F16,  "f16",  1,      2,                    false, false, ref::quantize_row_f16,  ref::dequantize_row_f16,  F16,  1e-3f),
    KQ_ROW(BF16, "bf16", 1,      2,                    false, false, ref::quantize_row_bf16, ref::dequantize_row_bf16, BF16, 8e-3f),
    KQ_ROW(Q4_0, "q4_0", QK4_0,  sizeof(block_q4_0),   true,  true,  ref::quantize_row_q4_0, ref::dequantize_row_q4_0, Q8_0, 1.2e-2f),
    KQ_ROW(Q4_1, "q4_1", QK4_1,  sizeof(block_q4_1),   true,  true,  ref::quantize_row_q4_1, ref::dequantize_row_q4_1, Q8_1, 1.2e-2f),
    KQ_ROW(Q5_0, "q5_0", QK5_0,  sizeof(block_q5_0),   true,  true,  ref::quantize_row_q5_0, ref::dequantize_row_q5_0, Q8_0, 1.2e-2f),
    KQ_ROW(Q5_1, "q5_1", QK5_1,  sizeof(block_q5_1),   true,  true,  ref::quantize_row_q5_1, ref::dequantize_row_q5_1, Q8_1, 1.2e-2f),
    KQ_ROW(Q8_0, "q8_0", QK8_0,  sizeof(block_q8_0),   true,  false, ref::quantize_row_q8_0, ref::dequantize_row_q8_0, Q8_0, 1.2e-2f),
    KQ_ROW(Q8_1, "q8_1", QK8_1,  sizeof(block_q8_1),   true,  false, ref::quantize_row_q8_1, ref::dequantize_row_q8_1, Q8_1, 0.0f),
    KQ_ROW(Q2_K, "q2_K", QK_K,   sizeof(block_q2_K),   true,  true,  ref::quantize_row_q2_K, ref::dequantize_row_q2_K, Q8_K, 8e-3f),
    KQ_ROW(Q3_K, "q3_K", QK_K,   sizeof(block_q3_K),   true,  true,  ref::quantize_row_q3_K, ref::dequantize_row_q3_K, Q8_K, 8e-3f),
    KQ_ROW(Q4_K, "q4_K", QK_K,   sizeof(block_q4_K),   true,  true,  ref::quantize_row_q4_K, ref::dequantize_row_q4_K, Q8_K, 8e-3f),
    KQ_ROW(Q5_K, "q5_K", QK_K,   sizeof(block_q5_K),   true,  true,  ref::quantize_row_q5_K, ref::dequantize_row_q5_K, Q8_K, 8e-3f),
    KQ_ROW(Q6_K, "q6_K", QK_K,   sizeof(block_q6_K),   true,  true,  ref::quantize_row_q6_K, ref::dequantize_row_q6_K, Q8_K, 8e-3f),
    KQ_ROW(Q8_K, "q8_K", QK_K,   sizeof(block_q8_K),   true,  false, ref::quantize_row_q8_K, ref::dequantize_row_q8_K, Q8_K, 0.0f),
};
#undef KQ_ROW

const size_t kNumTypes = sizeof(kTypeTraits) / sizeof(kTypeTraits[0]);

const TypeTraits* find_type(uint32_t ggml_id) {
    for (size_t i = 0; i < kNumTypes; ++i)
        if (static_cast<uint32_t>(kTypeTraits[i].id) == ggml_id) return &kTypeTraits[i];
    return nullptr;
}

const TypeTraits* find_type(std::string_view name) {
    for (size_t i = 0; i < kNumTypes; ++i) {
        std::string_view n = kTypeTraits[i].name;
        if (n.size() != name.size()) continue;
        bool eq = true;
        for (size_t j = 0; j < n.size() && eq; ++j)
            eq = std::tolower(static_cast<unsigned char>(n[j])) == std::tolower(static_cast<unsigned char>(name[j]));
        if (eq) return &kTypeTraits[i];
    }
    return nullptr;
}

const TypeTraits& type_traits(uint32_t ggml_id, const char* what) {
    const TypeTraits* t = find_type(ggml_id);
    if (!t) throw Error(std::string(what) + ": unknown ggml type id " + std::to_string(ggml_id));
    return *t;
}

size_t row_size(const TypeTraits& t, int64_t n) {
    if (n < 0 || n % t.block_size != 0) {
        std::string up = t.name;
        for (auto& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        throw Error("row length " + std::to_string(n) + " is not a multiple of the block size " +
                    std::to_string(t.block_size) + " of type " + up);
    }
    return static_cast<size_t>(n / t.block_size) * t.type_size;
}

}  // namespace kq
