// Instantiates the lane-template quantizers with V512 (lanes512.h).
#include "isa/avx512/quantizers.h"

#include "isa/avx512/lanes512.h"
#include "quants/lanes/kquants.h"
#include "quants/lanes/legacy.h"
#include "quants/lanes/legacy_imatrix.h"

namespace kq::isa_avx512 {

void register_quantizers(KernelSet& ks) {
    using V = V512;
    using namespace kq::lanes;
    // Legacy types: plain rows and importance-weighted rows.
    ks[TypeId::Q4_0].quantize = fast_or_weighted<quantize_q4_0<V>, quantize_sym_weighted<V, Pack<V, 4>, 4, block_q4_0>>;
    ks[TypeId::Q4_1].quantize = fast_or_weighted<quantize_q4_1<V>, quantize_affine_weighted<V, Pack<V, 4>, 4, block_q4_1>>;
    ks[TypeId::Q5_0].quantize = fast_or_weighted<quantize_q5_0<V>, quantize_sym_weighted<V, Pack<V, 4>, 5, block_q5_0>>;
    ks[TypeId::Q5_1].quantize = fast_or_weighted<quantize_q5_1<V>, quantize_affine_weighted<V, Pack<V, 4>, 5, block_q5_1>>;
    // k-quants, with and without importance weights. Pack<V, 4>: the
    // searches run four vectors of sub-blocks side by side, so the end of
    // one trial's sums overlaps the next trial's work (short rows: see
    // quantize_split).
    ks[TypeId::Q2_K].quantize = quantize_split<V, Q2K, 4>;
    ks[TypeId::Q3_K].quantize = quantize_q3_K<V>;
    ks[TypeId::Q4_K].quantize = quantize_split<V, Q4K, 4>;
    ks[TypeId::Q5_K].quantize = quantize_split<V, Q5K, 4>;
    // Q6_K: two vectors side by side measured faster than four (1220 vs
    // 1160 MB/s at 1 thread on Zen 4): its search keeps more live values.
    ks[TypeId::Q6_K].quantize = quantize_split<V, Q6K, 2>;
    // Types that ignore importance weights.
    ks[TypeId::Q8_0].quantize = fast_only<quantize_q8_0<V>>;
    ks[TypeId::Q8_1].quantize = fast_only<quantize_q8_1<V>>;
    ks[TypeId::Q8_K].quantize = fast_only<quantize_q8_K<V>>;
    ks[TypeId::F16].quantize = fast_only<quantize_f16<V>>;
    ks[TypeId::BF16].quantize = fast_only<quantize_bf16<V>>;
}

}  // namespace kq::isa_avx512
