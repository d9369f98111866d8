"""ggml's CPU mul_mat, timed through ctypes on llama-cpp-python's libggml.

The same operation test-backend-ops times for MUL_MAT: a ggml context holding
W (type T, ne = [k, m]) and x (F32, ne = [k, n]), the graph y = mul_mat(W, x)
computed by ggml_graph_compute_with_ctx on n_threads threads (ggml quantizes x
to T's vec_dot_type inside, as kquants.matmul does). Weights live in plain
CPU memory, so no repacked ("extra") buffer type is involved, as in
test-backend-ops' CPU backend tensors.

    g = GGMLMatmul()                      # None-safe: GGMLMatmul.load() returns None if absent
    run = g.prepare(type_id, w_bytes, m, k, x)
    seconds = min(timeit(lambda: run(threads)))
    g.free(run)
"""
from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path
from typing import Optional

import numpy as np


class _InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


def _lib_dir() -> Optional[Path]:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return None
    d = Path(spec.origin).parent / "lib"
    return d if (d / "libggml-cpu.so").exists() else None


class GGMLMatmul:
    def __init__(self, lib_dir: Path):
        mode = getattr(ctypes, "RTLD_GLOBAL", 0)
        self.base = ctypes.CDLL(str(lib_dir / "libggml-base.so"), mode=mode)
        self.cpu = ctypes.CDLL(str(lib_dir / "libggml-cpu.so"), mode=mode)
        vp, i64 = ctypes.c_void_p, ctypes.c_int64
        b, c = self.base, self.cpu
        b.ggml_init.argtypes, b.ggml_init.restype = [_InitParams], vp
        b.ggml_free.argtypes, b.ggml_free.restype = [vp], None
        b.ggml_new_tensor_2d.argtypes, b.ggml_new_tensor_2d.restype = [vp, ctypes.c_int, i64, i64], vp
        b.ggml_mul_mat.argtypes, b.ggml_mul_mat.restype = [vp, vp, vp], vp
        b.ggml_new_graph.argtypes, b.ggml_new_graph.restype = [vp], vp
        b.ggml_build_forward_expand.argtypes, b.ggml_build_forward_expand.restype = [vp, vp], None
        b.ggml_get_data.argtypes, b.ggml_get_data.restype = [vp], vp
        b.ggml_nbytes.argtypes, b.ggml_nbytes.restype = [vp], ctypes.c_size_t
        c.ggml_graph_compute_with_ctx.argtypes = [vp, vp, ctypes.c_int]
        c.ggml_graph_compute_with_ctx.restype = ctypes.c_int
        if hasattr(c, "ggml_cpu_init"):
            c.ggml_cpu_init.argtypes, c.ggml_cpu_init.restype = [], None
            c.ggml_cpu_init()

    @classmethod
    def load(cls) -> Optional["GGMLMatmul"]:
        d = _lib_dir()
        if d is None:
            return None
        try:
            return cls(d)
        except (OSError, AttributeError):
            return None

    def prepare(self, type_id: int, w: np.ndarray, m: int, k: int, x: np.ndarray):
        """A callable run(threads) computing y = x @ W.T in ggml; .y() reads y."""
        n = x.shape[0]
        w = np.ascontiguousarray(w).reshape(-1)
        # Context: tensors (W, x, y) + the graph + the work buffer that
        # ggml_graph_compute_with_ctx takes from it (x converted to the
        # vec_dot_type, plus per-thread scratch), with a wide margin: an
        # allocation failure inside ggml aborts the process.
        mem = 2 * w.nbytes + 16 * n * k + 8 * m * n + (64 << 20)
        ctx = self.base.ggml_init(_InitParams(mem, None, False))
        if not ctx:
            raise MemoryError("ggml_init failed")
        tw = self.base.ggml_new_tensor_2d(ctx, type_id, k, m)
        tx = self.base.ggml_new_tensor_2d(ctx, 0, k, n)  # GGML_TYPE_F32
        if self.base.ggml_nbytes(tw) != w.nbytes:
            self.base.ggml_free(ctx)
            raise ValueError(f"ggml expects {self.base.ggml_nbytes(tw)} weight bytes, got {w.nbytes}")
        ctypes.memmove(self.base.ggml_get_data(tw), w.ctypes.data, w.nbytes)
        xs = np.ascontiguousarray(x, dtype=np.float32)
        ctypes.memmove(self.base.ggml_get_data(tx), xs.ctypes.data, xs.nbytes)
        ty = self.base.ggml_mul_mat(ctx, tw, tx)
        gf = self.base.ggml_new_graph(ctx)
        self.base.ggml_build_forward_expand(gf, ty)
        compute = self.cpu.ggml_graph_compute_with_ctx

        def run(threads: int) -> None:
            if compute(ctx, gf, int(threads)) != 0:
                raise RuntimeError("ggml_graph_compute_with_ctx failed")

        def y() -> np.ndarray:
            buf = (ctypes.c_float * (m * n)).from_address(self.base.ggml_get_data(ty))
            return np.frombuffer(buf, dtype=np.float32).reshape(n, m).copy()

        run.ctx, run.y = ctx, y
        return run

    def free(self, run) -> None:
        if getattr(run, "ctx", None):
            self.base.ggml_free(run.ctx)
            run.ctx = None
