// kquants.matmul on NumPy buffers. python/kquants/matmul.py validates and
// normalises the arguments; this takes C-contiguous arrays and releases the
// GIL for the native loops.
#include <pybind11/numpy.h>

#include <algorithm>
#include <string>

#include "bindings/bindings.h"
#include "core/error.h"
#include "core/kernels.h"
#include "matmul/matmul.h"
#include "matmul/membw.h"

namespace py = pybind11;

namespace kq::py_bind {

namespace {

const KernelSet& kernel_set(const std::string& isa) { return isa.empty() ? kernels() : kernels_for(isa); }

void check_bytes(const py::array& w, size_t row_bytes, int64_t rows, int64_t k, const TypeTraits& t,
                 const char* what) {
    if (static_cast<size_t>(w.size()) != row_bytes * static_cast<size_t>(rows))
        throw Error(std::string("matmul: ") + what + " hold " + std::to_string(w.size()) + " bytes, but " +
                    std::to_string(rows) + " rows of " + std::to_string(k) + " " + t.name + " values need " +
                    std::to_string(row_bytes * static_cast<size_t>(rows)));
}

}  // namespace

void bind_matmul(py::module_& m) {
    // Streaming read bandwidth in GB/s (benchmarks/bench_matmul.py).
    m.def(
        "read_bandwidth_gbs",
        [](size_t nbytes, int threads, int reps) {
            py::gil_scoped_release nogil;
            return read_bandwidth_gbs(nbytes, threads, reps);
        },
        py::arg("nbytes"), py::arg("threads") = 1, py::arg("reps") = 3);

    // Attention's softmax row of kernel set `isa` (tests): a copy of x, softmax(scale * x).
    m.def(
        "softmax_row",
        [](py::array_t<float, py::array::c_style | py::array::forcecast> x, float scale, bool round_fp16,
           const std::string& isa) {
            py::array_t<float> out(x.size());
            std::copy(x.data(), x.data() + x.size(), out.mutable_data());
            kernel_set(isa).softmax_row(out.mutable_data(), static_cast<int64_t>(x.size()), scale, round_fp16);
            return out;
        },
        py::arg("x"), py::arg("scale") = 1.0f, py::arg("round_fp16") = false, py::arg("isa") = "");

    // Whether kernel set `isa` multiplies `type_id` from a prepared layout.
    m.def(
        "prepared_row_bytes",
        [](uint32_t type_id, int64_t k, const std::string& isa) {
            return prepared_row_bytes(type_traits(type_id, "matmul: weight type"), k, &kernel_set(isa));
        },
        py::arg("type_id"), py::arg("k"), py::arg("isa") = "");

    // One dot product: a weight row of type_id against an activation row in
    // its vec_dot_type (as quantize_array writes it), with kernel set `isa`.
    m.def(
        "vec_dot",
        [](py::array_t<uint8_t, py::array::c_style> w, py::array_t<uint8_t, py::array::c_style> a, uint32_t type_id,
           int64_t k, const std::string& isa) {
            const TypeTraits& t = type_traits(type_id, "vec_dot: weight type");
            const KernelSet& ks = kernel_set(isa);
            if (!ks[t.id].vec_dot) throw Error(std::string("vec_dot: type ") + t.name + " has no dot product");
            if (static_cast<size_t>(w.size()) != row_size(t, k) ||
                static_cast<size_t>(a.size()) != row_size(type_traits(t.vec_dot_type), k))
                throw Error("vec_dot: row sizes do not match k");
            return ks[t.id].vec_dot(k, w.data(), a.data());
        },
        py::arg("w"), py::arg("a"), py::arg("type_id"), py::arg("k"), py::arg("isa") = "");

    // ggml rows -> the packed layout of kernel set `isa` (uint8 [rows, bytes]).
    m.def(
        "prepare_weights",
        [](py::array_t<uint8_t, py::array::c_style> w, uint32_t type_id, int64_t rows, int64_t k, int threads,
           const std::string& isa) {
            const TypeTraits& t = type_traits(type_id, "matmul: weight type");
            if (rows < 0 || k <= 0) throw Error("matmul: weight shape must be positive");
            const KernelSet& ks = kernel_set(isa);
            check_bytes(w, row_size(t, k), rows, k, t, "weights");
            const size_t pr = prepared_row_bytes(t, k, &ks);
            py::array_t<uint8_t> out({rows, static_cast<int64_t>(pr)});
            const uint8_t* wp = w.data();
            uint8_t* op = out.mutable_data();
            if (pr) {
                py::gil_scoped_release nogil;
                prepare_weights(t, wp, rows, k, op, threads, &ks);
            }
            return out;
        },
        py::arg("w"), py::arg("type_id"), py::arg("rows"), py::arg("k"), py::arg("threads") = 0, py::arg("isa") = "");

    // w: uint8 bytes of m rows of k elements of type_id (ggml rows, or the
    // prepared layout when prepared=True); x: float32 [n, k].
    // Returns float32 [n, m] = x @ W^T.
    m.def(
        "matmul",
        [](py::array_t<uint8_t, py::array::c_style> w, uint32_t type_id, int64_t rows, int64_t k,
           py::array_t<float, py::array::c_style> x, int threads, const std::string& isa, bool prepared) {
            const TypeTraits& t = type_traits(type_id, "matmul: weight type");
            if (rows < 0 || k <= 0) throw Error("matmul: weight shape must be positive");
            const KernelSet* ks = &kernel_set(isa);
            if (prepared)
                check_bytes(w, prepared_row_bytes(t, k, ks), rows, k, t, "prepared weights");
            else
                check_bytes(w, row_size(t, k), rows, k, t, "weights");
            if (x.ndim() != 2 || x.shape(1) != k)
                throw Error("matmul: x must be [n, " + std::to_string(k) + "] to match the weights");
            const int64_t n = x.shape(0);
            py::array_t<float> out({n, rows});
            const uint8_t* wp = w.data();
            const float* xp = x.data();
            float* yp = out.mutable_data();
            {
                py::gil_scoped_release nogil;
                matmul(t, wp, rows, k, xp, n, yp, threads, ks, prepared);
            }
            return out;
        },
        py::arg("w"), py::arg("type_id"), py::arg("rows"), py::arg("k"), py::arg("x"), py::arg("threads") = 0,
        py::arg("isa") = "", py::arg("prepared") = false);
}

}  // namespace kq::py_bind
