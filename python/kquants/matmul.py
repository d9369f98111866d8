"""Quantized matrix multiplication: ``y = x @ W.T`` with W stored quantized.

``W`` is ``[m, k]`` in any weight type (the bytes ``quantize_array`` returns),
``x`` is float ``[n, k]``; the result is float32 ``[n, m]``. ``x`` is
quantized once per call to the type's activation format (Q8_0 / Q8_1 / Q8_K,
as llama.cpp pairs them: ``type_info(t).vec_dot_type``) and the products run
on the persistent thread pool with the best kernels of this CPU.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from . import _core
from .types import TypeLike, type_info


def matmul(w_q, w_type: TypeLike, w_shape: Sequence[int], x, threads: Optional[int] = None,
           *, isa: str = "") -> np.ndarray:
    """Return ``x @ W.T`` as float32.

    ``w_q``: uint8 bytes of W (``quantize_array(W, w_type)``), ``w_shape``:
    ``(m, k)``. ``x``: ``[n, k]`` (or ``[k]``, giving ``[m]``), converted to
    float32. ``threads``: worker threads (default: all cores). ``isa``: force a
    kernel set ("generic" is the scalar reference), mainly for tests.
    """
    info = type_info(w_type)
    shape = tuple(int(s) for s in w_shape)
    if len(shape) != 2 or shape[0] < 0 or shape[1] <= 0:
        raise _core.KQuantsError(f"matmul: w_shape must be (m, k) with k > 0, got {tuple(w_shape)}")
    m, k = shape
    if k % info.block_size:
        raise _core.KQuantsError(
            f"matmul: row length {k} is not a multiple of the block size {info.block_size} of type {info.name}")
    buf = np.ascontiguousarray(w_q)
    if buf.dtype != np.uint8:
        buf = buf.view(np.uint8)
    xa = np.asarray(x)
    if not np.issubdtype(xa.dtype, np.floating):
        raise _core.KQuantsError(f"matmul: x must be a float array, got dtype {xa.dtype}")
    vec = xa.ndim == 1
    if vec:
        xa = xa[None, :]
    if xa.ndim != 2 or xa.shape[1] != k:
        raise _core.KQuantsError(f"matmul: x must be [n, {k}] (or [{k}]) to match W {shape}, got {np.shape(x)}")
    xa = np.ascontiguousarray(xa, dtype=np.float32)
    y = _core.matmul(buf.reshape(-1), info.ggml_id, m, k, xa, int(threads or 0), isa)
    return y[0] if vec else y
