// GGUF reader and writer objects. python/kquants/gguf.py wraps them as
// kquants.GGUFFile / kquants.GGUFWriter; the Python layer does argument
// normalisation (shapes, value typing), these do the file work. MappedFile
// exposes the same read-only mapping for other formats (safetensors).
//
// Zero-copy: tensor data and numeric metadata arrays come back as read-only
// NumPy arrays over the mmap. Each array's base is a capsule owning a
// shared_ptr to the mapping, so the pages stay mapped while any view lives,
// even after close().
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bindings/bindings.h"
#include "core/error.h"
#include "gguf/reader.h"
#include "gguf/writer.h"
#include "quants/api.h"

namespace py = pybind11;

namespace kq::py_bind {
namespace {

using gguf::Mapping;
using gguf::Reader;
using gguf::TensorInfo;
using gguf::Value;
using gguf::ValueType;
using gguf::Writer;
using gguf::WriteValue;

// --- metadata -> Python ---------------------------------------------------------

template <class T>
T load(const uint8_t* p) {
    T x;
    std::memcpy(&x, p, sizeof(T));
    return x;
}
PyObject* u8(const uint8_t* p) { return PyLong_FromUnsignedLong(load<uint8_t>(p)); }
PyObject* i8(const uint8_t* p) { return PyLong_FromLong(load<int8_t>(p)); }
PyObject* u16(const uint8_t* p) { return PyLong_FromUnsignedLong(load<uint16_t>(p)); }
PyObject* i16(const uint8_t* p) { return PyLong_FromLong(load<int16_t>(p)); }
PyObject* u32(const uint8_t* p) { return PyLong_FromUnsignedLong(load<uint32_t>(p)); }
PyObject* i32(const uint8_t* p) { return PyLong_FromLong(load<int32_t>(p)); }
PyObject* f32(const uint8_t* p) { return PyFloat_FromDouble(load<float>(p)); }
PyObject* boolean(const uint8_t* p) { return PyBool_FromLong(p[0] != 0); }
PyObject* u64(const uint8_t* p) { return PyLong_FromUnsignedLongLong(load<uint64_t>(p)); }
PyObject* i64(const uint8_t* p) { return PyLong_FromLongLong(load<int64_t>(p)); }
PyObject* f64(const uint8_t* p) { return PyFloat_FromDouble(load<double>(p)); }

// Scalar decoders indexed by value type id (gguf::kValueTypes order);
// nullptr for STRING and ARRAY.
using ScalarToPy = PyObject* (*)(const uint8_t*);
constexpr ScalarToPy kScalarToPy[] = {u8, i8, u16, i16, u32, i32, f32, boolean, nullptr, nullptr, u64, i64, f64};
static_assert(sizeof(kScalarToPy) / sizeof(kScalarToPy[0]) == 13, "one decoder per GGUF value type");

// GGUF strings should be UTF-8; one that is not comes back as bytes rather
// than failing the whole metadata dict.
PyObject* str_or_bytes(std::string_view s) {
    PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "strict");
    if (o) return o;
    PyErr_Clear();
    return PyBytes_FromStringAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
}

PyObject* checked(PyObject* o) {
    if (!o) throw py::error_already_set();
    return o;
}

py::object to_py(const Mapping& m, const Value& v) {
    if (gguf::is_scalar(v.type)) return py::reinterpret_steal<py::object>(checked(kScalarToPy[int(v.type)](m.data() + v.data)));
    if (v.type == ValueType::STRING) return py::reinterpret_steal<py::object>(checked(str_or_bytes(Reader::string(m, v))));
    py::list out(static_cast<size_t>(v.count));
    if (gguf::is_scalar(v.elem_type)) {
        const ScalarToPy conv = kScalarToPy[int(v.elem_type)];
        const uint64_t size = gguf::value_type_info(v.elem_type).size;
        for (uint64_t i = 0; i < v.count; ++i)
            PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), checked(conv(m.data() + v.data + i * size)));
    } else if (v.elem_type == ValueType::STRING) {
        Reader::for_each_string(m, v, [&](uint64_t i, std::string_view s) {
            PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), checked(str_or_bytes(s)));
        });
    } else {
        for (uint64_t i = 0; i < v.count; ++i)
            PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), to_py(m, v.items[i]).release().ptr());
    }
    return out;
}

