// kquants.matmul on NumPy buffers. python/kquants/matmul.py validates and
// normalises the arguments; this takes C-contiguous arrays and releases the
// GIL for the native loops.
#include <pybind11/numpy.h>

#include <string>

#include "bindings/bindings.h"
#include "core/error.h"
#include "core/kernels.h"
#include "matmul/matmul.h"

namespace py = pybind11;

namespace kq::py_bind {

void bind_matmul(py::module_& m) {
    // w: uint8 bytes of m rows of k elements of type_id; x: float32 [n, k].
    // Returns float32 [n, m] = x @ W^T.
    m.def(
        "matmul",
        [](py::array_t<uint8_t, py::array::c_style> w, uint32_t type_id, int64_t rows, int64_t k,
           py::array_t<float, py::array::c_style> x, int threads, const std::string& isa) {
            const TypeTraits& t = type_traits(type_id, "matmul: weight type");
            if (rows < 0 || k <= 0) throw Error("matmul: weight shape must be positive");
            const size_t rs = row_size(t, k);
            if (static_cast<size_t>(w.size()) != rs * static_cast<size_t>(rows))
                throw Error("matmul: weights hold " + std::to_string(w.size()) + " bytes, but " +
                            std::to_string(rows) + " rows of " + std::to_string(k) + " " + t.name + " values need " +
                            std::to_string(rs * static_cast<size_t>(rows)));
            if (x.ndim() != 2 || x.shape(1) != k)
                throw Error("matmul: x must be [n, " + std::to_string(k) + "] to match the weights");
            const int64_t n = x.shape(0);
            const KernelSet* ks = isa.empty() ? nullptr : &kernels_for(isa);
            py::array_t<float> out({n, rows});
            const uint8_t* wp = w.data();
            const float* xp = x.data();
            float* yp = out.mutable_data();
            {
                py::gil_scoped_release nogil;
                matmul(t, wp, rows, k, xp, n, yp, threads, ks);
            }
            return out;
        },
        py::arg("w"), py::arg("type_id"), py::arg("rows"), py::arg("k"), py::arg("x"), py::arg("threads") = 0,
        py::arg("isa") = "");
}

}  // namespace kq::py_bind
