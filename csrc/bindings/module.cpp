#include "bindings/bindings.h"

PYBIND11_MODULE(_core, m) {
    m.doc() = "kquants native core";
    kq::py_bind::bind_errors(m);
    kq::py_bind::bind_types(m);
    kq::py_bind::bind_quant(m);
    kq::py_bind::bind_gguf(m);
    kq::py_bind::bind_cuda(m);
    kq::py_bind::bind_runtime(m);
    kq::py_bind::bind_matmul(m);
}