// A read-only array over `nbytes` of the mapping at `offset`, keeping it mapped.
py::array view(const std::shared_ptr<const Mapping>& m, uint64_t offset, const py::dtype& dt, uint64_t count) {
    auto* hold = new std::shared_ptr<const Mapping>(m);
    py::capsule base(hold, [](void* p) { delete static_cast<std::shared_ptr<const Mapping>*>(p); });
    // An empty tensor may sit at the very end of the file (or the file may
    // be empty); give NumPy a valid pointer all the same.
    static const uint8_t empty = 0;
    const uint8_t* ptr = count ? m->data() + offset : &empty;
    py::array a(dt, {static_cast<py::ssize_t>(count)}, {}, ptr, base);
    a.attr("setflags")(py::arg("write") = false);
    return a;
}

py::tuple tensor_tuple(const TensorInfo& t) {
    py::list ne;
    for (uint32_t j = 0; j < t.n_dims; ++j) ne.append(t.ne[j]);
    return py::make_tuple(t.name, static_cast<uint32_t>(t.type->id), py::tuple(ne), t.offset, t.nbytes,
                          t.n_elements);
}

std::string tensor_context(const Reader& r, const std::string& name) {
    return r.path() + ": tensor " + gguf::quote(name) + ": ";
}

// --- Python -> metadata ----------------------------------------------------------

// spec: (type_id, data) for scalars and strings (data: bytes), or
// (ARRAY, elem_type_id, count, data) where data is bytes (packed scalars), a
// sequence of bytes (strings) or a sequence of array specs.
WriteValue from_spec(py::handle spec) {
    auto t = py::reinterpret_borrow<py::tuple>(spec);
    const uint32_t id = t[0].cast<uint32_t>();
    const gguf::ValueTypeInfo* info = gguf::find_value_type(id);
    if (!info) throw Error("unknown GGUF value type id " + std::to_string(id));
    WriteValue v;
    v.type = info->id;
    if (v.type != ValueType::ARRAY) {
        v.bytes = t[1].cast<std::string>();  // bytes -> raw bytes
        return v;
    }
    const uint32_t eid = t[1].cast<uint32_t>();
    const gguf::ValueTypeInfo* elem = gguf::find_value_type(eid);
    if (!elem) throw Error("unknown GGUF value type id " + std::to_string(eid));
    v.elem_type = elem->id;
    v.count = t[2].cast<uint64_t>();
    if (gguf::is_scalar(v.elem_type)) {
        v.bytes = t[3].cast<std::string>();
    } else {
        const auto seq = py::reinterpret_borrow<py::sequence>(t[3]);
        v.items.reserve(seq.size());
        for (py::handle item : seq) {
            if (v.elem_type == ValueType::STRING) {
                WriteValue s;
                s.type = ValueType::STRING;
                s.bytes = item.cast<std::string>();
                v.items.push_back(std::move(s));
            } else {
                v.items.push_back(from_spec(item));
            }
        }
    }
    return v;
}

// A whole file mapped read-only (gguf::Mapping), for Python readers of other
// formats: zero-copy views and page release, as the GGUF reader has.
struct MappedFile {
    std::shared_ptr<const Mapping> map;
};

