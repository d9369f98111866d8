"""Quantized matrix multiplication: ``y = x @ W.T`` with W stored quantized.

``W`` is ``[m, k]`` in any weight type (the bytes ``quantize_array`` returns),
``x`` is float ``[n, k]``; the result is float32 ``[n, m]``. ``x`` is
quantized once per call to the type's activation format (Q8_0 / Q8_1 / Q8_K,
as llama.cpp pairs them: ``type_info(t).vec_dot_type``) and the products run
on the persistent thread pool with the best kernels of this CPU.

The SIMD kernels read quantized weights in an interleaved layout (16 blocks
side by side, see csrc/matmul/packed.h). ``matmul`` converts each chunk of
rows on the fly; ``PreparedWeight`` converts once, which is what a model
should hold (the one-token mat-vec is then memory bound).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from . import _core
from .types import TypeInfo, TypeLike, type_info


def _weights(w_q, info: TypeInfo, w_shape: Sequence[int]) -> tuple[np.ndarray, int, int]:
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
    return buf.reshape(-1), m, k


def _activations(x, k: int, shape) -> tuple[np.ndarray, bool]:
    xa = np.asarray(x)
    if not np.issubdtype(xa.dtype, np.floating):
        raise _core.KQuantsError(f"matmul: x must be a float array, got dtype {xa.dtype}")
    vec = xa.ndim == 1
    if vec:
        xa = xa[None, :]
    if xa.ndim != 2 or xa.shape[1] != k:
        raise _core.KQuantsError(f"matmul: x must be [n, {k}] (or [{k}]) to match W {shape}, got {np.shape(x)}")
    return np.ascontiguousarray(xa, dtype=np.float32), vec


class PreparedWeight:
    """A weight matrix converted once to the layout of the SIMD kernels.

    ``PreparedWeight(w_q, w_type, w_shape)`` keeps a reference to ``w_q`` (for
    kernel sets that read ggml's rows, e.g. ``isa="generic"``) and, when the
    kernel set of ``isa`` (default: the active one) has a packed layout for
    the type, the packed copy. Use ``pw.matmul(x)`` or ``kquants.matmul(pw, x)``.
    """

    def __init__(self, w_q, w_type: TypeLike, w_shape: Sequence[int], *, isa: str = "",
                 threads: Optional[int] = None):
        self.info = type_info(w_type)
        self._raw, m, k = _weights(w_q, self.info, w_shape)
        self.shape = (m, k)
        if self._raw.size != m * self.info.row_bytes(k):
            raise _core.KQuantsError(
                f"matmul: weights hold {self._raw.size} bytes, but {m} rows of {k} {self.info.name} values need "
                f"{m * self.info.row_bytes(k)}")
        packed = _core.prepare_weights(self._raw, self.info.ggml_id, m, k, int(threads or 0), isa)
        self._packed = packed if packed.shape[1] else None

    @property
    def type(self) -> TypeInfo:
        return self.info

    @property
    def nbytes(self) -> int:
        """Bytes of the layout the kernels read (packed if any, else ggml's)."""
        return int(self._packed.nbytes if self._packed is not None else self._raw.nbytes)

    def matmul(self, x, threads: Optional[int] = None, *, isa: str = "") -> np.ndarray:
        m, k = self.shape
        xa, vec = _activations(x, k, self.shape)
        packed = self._packed is not None and _core.prepared_row_bytes(self.info.ggml_id, k, isa) > 0
        w = self._packed.reshape(-1) if packed else self._raw
        y = _core.matmul(w, self.info.ggml_id, m, k, xa, int(threads or 0), isa, packed)
        return y[0] if vec else y

    def __repr__(self) -> str:
        layout = "packed" if self._packed is not None else "ggml rows"
        return f"PreparedWeight({self.info.name}, shape={self.shape}, {layout}, {self.nbytes} bytes)"


def matmul(w_q, w_type=None, w_shape: Optional[Sequence[int]] = None, x=None, threads: Optional[int] = None,
           *, isa: str = "") -> np.ndarray:
    """Return ``x @ W.T`` as float32.

    ``w_q``: uint8 bytes of W (``quantize_array(W, w_type)``), ``w_shape``:
    ``(m, k)``. ``x``: ``[n, k]`` (or ``[k]``, giving ``[m]``), converted to
    float32. ``threads``: worker threads (default: all cores). ``isa``: force a
    kernel set ("generic" is the scalar reference), mainly for tests.

    ``w_q`` may be a ``PreparedWeight``: then ``matmul(pw, x)`` (or with
    ``w_type``/``w_shape`` given, which must match).
    """
    if isinstance(w_q, PreparedWeight):
        if x is None and w_shape is None:
            x, w_type = w_type, None
        if w_type is not None and type_info(w_type) != w_q.info:
            raise _core.KQuantsError(f"matmul: w_type {w_type!r} does not match the prepared {w_q.info.name}")
        if w_shape is not None and tuple(int(s) for s in w_shape) != w_q.shape:
            raise _core.KQuantsError(f"matmul: w_shape {tuple(w_shape)} does not match the prepared {w_q.shape}")
        return w_q.matmul(x, threads, isa=isa)
    if w_type is None or w_shape is None or x is None:
        raise _core.KQuantsError("matmul: needs w_q, w_type, w_shape and x")
    info = type_info(w_type)
    buf, m, k = _weights(w_q, info, w_shape)
    xa, vec = _activations(x, k, (m, k))
    y = _core.matmul(buf, info.ggml_id, m, k, xa, int(threads or 0), isa, False)
    return y[0] if vec else y
