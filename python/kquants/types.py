"""Tensor types, built from the native traits table (csrc/core/traits.cpp).

Nothing here lists types by hand: GGMLType and TypeInfo come from
``_core.type_traits()``, so adding a row there adds it everywhere.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

from . import _core


@dataclass(frozen=True)
class TypeInfo:
    name: str             # upper-case GGUF name, e.g. "Q4_K"
    ggml_id: int          # ggml_type id stored in GGUF
    block_size: int       # elements per block
    type_size: int        # bytes per block
    bits_per_weight: float
    is_quantized: bool
    uses_imatrix: bool
    vec_dot_type: int
    matmul_rtol: float

    def row_bytes(self, n: int) -> int:
        if n % self.block_size:
            raise _core.KQuantsError(
                f"row length {n} is not a multiple of the block size {self.block_size} of type {self.name}")
        return n // self.block_size * self.type_size


_ROWS = _core.type_traits()
_INFOS = {r["ggml_id"]: TypeInfo(name=r["name"].upper(), **{k: v for k, v in r.items() if k != "name"})
          for r in _ROWS}

GGMLType = enum.IntEnum("GGMLType", {info.name: gid for gid, info in _INFOS.items()})
GGMLType.__doc__ = "ggml tensor type ids (as stored in GGUF)."

TypeLike = Union[str, int, "GGMLType"]


def type_info(t: TypeLike) -> TypeInfo:
    """TypeInfo for a type given by name ("q4_k", "Q4_K"), ggml id or GGMLType."""
    if isinstance(t, str):
        key = t.strip().upper()
        for info in _INFOS.values():
            if info.name == key:
                return info
        raise _core.KQuantsError(
            f"unknown type {t!r}; known types: {', '.join(i.name for i in _INFOS.values())}")
    try:
        return _INFOS[int(t)]
    except (KeyError, TypeError, ValueError):
        raise _core.KQuantsError(f"unknown type {t!r}") from None


def types(quantized_only: bool = False) -> list[TypeInfo]:
    """All types in traits-table order."""
    return [i for i in _INFOS.values() if i.is_quantized or not quantized_only]


def system_info() -> dict:
    """What was compiled, what the CPU supports and which ISA is in use;
    ``"cuda"``: the CUDA backend's state (compiled, available, status,
    driver_present, device_name, ...)."""
    info = dict(_core.system_info())
    info["cuda"] = dict(_core.cuda_info())
    return info
