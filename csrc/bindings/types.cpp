// The traits table and system information, as Python data.
#include <pybind11/stl.h>

#include "bindings/bindings.h"
#include "core/cpu.h"
#include "core/kernels.h"
#include "core/threadpool.h"
#include "core/traits.h"

namespace py = pybind11;

namespace kq::py_bind {

void bind_types(py::module_& m) {
    // One dict per row of kTypeTraits; python/kquants/types.py builds the
    // GGMLType enum and TypeInfo records from this list.
    m.def("type_traits", [] {
        py::list rows;
        for (size_t i = 0; i < kNumTypes; ++i) {
            const TypeTraits& t = kTypeTraits[i];
            py::dict d;
            d["name"] = t.name;
            d["ggml_id"] = static_cast<uint32_t>(t.id);
            d["block_size"] = t.block_size;
            d["type_size"] = t.type_size;
            d["bits_per_weight"] = bits_per_weight(t);
            d["is_quantized"] = t.is_quantized;
            d["uses_imatrix"] = t.uses_imatrix;
            d["vec_dot_type"] = static_cast<uint32_t>(t.vec_dot_type);
            d["matmul_rtol"] = t.matmul_rtol;
            rows.append(d);
        }
        return rows;
    });
    m.def("system_info", [] {
        py::dict d;
        d["compiled_isas"] = compiled_isas();
        d["supported_isas"] = supported_isas();
        d["active_isa"] = active_isa();
        d["cpu_features"] = cpu_features_string();
        d["default_threads"] = default_threads();
        return d;
    });
}

}  // namespace kq::py_bind
