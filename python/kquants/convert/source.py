"""Model sources: what the quantize pipeline reads, from a GGUF file or a
Hugging Face folder converted on the fly.

A source is GGUF-shaped: metadata ``meta`` (keys in file order, looked up
with ``kv()`` and written to a ``kquants.GGUFWriter``) and ``tensors``
(``SrcTensor``). A tensor's ``load()`` returns its data in its GGUF type:
float32 for F32, float16 for F16, uint16 bits for BF16, uint8 blocks for
quantized types; ``release()`` lets the pages of the mapped file go.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np

from .. import _core
from ..gguf import GGUFFile, GGUFWriter
from ..types import type_info
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
        return self.n_rows * type_info(self.type).row_bytes(int(self.ne[0]))

    @property
    def n_rows(self) -> int:
        return int(np.prod(self.ne[1:], dtype=np.int64)) if len(self.ne) > 1 else 1


class FileMetadata:
    """A GGUF file's keys: decoded one at a time on lookup, copied byte for
    byte (types and encoding as they are) when written."""

    def __init__(self, file: GGUFFile):
        self.file = file

    def get(self, key: str, default: Any = None) -> Any:
        return self.file.get(key, default)

    def write(self, w: GGUFWriter, skip: Iterable[str] = ()) -> None:
        w.copy_metadata(self.file, skip)


class ValueMetadata:
    """Keys made here: ``entries`` [(key, value, GGUFValueType, element type
    or None)], written in that order with exactly those types."""

    def __init__(self, entries: Iterable[tuple]):
        self.entries = list(entries)
        self._values = {e[0]: e[1] for e in self.entries}

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def write(self, w: GGUFWriter, skip: Iterable[str] = ()) -> None:
        skip = set(skip)
        for key, value, vtype, sub_type in self.entries:
            if key not in skip:
                w.add_value(key, value, vtype, sub_type)


@dataclass
class ModelSource:
    path: Path
    kind: str                 # "gguf" or "hf"
    meta: Any                 # FileMetadata or ValueMetadata
    tensors: list
    hf_config: dict = field(default_factory=dict)

    def kv(self, key, default=None):
        return self.meta.get(key, default)

    @property
    def arch(self) -> str:
        return self.kv("general.architecture", "")


def gguf_source(path) -> ModelSource:
    path = Path(path)
    f = GGUFFile(path)
    tensors = []
    for t in f.tensors:
        tname = type_info(t.type).name
        st = FLOAT_STORAGE.get(tname)

        def load(name=t.name, st=st):
            data = f.tensor_data(name)
            return data.view(st) if st is not None else data
        tensors.append(SrcTensor(t.name, t.ne, tname, load, lambda name=t.name: f.release(name), origin=str(path)))
    return ModelSource(path, "gguf", FileMetadata(f), tensors)


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


# Inf/NaN have all exponent bits set: |bits| >= the first infinity. As a
# signed integer the positive ones are the largest values, as an unsigned
# integer the negative ones; so two max-reductions (no temporaries) decide it.
_INF_BITS = {2: (np.int16, np.uint16, 0x7C00, 0xFC00),           # float16
             4: (np.int32, np.uint32, 0x7F800000, 0xFF800000)}    # float32
_BF16_INF = (np.int16, np.uint16, 0x7F80, 0xFF80)


def has_nonfinite(x: np.ndarray) -> bool:
    """x: float32, float16, or uint16 bfloat16 bits."""
    if x.size == 0:
        return False
    signed, unsigned, pos, neg = _BF16_INF if x.dtype == np.uint16 else _INF_BITS[x.dtype.itemsize]
    return bool(x.view(signed).max() >= signed(pos) or x.view(unsigned).max() >= unsigned(neg))


def check_finite(x: np.ndarray, name: str, origin: str) -> None:
    """Raises naming the tensor if x (float32/float16/bf16 bits) holds NaN or Inf."""
    x = np.ascontiguousarray(x)
    if not has_nonfinite(x):
        return
    flat = x.reshape(-1)
    bad = ((flat & 0x7F80) == 0x7F80) if x.dtype == np.uint16 else ~np.isfinite(flat)
    raise _core.KQuantsError(
        f"{origin}: tensor {name!r} contains NaN or Inf (first at flat index {int(np.argmax(bad))})")
