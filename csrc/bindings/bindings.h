// The extension module kquants._core is split by topic, one file each
// (MLX-style): module.cpp creates the module and calls every bind_* below.
#pragma once
#include <pybind11/pybind11.h>

namespace kq::py_bind {

void bind_errors(pybind11::module_& m);   // errors.cpp
void bind_types(pybind11::module_& m);    // types.cpp: traits table, system info
void bind_quant(pybind11::module_& m);    // quant.cpp: array quantize/dequantize
void bind_gguf(pybind11::module_& m);     // gguf.cpp: GGUF reader and writer
void bind_cuda(pybind11::module_& m);     // cuda.cpp: CUDA backend entry points
void bind_runtime(pybind11::module_& m);  // runtime.cpp: decoder model, scoring
void bind_matmul(pybind11::module_& m);   // matmul.cpp: quantized matrix multiplication

}  // namespace kq::py_bind