void bind_mapped_file(py::module_& m) {
    py::class_<MappedFile>(m, "MappedFile")
        .def(py::init([](const std::string& path) {
                 py::gil_scoped_release nogil;
                 return MappedFile{Mapping::open(path)};
             }),
             py::arg("path"))
        .def_property_readonly("path", [](const MappedFile& f) { return f.map->path(); })
        .def_property_readonly("size", [](const MappedFile& f) { return f.map->size(); })
        // Bytes [offset, offset + nbytes) as a read-only uint8 array (zero-copy).
        .def(
            "view",
            [](const MappedFile& f, uint64_t offset, uint64_t nbytes) {
                uint64_t end;
                if (!gguf::checked_add(offset, nbytes, &end) || end > f.map->size())
                    throw Error(f.map->path() + ": range [" + std::to_string(offset) + ", +" +
                                std::to_string(nbytes) + ") is past the end of the file (" +
                                std::to_string(f.map->size()) + " bytes)");
                return view(f.map, offset, py::dtype("<u1"), nbytes);
            },
            py::arg("offset"), py::arg("nbytes"))
        .def(
            "release", [](const MappedFile& f, uint64_t offset, uint64_t nbytes) { f.map->release(offset, nbytes); },
            py::arg("offset"), py::arg("nbytes"));
}

void bind_reader(py::module_& m) {
    py::class_<Reader, std::shared_ptr<Reader>>(m, "GGUFReader")
        .def(py::init([](const std::string& path) {
                 py::gil_scoped_release nogil;
                 return std::make_shared<Reader>(path);
             }),
             py::arg("path"))
        .def_property_readonly("path", &Reader::path)
        .def_property_readonly("version", &Reader::version)
        .def_property_readonly("alignment", &Reader::alignment)
        .def_property_readonly("data_offset", &Reader::data_offset)
        .def_property_readonly("file_size", &Reader::file_size)
        .def_property_readonly("closed", &Reader::closed)
        .def("close", &Reader::close)
        // [(key, type_id, elem_type_id or None, count)]: the schema, without
        // decoding values (count: array length, string bytes, 1 for scalars).
        .def("fields",
             [](const Reader& r) {
                 py::list out;
                 for (const auto& kv : r.metadata()) {
                     const Value& v = kv.value;
                     py::object elem = v.type == ValueType::ARRAY ? py::int_(static_cast<uint32_t>(v.elem_type))
                                                                  : py::object(py::none());
                     out.append(py::make_tuple(kv.key, static_cast<uint32_t>(v.type), elem, v.count));
                 }
                 return out;
             })
        .def("value",
             [](const Reader& r, const std::string& key) {
                 const gguf::KeyValue* kv = r.find(key);
                 if (!kv) throw Error(r.path() + ": no metadata key " + gguf::quote(key));
                 auto map = r.mapping();
                 return to_py(*map, kv->value);
             })
        // All metadata as a dict (insertion = file order).
        .def("values",
             [](const Reader& r) {
                 auto map = r.mapping();
                 py::dict d;
                 for (const auto& kv : r.metadata()) d[py::str(kv.key)] = to_py(*map, kv.value);
                 return d;
             })
        // A numeric array's elements as a read-only NumPy view (bool as uint8).
        .def("array",
             [](const Reader& r, const std::string& key) {
                 const gguf::KeyValue* kv = r.find(key);
                 if (!kv) throw Error(r.path() + ": no metadata key " + gguf::quote(key));
                 const Value& v = kv->value;
                 if (v.type != ValueType::ARRAY || !gguf::is_scalar(v.elem_type))
                     throw Error(r.path() + ": metadata " + gguf::quote(key) + " is not an array of numbers");
                 const char* dt = v.elem_type == ValueType::BOOL ? "<u1" : gguf::value_type_info(v.elem_type).np_dtype;
                 return view(r.mapping(), v.data, py::dtype(dt), v.count);
             })
        // [(name, type_id, ne (ggml order), file offset, nbytes, n_elements)]
        .def("tensors",
             [](const Reader& r) {
                 py::list out;
                 for (const TensorInfo& t : r.tensors()) out.append(tensor_tuple(t));
                 return out;
             })
        .def("tensor_data",
             [](const Reader& r, const std::string& name) {
                 const TensorInfo& t = r.tensor(name);
                 return view(r.mapping(), t.offset, py::dtype("<u1"), t.nbytes);
             })
        // Drops the tensor's pages from the resident set (views stay valid).
        .def("release",
             [](const Reader& r, const std::string& name) {
                 const TensorInfo& t = r.tensor(name);
                 r.mapping()->release(t.offset, t.nbytes);
             })
        .def(
            "dequantize",
            [](const Reader& r, const std::string& name, int threads) {
                const TensorInfo& t = r.tensor(name);
                auto map = r.mapping();  // keeps the bytes mapped while the GIL is released
                std::vector<py::ssize_t> shape;
                for (uint32_t j = t.n_dims; j-- > 0;) shape.push_back(t.ne[j]);
                py::array_t<float> out(shape);
                if (t.n_elements == 0) return out;
                const uint8_t* src = map->data() + t.offset;
                float* dst = out.mutable_data();
                try {
                    py::gil_scoped_release nogil;
                    dequantize_rows(src, t.n_rows(), t.row_length(), *t.type, dst, threads);
                } catch (const GGUFError&) {
                    throw;
                } catch (const Error& e) {
                    throw Error(tensor_context(r, name) + e.what());
                }
                return out;
            },
            py::arg("name"), py::arg("threads") = 0);
}

