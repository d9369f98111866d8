// quantize_array / dequantize_array on NumPy buffers. The Python wrappers in
// python/kquants/quant.py validate and normalise arguments; these take
// C-contiguous arrays and release the GIL for the native loops.
#include <pybind11/numpy.h>

#include <string>

#include "bindings/bindings.h"
#include "core/error.h"
#include "core/kernels.h"
#include "quants/api.h"

namespace py = pybind11;

namespace kq::py_bind {
namespace {

const KernelSet* kernel_set(const std::string& isa) { return isa.empty() ? nullptr : &kernels_for(isa); }

}  // namespace

void bind_quant(py::module_& m) {
    // src: 2-D C-contiguous array; src_kind: "f32" | "f16" | "bf16" (the
    // last two passed as uint16 bits). Returns uint8 [rows, row_bytes].
    m.def(
        "quantize_rows",
        [](py::array src, const std::string& src_kind, uint32_t type_id, py::object imatrix, int threads,
           const std::string& isa) {
            const TypeTraits& t = type_traits(type_id, "type");
            if (src.ndim() != 2) throw Error("quantize_array: input must be 2-D");
            const int64_t rows = src.shape(0), cols = src.shape(1);
            const size_t rs = row_size(t, cols);
            SrcKind kind = src_kind == "f32" ? SrcKind::F32 : src_kind == "f16" ? SrcKind::F16 : SrcKind::BF16;
            py::array_t<float, py::array::c_style | py::array::forcecast> w;
            const float* wp = nullptr;
            if (!imatrix.is_none()) {
                w = py::array_t<float, py::array::c_style | py::array::forcecast>(imatrix);
                if (w.ndim() != 1 || w.shape(0) != cols)
                    throw Error("quantize_array: imatrix must hold one weight per column (" + std::to_string(cols) +
                                "), got shape with " + std::to_string(w.size()) + " values");
                wp = w.data();
            }
            py::array_t<uint8_t> out({rows, static_cast<int64_t>(rs)});
            const KernelSet* ks = kernel_set(isa);
            const void* sp = src.data();
            uint8_t* dp = out.mutable_data();
            {
                py::gil_scoped_release nogil;
                quantize_rows(sp, kind, rows, cols, t, wp, dp, threads, ks);
            }
            return out;
        },
        py::arg("src"), py::arg("src_kind"), py::arg("type_id"), py::arg("imatrix") = py::none(),
        py::arg("threads") = 0, py::arg("isa") = "");

    // data: uint8 buffer holding rows * row_size bytes. Returns float32 [rows, cols].
    m.def(
        "dequantize_rows",
        [](py::array_t<uint8_t, py::array::c_style> data, uint32_t type_id, int64_t rows, int64_t cols, int threads,
           const std::string& isa) {
            const TypeTraits& t = type_traits(type_id, "type");
            const size_t rs = row_size(t, cols);
            if (rows < 0 || static_cast<size_t>(data.size()) != rs * static_cast<size_t>(rows))
                throw Error("dequantize_array: data holds " + std::to_string(data.size()) + " bytes, but " +
                            std::to_string(rows) + " rows of " + std::to_string(cols) + " " + t.name +
                            " values need " + std::to_string(rs * static_cast<size_t>(std::max<int64_t>(rows, 0))));
            py::array_t<float> out({rows, cols});
            const KernelSet* ks = kernel_set(isa);
            const uint8_t* sp = data.data();
            float* dp = out.mutable_data();
            {
                py::gil_scoped_release nogil;
                dequantize_rows(sp, rows, cols, t, dp, threads, ks);
            }
            return out;
        },
        py::arg("data"), py::arg("type_id"), py::arg("rows"), py::arg("cols"), py::arg("threads") = 0,
        py::arg("isa") = "");
}

}  // namespace kq::py_bind
