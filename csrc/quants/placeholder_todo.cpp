// TEMPORARY: placeholders until the reference quantizers land. Delete this
// file as each real implementation is added.
#include "core/error.h"
#include "quants/ref.h"

namespace kq::ref {
#define KQ_TODO(T)                                                                                 \
    void quantize_row_##T(const float*, void*, int64_t, const float*) { throw Error(#T " not implemented"); } \
    void dequantize_row_##T(const void*, float*, int64_t) { throw Error(#T " not implemented"); }
KQ_TODO(q2_K)
KQ_TODO(q3_K)
KQ_TODO(q4_K)
KQ_TODO(q5_K)
KQ_TODO(q6_K)
}  // namespace kq::ref
