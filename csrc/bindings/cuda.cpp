// The CUDA backend (csrc/gpu/cuda.h) as raw entry points for
// python/kquants/cuda.py, which turns host arrays, DeviceArray,
// __cuda_array_interface__ and DLPack objects into device pointers. Pointers
// cross as Python ints. With the stub backend every call but cuda_info()
// raises KQuantsError.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>

#include "bindings/bindings.h"
#include "core/error.h"
#include "core/traits.h"
#include "cuda_emu/emu_check.h"
#include "gpu/cuda.h"

namespace py = pybind11;

namespace kq::py_bind {
namespace {

// Device memory owned by a Python object (kquants.cuda.DeviceArray keeps one).
class CudaBuffer {
public:
    explicit CudaBuffer(size_t bytes) : p_(cuda::device_alloc(bytes)), n_(bytes) {}
    ~CudaBuffer() { cuda::device_free(p_); }
    CudaBuffer(const CudaBuffer&) = delete;
    CudaBuffer& operator=(const CudaBuffer&) = delete;
    uintptr_t ptr() const { return reinterpret_cast<uintptr_t>(p_); }
    size_t nbytes() const { return n_; }

private:
    void* p_;
    size_t n_;
};

template <class T = void>
T* dptr(uintptr_t p) { return reinterpret_cast<T*>(p); }

SrcKind src_kind(const std::string& s) {
    if (s == "f32") return SrcKind::F32;
    if (s == "f16") return SrcKind::F16;
    if (s == "bf16") return SrcKind::BF16;
    throw Error("cuda quantize: unknown source kind '" + s + "' (f32, f16 or bf16)");
}

cuda::MatmulPath matmul_path(const std::string& path) {
    if (path == "auto") return cuda::MatmulPath::Auto;
    if (path == "vec") return cuda::MatmulPath::Vec;
    if (path == "mma") return cuda::MatmulPath::MMA;
    throw Error("matmul: path must be 'auto', 'vec' or 'mma', got '" + path + "'");
}

// --- DLPack (https://dmlc.github.io/dlpack): the C ABI, declared here. --------
struct DLDevice {
    int32_t device_type;  // 1 = CPU, 2 = CUDA, 3 = CUDA host, 13 = CUDA managed
    int32_t device_id;
};
struct DLDataType {
    uint8_t code;  // 0 int, 1 uint, 2 float, 4 bfloat
    uint8_t bits;
    uint16_t lanes;
};
struct DLTensor {
    void* data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t* shape;
    int64_t* strides;  // in elements; nullptr = C-contiguous
    uint64_t byte_offset;
};
struct DLManagedTensor {
    DLTensor dl_tensor;
    void* manager_ctx;
    void (*deleter)(DLManagedTensor*);
};
struct DLPackVersion {
    uint32_t major, minor;
};
struct DLManagedTensorVersioned {
    DLPackVersion version;
    void* manager_ctx;
    void (*deleter)(DLManagedTensorVersioned*);
    uint64_t flags;
    DLTensor dl_tensor;
};

// Reads a DLPack capsule without consuming it: the capsule (kept alive by
// the caller for the duration of the use) still owns the tensor.
py::dict dlpack_info(const py::capsule& cap) {
    const char* name = cap.name();
    const DLTensor* t = nullptr;
    if (name && std::strcmp(name, "dltensor") == 0)
        t = &static_cast<DLManagedTensor*>(cap.get_pointer())->dl_tensor;
    else if (name && std::strcmp(name, "dltensor_versioned") == 0)
        t = &static_cast<DLManagedTensorVersioned*>(cap.get_pointer())->dl_tensor;
    else
        throw Error("DLPack: expected an unconsumed 'dltensor' capsule");
    py::dict d;
    d["ptr"] = reinterpret_cast<uintptr_t>(static_cast<const char*>(t->data) + t->byte_offset);
    d["device_type"] = t->device.device_type;
    d["device_id"] = t->device.device_id;
    d["code"] = t->dtype.code;
    d["bits"] = t->dtype.bits;
    d["lanes"] = t->dtype.lanes;
    py::list shape, strides;
    for (int i = 0; i < t->ndim; ++i) shape.append(t->shape[i]);
    d["shape"] = py::tuple(shape);
    if (t->strides) {
        for (int i = 0; i < t->ndim; ++i) strides.append(t->strides[i]);
        d["strides"] = py::tuple(strides);
    } else {
        d["strides"] = py::none();
    }
    return d;
}

}  // namespace

void bind_cuda(py::module_& m) {
    m.def("cuda_info", [] {
        const cuda::DeviceInfo& i = cuda::info();
        py::dict d;
        d["compiled"] = i.compiled;
        d["available"] = i.available;
        d["status"] = i.status;
        d["archs"] = i.archs;
        d["runtime_version"] = i.runtime_version;
        d["driver_version"] = i.driver_version;
        d["driver_present"] = i.driver_version > 0;
        d["device_count"] = i.device_count;
        d["device_name"] = i.device_name;
        d["compute_capability"] = std::to_string(i.cc_major) + "." + std::to_string(i.cc_minor);
        d["sm_count"] = i.sm_count;
        d["total_memory"] = i.total_memory;
        return d;
    });
    // The device code compiled for the host vs. the CPU reference (any build).
    m.def("cuda_emulation_check", [] {
        py::gil_scoped_release nogil;
        return cuda_emu::self_check();
    });
    m.def("cuda_has_quantize", [](uint32_t id) { return cuda::has_quantize(static_cast<TypeId>(id)); });
    m.def("cuda_has_matmul", [](uint32_t id) { return cuda::has_matmul(static_cast<TypeId>(id)); });

    py::class_<CudaBuffer>(m, "CudaBuffer")
        .def(py::init<size_t>(), py::arg("nbytes"))
        .def_property_readonly("ptr", &CudaBuffer::ptr)
        .def_property_readonly("nbytes", &CudaBuffer::nbytes);

    // Host <-> device copies of C-contiguous host buffers.
    m.def("cuda_upload", [](uintptr_t dst, py::buffer src) {
        py::buffer_info b = src.request();
        const size_t n = static_cast<size_t>(b.size) * static_cast<size_t>(b.itemsize);
        py::gil_scoped_release nogil;
        cuda::copy_to_device(dptr(dst), b.ptr, n);
    });
    m.def("cuda_download", [](py::buffer dst, uintptr_t src) {
        py::buffer_info b = dst.request(true);
        const size_t n = static_cast<size_t>(b.size) * static_cast<size_t>(b.itemsize);
        py::gil_scoped_release nogil;
        cuda::copy_to_host(b.ptr, dptr<const void>(src), n);
    });
    m.def("cuda_copy", [](uintptr_t dst, uintptr_t src, size_t nbytes) {
        py::gil_scoped_release nogil;
        cuda::copy_device(dptr(dst), dptr<const void>(src), nbytes);
    });
    m.def("cuda_synchronize", [] {
        py::gil_scoped_release nogil;
        cuda::synchronize();
    });
    m.def("dlpack_info", &dlpack_info);

    m.def(
        "cuda_quantize",
        [](uintptr_t src, const std::string& kind, int64_t rows, int64_t cols, uint32_t type_id, uintptr_t imatrix,
           uintptr_t dst) {
            const TypeTraits& t = type_traits(type_id, "quantize_array: type");
            const SrcKind k = src_kind(kind);
            py::gil_scoped_release nogil;
            cuda::quantize(dptr<const void>(src), k, rows, cols, t, dptr<const float>(imatrix), dptr(dst));
        },
        py::arg("src"), py::arg("src_kind"), py::arg("rows"), py::arg("cols"), py::arg("type_id"), py::arg("imatrix"),
        py::arg("dst"));
    m.def(
        "cuda_dequantize",
        [](uintptr_t src, uint32_t type_id, int64_t rows, int64_t cols, uintptr_t dst, bool half) {
            const TypeTraits& t = type_traits(type_id, "dequantize_array: type");
            py::gil_scoped_release nogil;
            cuda::dequantize(dptr<const void>(src), rows, cols, t, dptr(dst),
                             half ? cuda::FloatKind::F16 : cuda::FloatKind::F32);
        },
        py::arg("src"), py::arg("type_id"), py::arg("rows"), py::arg("cols"), py::arg("dst"), py::arg("half"));
    m.def(
        "cuda_matmul",
        [](uint32_t type_id, uintptr_t w, int64_t m_rows, int64_t k, uintptr_t x, int64_t n, uintptr_t y,
           const std::string& path) {
            const TypeTraits& t = type_traits(type_id, "matmul: weight type");
            const cuda::MatmulPath p = matmul_path(path);
            py::gil_scoped_release nogil;
            cuda::matmul(t, dptr<const void>(w), m_rows, k, dptr<const float>(x), n, dptr<float>(y), p);
        },
        py::arg("type_id"), py::arg("w"), py::arg("m"), py::arg("k"), py::arg("x"), py::arg("n"), py::arg("y"),
        py::arg("path") = "auto");

    // Benchmarks (benchmarks/bench_cuda.py): seconds per run, event-timed.
    m.def("cuda_bench_copy", [](uintptr_t dst, uintptr_t src, size_t nbytes, int iters) {
        py::gil_scoped_release nogil;
        return cuda::bench_copy(dptr(dst), dptr<const void>(src), nbytes, iters);
    });
    m.def("cuda_bench_quantize", [](uintptr_t src, int64_t rows, int64_t cols, uint32_t type_id, uintptr_t dst,
                                    int iters) {
        const TypeTraits& t = type_traits(type_id, "bench quantize: type");
        py::gil_scoped_release nogil;
        return cuda::bench_quantize(dptr<const float>(src), rows, cols, t, dptr(dst), iters);
    });
    m.def("cuda_bench_matmul", [](uint32_t type_id, uintptr_t w, int64_t m_rows, int64_t k, uintptr_t x, int64_t n,
                                  uintptr_t y, const std::string& path, int iters) {
        const TypeTraits& t = type_traits(type_id, "bench matmul: weight type");
        const cuda::MatmulPath p = matmul_path(path);
        py::gil_scoped_release nogil;
        return cuda::bench_matmul(t, dptr<const void>(w), m_rows, k, dptr<const float>(x), n, dptr<float>(y), p,
                                  iters);
    });

    // Activation ops (device pointers, float32).
    m.def("cuda_rmsnorm", [](uintptr_t x, uintptr_t w, uintptr_t y, int64_t rows, int64_t n, float eps) {
        py::gil_scoped_release nogil;
        cuda::rmsnorm(dptr<const float>(x), dptr<const float>(w), dptr<float>(y), rows, n, eps);
    });
    m.def("cuda_rope", [](uintptr_t x, uintptr_t pos, int64_t rows, int n_heads, int head_dim, int n_rot,
                          float freq_base, float freq_scale, uintptr_t freq_factors, bool neox) {
        cuda::RopeArgs a;
        a.n_rot = n_rot;
        a.freq_base = freq_base;
        a.freq_scale = freq_scale;
        a.freq_factors = dptr<const float>(freq_factors);
        a.neox = neox;
        py::gil_scoped_release nogil;
        cuda::rope(dptr<float>(x), dptr<const int32_t>(pos), rows, n_heads, head_dim, a);
    });
    m.def("cuda_softmax", [](uintptr_t x, int64_t rows, int64_t n) {
        py::gil_scoped_release nogil;
        cuda::softmax(dptr<float>(x), rows, n);
    });
    m.def("cuda_attention", [](uintptr_t q, uintptr_t k, uintptr_t v, int64_t kv_stride, uintptr_t out, int64_t n,
                               int64_t n_past, int n_head, int n_kv, int hd) {
        py::gil_scoped_release nogil;
        cuda::attention(dptr<const float>(q), dptr<const float>(k), dptr<const float>(v), kv_stride, dptr<float>(out),
                        n, n_past, n_head, n_kv, hd);
    });
    m.def("cuda_swiglu", [](uintptr_t g, uintptr_t u, int64_t n) {
        py::gil_scoped_release nogil;
        cuda::swiglu(dptr<float>(g), dptr<const float>(u), n);
    });
}

}  // namespace kq::py_bind
