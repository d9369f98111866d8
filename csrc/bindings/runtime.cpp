// The decoder runtime: kquants._core.LlamaModel and the scoring helpers used
// by python/kquants/model.py and perplexity.py. Hyper-parameters arrive as a
// dict (parsed from GGUF metadata in Python), tensors as NumPy views of the
// file's bytes, which this object keeps alive; nothing is copied.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <vector>

#include "bindings/bindings.h"
#include "core/error.h"
#include "runtime/model.h"
#include "runtime/score.h"

namespace py = pybind11;

namespace kq::py_bind {
namespace {

using IdArray = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

struct PyModel {
    std::unique_ptr<rt::LlamaModel> model;
    std::vector<py::object> keep;     // the NumPy views the weights point into
    std::vector<float> logits;        // scratch for scoring
    std::vector<float> base_logits;
    std::mutex mu;                    // one call at a time per model
};

template <typename T>
T get(const py::dict& d, const char* key) {
    if (!d.contains(key)) throw Error(std::string("model config: missing '") + key + "'");
    return d[key].cast<T>();
}

rt::ModelConfig config_from(const py::dict& d) {
    rt::ModelConfig c;
    c.arch = get<std::string>(d, "arch");
    c.path = get<std::string>(d, "path");
    c.n_vocab = get<int64_t>(d, "n_vocab");
    c.n_embd = get<int64_t>(d, "n_embd");
    c.n_layer = get<int64_t>(d, "n_layer");
    c.n_head = get<int64_t>(d, "n_head");
    c.n_head_kv = get<int64_t>(d, "n_head_kv");
    c.head_dim = get<int64_t>(d, "head_dim");
    c.n_ff = get<int64_t>(d, "n_ff");
    c.n_ctx_train = get<int64_t>(d, "n_ctx_train");
    c.n_ctx = get<int64_t>(d, "n_ctx");
    c.rms_eps = get<float>(d, "rms_eps");
    c.n_rot = get<int>(d, "n_rot");
    c.rope_freq_base = get<float>(d, "rope_freq_base");
    c.rope_freq_scale = get<float>(d, "rope_freq_scale");
    c.rope_neox = get<bool>(d, "rope_neox");
    if (d.contains("kv_f16")) c.kv_f16 = d["kv_f16"].cast<bool>();
    if (d.contains("pack_weights")) {
        const std::string v = d["pack_weights"].cast<std::string>();
        if (v != "off" && v != "on" && v != "auto")
            throw Error("pack_weights must be 'auto', 'on' or 'off' (or a bool), got '" + v + "'");
        c.pack_weights = v == "on" ? rt::ModelConfig::Pack::On : v == "off" ? rt::ModelConfig::Pack::Off : rt::ModelConfig::Pack::Auto;
    }
    return c;
}

IdArray checked_ids(py::handle ids) {
    IdArray a(py::reinterpret_borrow<py::object>(ids));
    if (a.ndim() != 1) throw Error("token ids must be a 1-D sequence");
    return a;
}

// Resets, then decodes ids with logits for rows first .. n-1 into buf.
void eval_chunk(PyModel& m, const int32_t* ids, int64_t n, int64_t first, std::vector<float>& buf, int threads) {
    const int64_t V = m.model->config().n_vocab;
    buf.resize(static_cast<size_t>((n - first) * V));
    m.model->reset();
    m.model->decode(ids, n, first, buf.data(), threads);
}

}  // namespace

void bind_runtime(py::module_& m) {
    py::class_<PyModel>(m, "LlamaModel")
        // tensors: list of (name, uint8 array, ggml type id, ne0, ne1).
        .def(py::init([](const py::dict& cfg, const py::list& tensors) {
                 auto pm = std::make_unique<PyModel>();
                 rt::TensorMap map;
                 for (py::handle h : tensors) {
                     auto tup = h.cast<py::tuple>();
                     rt::WeightView w;
                     w.name = tup[0].cast<std::string>();
                     auto arr = tup[1].cast<py::array_t<uint8_t, py::array::c_style>>();
                     w.type = &type_traits(tup[2].cast<uint32_t>(), w.name.c_str());
                     w.ne0 = tup[3].cast<int64_t>();
                     w.ne1 = tup[4].cast<int64_t>();
                     w.row_bytes = row_size(*w.type, w.ne0);
                     if (static_cast<size_t>(arr.size()) < w.row_bytes * static_cast<size_t>(w.ne1))
                         throw GGUFError("tensor '" + w.name + "' holds fewer bytes than its shape needs");
                     w.data = arr.data();
                     pm->keep.push_back(arr);
                     map[w.name] = w;
                 }
                 pm->model = std::make_unique<rt::LlamaModel>(config_from(cfg), map);
                 return pm;
             }),
             py::arg("config"), py::arg("tensors"))
        .def_property_readonly("n_past", [](PyModel& p) { return p.model->n_past(); })
        .def_property_readonly("n_ctx", [](PyModel& p) { return p.model->config().n_ctx; })
        .def_property_readonly("n_vocab", [](PyModel& p) { return p.model->config().n_vocab; })
        .def("reset", [](PyModel& p) {
            std::lock_guard<std::mutex> lk(p.mu);
            p.model->reset();
        })
        // Appends ids to the cache; returns float32 logits [n - out_begin, n_vocab].
        .def(
            "decode",
            [](PyModel& p, py::handle ids_in, int64_t out_begin, int threads) {
                IdArray ids = checked_ids(ids_in);
                const int64_t n = ids.shape(0);
                if (out_begin < 0) out_begin = std::max<int64_t>(0, n + out_begin);
                if (out_begin > n) throw Error("out_begin exceeds the number of tokens");
                py::array_t<float> out({n - out_begin, p.model->config().n_vocab});
                float* o = out.mutable_data();
                {
                    py::gil_scoped_release nogil;
                    std::lock_guard<std::mutex> lk(p.mu);
                    p.model->decode(ids.data(), n, out_begin, o, threads);
                }
                return out;
            },
            py::arg("ids"), py::arg("out_begin") = 0, py::arg("threads") = 0)
        // Perplexity chunk: from an empty cache, NLL of ids[first+1 .. n-1]
        // given the tokens before each (float64 [n - first - 1]).
        .def(
            "score_chunk",
            [](PyModel& p, py::handle ids_in, int64_t first, int threads) {
                IdArray ids = checked_ids(ids_in);
                const int64_t n = ids.shape(0);
                if (first < 0 || first >= n - 1) throw Error("score_chunk: first must be in [0, n-2]");
                py::array_t<double> nll(n - first - 1);
                double* o = nll.mutable_data();
                {
                    py::gil_scoped_release nogil;
                    std::lock_guard<std::mutex> lk(p.mu);
                    eval_chunk(p, ids.data(), n, first, p.logits, threads);
                    rt::nll_rows(p.logits.data(), n - first - 1, p.model->config().n_vocab, ids.data() + first + 1, o,
                                 threads);
                }
                return nll;
            },
            py::arg("ids"), py::arg("first"), py::arg("threads") = 0);

    // KL-divergence chunk: both models from an empty cache on the same ids;
    // returns dict of per-token arrays (kld, nll, nll_base, p_diff, same_top).
    m.def(
        "kld_chunk",
        [](PyModel& model, PyModel& base, py::handle ids_in, int64_t first, int threads) {
            IdArray ids = checked_ids(ids_in);
            const int64_t n = ids.shape(0);
            if (first < 0 || first >= n - 1) throw Error("kld_chunk: first must be in [0, n-2]");
            const int64_t V = model.model->config().n_vocab;
            if (base.model->config().n_vocab != V)
                throw Error("kl-divergence: the models' vocabularies differ (" + std::to_string(V) + " vs " +
                            std::to_string(base.model->config().n_vocab) + ")");
            const int64_t rows = n - first - 1;
            std::vector<rt::KldRow> res(static_cast<size_t>(rows));
            {
                py::gil_scoped_release nogil;
                // The same object may be passed as both (a model against itself).
                std::unique_lock<std::mutex> lk_model(model.mu, std::defer_lock);
                std::unique_lock<std::mutex> lk_base(base.mu, std::defer_lock);
                if (&base != &model)
                    std::lock(lk_model, lk_base);  // deadlock-free order
                else
                    lk_model.lock();
                eval_chunk(base, ids.data(), n, first, base.base_logits, threads);
                eval_chunk(model, ids.data(), n, first, model.logits, threads);
                rt::kld_rows(model.logits.data(), base.base_logits.data(), rows, V, ids.data() + first + 1,
                             res.data(), threads);
            }
            py::array_t<double> kld(rows), nll(rows), nll_base(rows), p_diff(rows);
            py::array_t<bool> same(rows);
            for (int64_t i = 0; i < rows; ++i) {
                const rt::KldRow& r = res[static_cast<size_t>(i)];
                kld.mutable_at(i) = r.kld;
                nll.mutable_at(i) = r.nll;
                nll_base.mutable_at(i) = r.nll_base;
                p_diff.mutable_at(i) = r.p_diff;
                same.mutable_at(i) = r.same_top;
            }
            py::dict d;
            d["kld"] = kld;
            d["nll"] = nll;
            d["nll_base"] = nll_base;
            d["p_diff"] = p_diff;
            d["same_top"] = same;
            return d;
        },
        py::arg("model"), py::arg("base"), py::arg("ids"), py::arg("first"), py::arg("threads") = 0);
}

}  // namespace kq::py_bind