void bind_writer(py::module_& m) {
    py::class_<Writer>(m, "GGUFWriterCore")
        .def(py::init<const std::string&, const std::vector<std::string>&, bool>(), py::arg("path"),
             py::arg("inputs") = std::vector<std::string>{}, py::arg("fsync") = true)
        .def_property_readonly("path", &Writer::path)
        .def_property_readonly("temp_path", &Writer::temp_path)
        .def_property_readonly("alignment", &Writer::alignment)
        .def_property_readonly("n_kv", &Writer::n_kv)
        .def_property_readonly("n_tensors", &Writer::n_tensors)
        .def_property_readonly("n_tensors_written", &Writer::n_tensors_written)
        .def_property_readonly("current_tensor", &Writer::current_tensor)
        .def_property_readonly("current_remaining", &Writer::current_remaining)
        .def_property_readonly("finished", &Writer::finished)
        .def_property_readonly("aborted", &Writer::aborted)
        .def("add_kv", [](Writer& w, const std::string& key, py::handle spec) { w.add_kv(key, from_spec(spec)); })
        .def("copy_kv", &Writer::copy_kv, py::arg("src"), py::arg("key"), py::arg("as_key") = "")
        .def(
            "add_tensor_info",
            [](Writer& w, const std::string& name, const std::vector<int64_t>& ne, uint32_t type_id) {
                return w.add_tensor_info(name, ne, type_traits(type_id, "tensor type"));
            },
            py::arg("name"), py::arg("ne"), py::arg("type_id"))
        .def("write_tensor_data",
             [](Writer& w, py::array_t<uint8_t, py::array::c_style> data) {
                 const uint8_t* p = data.data();
                 const size_t n = static_cast<size_t>(data.size());
                 py::gil_scoped_release nogil;
                 w.write_tensor_data(p, n);
             })
        .def("write_tensor",
             [](Writer& w, const std::string& name, py::array_t<uint8_t, py::array::c_style> data) {
                 const uint8_t* p = data.data();
                 const size_t n = static_cast<size_t>(data.size());
                 py::gil_scoped_release nogil;
                 w.write_tensor(name, p, n);
             })
        .def("finish",
             [](Writer& w) {
                 py::gil_scoped_release nogil;
                 w.finish();
             })
        .def("abort", &Writer::abort);
}

}  // namespace

void bind_gguf(py::module_& m) {
    // [(name, id, size, numpy dtype)] in id order; kquants.gguf builds
    // GGUFValueType from it.
    m.def("gguf_value_types", [] {
        py::list out;
        for (size_t i = 0; i < gguf::kNumValueTypes; ++i) {
            const auto& t = gguf::kValueTypes[i];
            out.append(py::make_tuple(t.name, static_cast<uint32_t>(t.id), t.size, t.np_dtype));
        }
        return out;
    });
    bind_mapped_file(m);
    bind_reader(m);
    bind_writer(m);
}

}  // namespace kq::py_bind
