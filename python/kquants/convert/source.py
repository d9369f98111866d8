"""Model sources: what the quantize pipeline reads, from a GGUF file or a
Hugging Face folder converted on the fly.

A source is GGUF-shaped: metadata ``kvs`` (``_io.KV``) and ``tensors``
(``SrcTensor``). A tensor's ``load()`` returns its data in its GGUF type:
float32 for F32, float16 for F16, uint16 bits for BF16, uint8 blocks for
quantized types; ``release()`` lets the pages of the mapped file go.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .. import _core
from ..types import type_info
from . import _io
from .hf import bf16_to_f32

# storage dtype of the float types, by GGUF type name
FLOAT_STORAGE = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


@dataclass
class SrcTensor:
    name: str
    ne: tuple                 # ggml order: ne[0] is the row length
    type: str                 # GGUF type name (F32, F16, BF16, Q8_0, ...)
    load: Callable[[], np.ndarray]
    release: Callable[[], None] = lambda: None
    hf_name: Optional[str] = None     # the checkpoint's name (HF sources)
    permute_heads: Optional[int] = None  # llama q/k: rows were permuted with this head count
    origin: str = ""          # file the data comes from, for messages

    @property
    def nbytes(self) -> int:
        return _io.tensor_nbytes(type_info(self.type).ggml_id, self.ne)

    @property
    def n_rows(self) -> int:
        return int(np.prod(self.ne[1:], dtype=np.int64)) if len(self.ne) > 1 else 1


@dataclass
class ModelSource:
    path: Path
    kind: str                 # "gguf" or "hf"
    kvs: list
    tensors: list
    alignment: int = _io.DEFAULT_ALIGNMENT
    hf_config: dict = field(default_factory=dict)

    def kv(self, key, default=None):
        for kv in self.kvs:
            if kv.key == key:
                return kv.value
        return default

    @property
    def arch(self) -> str:
        return self.kv("general.architecture", "")


def gguf_source(path) -> ModelSource:
    g = _io.read_gguf(path)
    tensors = []
    for t in g.tensors:
        tname = type_info(t.type).name
        st = FLOAT_STORAGE.get(tname)

        def load(t=t, st=st):
            return t.data.view(st) if st is not None else t.data

        def release(t=t):
            g.file.release(t.offset, t.nbytes)
        tensors.append(SrcTensor(t.name, t.ne, tname, load, release, origin=str(path)))
    return ModelSource(Path(path), "gguf", g.kvs, tensors, g.alignment)


def to_float32(data: np.ndarray, type_name: str, ne, threads=None) -> np.ndarray:
    """Any tensor's data -> float32 rows [n_rows, ne[0]]."""
    from ..quant import dequantize_array
    n0 = int(ne[0])
    if type_name == "F32":
        return np.asarray(data, dtype=np.float32).reshape(-1, n0)
    if type_name == "F16":
        return np.asarray(data).view(np.float16).reshape(-1, n0).astype(np.float32)
    if type_name == "BF16":
        return bf16_to_f32(np.asarray(data).view(np.uint16)).reshape(-1, n0)
    rows = int(np.prod(ne[1:], dtype=np.int64)) if len(ne) > 1 else 1
    return dequantize_array(np.asarray(data).view(np.uint8), type_name, (rows, n0), threads=threads)


def check_finite(x: np.ndarray, name: str, origin: str) -> None:
    """Raises naming the tensor if x (float32/float16/bf16 bits) holds NaN or Inf."""
    if x.dtype == np.uint16:  # bf16 bits: exponent all ones
        bad = np.any((x & 0x7F80) == 0x7F80)
    else:
        bad = not np.isfinite(x).all()
    if bad:
        flat = x.reshape(-1)
        if x.dtype == np.uint16:
            idx = int(np.argmax((flat & 0x7F80) == 0x7F80))
        else:
            idx = int(np.argmax(~np.isfinite(flat)))
        raise _core.KQuantsError(f"{origin}: tensor {name!r} contains NaN or Inf (first at flat index {idx})")
