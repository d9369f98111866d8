// C++ exceptions -> Python exception classes.
//   kq::Error      -> KQuantsError (ValueError)
//   kq::GGUFError  -> GGUFError (KQuantsError)
//   kq::IOError    -> KQuantsIOError (OSError)
#include "bindings/bindings.h"
#include "core/error.h"

namespace py = pybind11;

namespace kq::py_bind {

void bind_errors(py::module_& m) {
    static py::exception<Error> base(m, "KQuantsError", PyExc_ValueError);
    static py::exception<GGUFError> gguf(m, "GGUFError", base.ptr());
    static py::exception<IOError> io(m, "KQuantsIOError", PyExc_OSError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const GGUFError& e) {
            py::set_error(gguf, e.what());
        } catch (const Error& e) {
            py::set_error(base, e.what());
        } catch (const IOError& e) {
            py::set_error(io, e.what());
        }
    });
}

}  // namespace kq::py_bind
