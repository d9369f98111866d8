"""Hand-assembled GGUF bytes for the bad-input and fuzz tests.

Every field is written explicitly, so a test can put any value (wrong,
huge, inconsistent) in any place. Layout as in csrc/gguf/format.h.
"""
from __future__ import annotations

import struct
from typing import Iterable, Optional, Sequence

MAGIC = b"GGUF"
# GGUF value type ids (gguf.h).
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# A few ggml tensor type ids.
T_F32, T_F16, T_Q4_0, T_Q8_0, T_Q4_K = 0, 1, 2, 8, 12


def u32(x: int) -> bytes:
    return struct.pack("<I", x)


def u64(x: int) -> bytes:
    return struct.pack("<Q", x)


def string(s, length: Optional[int] = None) -> bytes:
    b = s.encode() if isinstance(s, str) else bytes(s)
    return u64(len(b) if length is None else length) + b


def kv(key, vtype: int, payload: bytes) -> bytes:
    """key | type | payload (payload already encoded)."""
    return string(key) + u32(vtype) + payload


def kv_u32(key, x: int) -> bytes:
    return kv(key, U32, u32(x))


def kv_str(key, s) -> bytes:
    return kv(key, STRING, string(s))


def array(elem: int, items: Sequence[bytes], count: Optional[int] = None) -> bytes:
    """An array payload: elem type | count | encoded items."""
    return u32(elem) + u64(len(items) if count is None else count) + b"".join(items)


def tensor_info(name, ne: Sequence[int], ttype: int, offset: int, n_dims: Optional[int] = None) -> bytes:
    return (string(name) + u32(len(ne) if n_dims is None else n_dims) + b"".join(u64(d) for d in ne)
            + u32(ttype) + u64(offset))


def header(n_tensors: int, n_kv: int, version: int = 3, magic: bytes = MAGIC) -> bytes:
    return magic + u32(version) + u64(n_tensors) + u64(n_kv)


def gguf(kvs: Iterable[bytes] = (), tensors: Iterable[bytes] = (), data: bytes = b"", *, alignment: int = 32,
         version: int = 3, magic: bytes = MAGIC, n_kv: Optional[int] = None,
         n_tensors: Optional[int] = None) -> bytes:
    """A whole file: header, kvs, tensor infos, zero padding to `alignment`, data."""
    kvs, tensors = list(kvs), list(tensors)
    body = header(len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv,
                  version, magic) + b"".join(kvs) + b"".join(tensors)
    body += b"\0" * (-len(body) % alignment)
    return body + data


def valid_small() -> bytes:
    """A small valid file: two kvs, an F32 tensor [2, 32] and a Q8_0 tensor [1, 32]."""
    f32 = struct.pack("<64f", *range(64))
    q8 = bytes(34)  # one Q8_0 block: fp16 scale + 32 int8
    return gguf([kv_str("general.architecture", "llama"), kv_u32("x", 7)],
                [tensor_info("a", [32, 2], T_F32, 0), tensor_info("b", [32, 1], T_Q8_0, 256)],
                f32 + q8 + b"\0" * (-len(q8) % 32))
