"""Array-level quantization: quantize_array / dequantize_array.

Whole-model quantization is ``kquants.quantize(src, dst, preset)``; these
work on one 2-D NumPy array and are byte-identical to ggml.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from . import _core
from .types import TypeLike, type_info


def _source(array) -> tuple[np.ndarray, str]:
    a = np.asarray(array)
    name = a.dtype.name
    if a.dtype == np.float32:
        kind = "f32"
    elif a.dtype == np.float16:
        kind = "f16"
    elif name == "bfloat16":  # ml_dtypes / torch-exported bfloat16
        kind = "bf16"
    else:
        raise _core.KQuantsError(
            f"quantize_array: input dtype {a.dtype} is not supported; use float32, float16 or bfloat16")
    if a.ndim != 2:
        raise _core.KQuantsError(f"quantize_array: input must be 2-D [rows, cols], got shape {a.shape}")
    a = np.ascontiguousarray(a)
    if kind != "f32":
        a = a.view(np.uint16)
    return a, kind


def _check_device(device: str, what: str) -> bool:
    """True for "cuda", False for "cpu"; anything else is an error."""
    if device not in ("cpu", "cuda"):
        raise _core.KQuantsError(f"{what}: device must be 'cpu' or 'cuda', got {device!r}")
    return device == "cuda"


def quantize_array(array, type: TypeLike, imatrix=None, threads: Optional[int] = None,
                   *, isa: str = "", device: str = "cpu") -> np.ndarray:
    """Quantize a 2-D float32/float16/bfloat16 array row by row.

    Returns uint8 ``[rows, row_bytes]``, exactly the bytes llama.cpp writes.
    ``imatrix``: optional importance weights, one float per column.
    ``threads``: worker threads (default: all cores). ``isa``: force a kernel
    set ("generic" is the scalar reference), mainly for tests.
    ``device="cuda"`` quantizes on the GPU (same bytes; see kquants.cuda).
    """
    if _check_device(device, "quantize_array"):
        from .cuda import quantize_array_cuda
        return quantize_array_cuda(array, type, imatrix)
    info = type_info(type)
    a, kind = _source(array)
    if a.shape[1] % info.block_size:
        raise _core.KQuantsError(
            f"quantize_array: row length {a.shape[1]} is not a multiple of the block size "
            f"{info.block_size} of type {info.name}")
    if imatrix is not None:
        imatrix = np.ascontiguousarray(imatrix, dtype=np.float32)
        if imatrix.shape != (a.shape[1],):
            raise _core.KQuantsError(
                f"quantize_array: imatrix must have shape ({a.shape[1]},) (one weight per column), "
                f"got {imatrix.shape}")
    return _core.quantize_rows(a, kind, info.ggml_id, imatrix, int(threads or 0), isa)


def dequantize_array(data, type: TypeLike, shape: Sequence[int], threads: Optional[int] = None,
                     *, isa: str = "", device: str = "cpu") -> np.ndarray:
    """Dequantize bytes of ``type`` into float32 of ``shape`` (last dim = row length)."""
    if _check_device(device, "dequantize_array"):
        from .cuda import dequantize_array_cuda
        return dequantize_array_cuda(data, type, shape)
    info = type_info(type)
    shape = tuple(int(s) for s in shape)
    if not shape:
        raise _core.KQuantsError("dequantize_array: shape must have at least one dimension")
    cols = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
    if cols % info.block_size:
        raise _core.KQuantsError(
            f"dequantize_array: row length {cols} is not a multiple of the block size "
            f"{info.block_size} of type {info.name}")
    buf = np.ascontiguousarray(data)
    if buf.dtype != np.uint8:
        buf = buf.view(np.uint8)
    out = _core.dequantize_rows(buf.reshape(-1), info.ggml_id, rows, cols, int(threads or 0), isa)
    return out.reshape(shape)
