"""GGUF file I/O for the convert / quantize pipeline.

A small, self-contained adapter: a reader that memory-maps a GGUF file and a
streaming writer that writes to a temporary file beside the destination and
renames it into place only when every tensor is written (no partial output).
The pipeline talks only to ``read_gguf`` / ``GGUFOutput`` / ``KV``, so moving
to the native ``kquants.GGUFFile`` / ``kquants.GGUFWriter`` is local to here.

File layout (GGUF v3, little endian):
    magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
    n_kv x      (string key, u32 value type, value)
    n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)
    zero padding to ``general.alignment`` (default 32), then the tensor data;
    each tensor starts at a multiple of the alignment, padded with zeros.
A string is a u64 byte length then UTF-8 bytes; an array is a u32 element
type, a u64 count, then the elements.
"""
from __future__ import annotations

import mmap
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np

from .. import _core
from ..types import type_info

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
DEFAULT_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT in ggml

# GGUF value types: id -> (name, numpy dtype or None for string/array/bool special cases)
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, \
    T_UINT64, T_INT64, T_FLOAT64 = range(13)
_SCALAR = {
    T_UINT8: "<u1", T_INT8: "<i1", T_UINT16: "<u2", T_INT16: "<i2", T_UINT32: "<u4", T_INT32: "<i4",
    T_FLOAT32: "<f4", T_BOOL: "<u1", T_UINT64: "<u8", T_INT64: "<i8", T_FLOAT64: "<f8",
}
_U64 = struct.Struct("<Q")
# struct formats of the scalar types
_STRUCT = {
    T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h", T_UINT32: "<I", T_INT32: "<i",
    T_FLOAT32: "<f", T_BOOL: "<B", T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d",
}


class KV:
    """One metadata entry. ``value``: a Python scalar / str, or for arrays a
    list of str or a NumPy array; ``sub_type``: the element type of an array.

    Entries read from a file keep their encoded bytes (``raw``: type + value)
    so that copying them to an output costs no re-encoding, and a long
    string array (the token list) is decoded only when ``value`` is read.
    Treat a KV as immutable: make a new one to change a value.
    """
    __slots__ = ("key", "type", "_value", "sub_type", "raw", "_lazy")

    def __init__(self, key: str, type: int, value=None, sub_type: Optional[int] = None, *, raw=None, lazy=None):
        self.key, self.type, self._value, self.sub_type, self.raw, self._lazy = key, type, value, sub_type, raw, lazy

    @property
    def value(self):
        if self._lazy is not None:
            self._value, self._lazy = self._lazy(), None
        return self._value

    def __repr__(self) -> str:
        return f"KV({self.key!r}, type={self.type}, sub_type={self.sub_type})"


@dataclass
class TensorInfo:
    """A tensor of a GGUF file: ``ne`` in ggml order (ne[0] = row length)."""
    name: str
    ne: tuple
    type: int
    offset: int = 0   # in a file read by read_gguf: absolute byte offset of the data
    data: Optional[np.ndarray] = field(default=None, repr=False)  # uint8 view into the mmap

    @property
    def nbytes(self) -> int:
        return tensor_nbytes(self.type, self.ne)


class MappedFile:
    """A read-only memory map of a whole file. ``view`` gives zero-copy uint8
    arrays; ``release`` drops a range's pages from this process (madvise
    DONTNEED), so streaming a model does not grow the resident set."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                self.size = os.fstat(f.fileno()).st_size
                self.mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if self.size else None
        except OSError as e:
            raise _core.KQuantsIOError(f"{self.path}: cannot open: {e.strerror or e}") from None
        self.array = (np.frombuffer(self.mm, dtype=np.uint8) if self.mm is not None
                      else np.zeros(0, dtype=np.uint8))

    def view(self, offset: int, nbytes: int) -> np.ndarray:
        if offset < 0 or offset + nbytes > self.size:
            raise _core.KQuantsIOError(
                f"{self.path}: range [{offset}, {offset + nbytes}) is past the end of the file ({self.size} bytes)")
        return self.array[offset:offset + nbytes]

    def release(self, offset: int, nbytes: int) -> None:
        if self.mm is None or not hasattr(self.mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
            return
        page = mmap.PAGESIZE
        start = offset // page * page
        end = min(self.size, offset + nbytes)
        if end > start:
            try:
                self.mm.madvise(mmap.MADV_DONTNEED, start, end - start)
            except (OSError, ValueError):
                pass


def tensor_nbytes(ggml_type: int, ne) -> int:
    info = type_info(ggml_type)
    rows = int(np.prod(ne[1:], dtype=np.int64)) if len(ne) > 1 else 1
    return rows * info.row_bytes(int(ne[0]))


def _pad(n: int, align: int) -> int:
    return (n + align - 1) // align * align


@dataclass
class GGUFContents:
    path: Path
    kvs: list
    tensors: list
    alignment: int
    file: Any = field(default=None, repr=False)  # MappedFile

    def kv(self, key: str, default=None):
        for kv in self.kvs:
            if kv.key == key:
                return kv.value
        return default

    def tensor(self, name: str) -> TensorInfo:
        for t in self.tensors:
            if t.name == name:
                return t
        raise _core.KQuantsError(f"{self.path}: no tensor named {name!r}")


class _Cursor:
    def __init__(self, buf, path):
        self.buf = buf
        self.pos = 0
        self.path = path

    def take(self, fmt: str):
        try:
            v = struct.unpack_from(fmt, self.buf, self.pos)
        except struct.error:
            raise _core.GGUFError(f"{self.path}: truncated GGUF header at byte {self.pos}") from None
        self.pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self) -> str:
        n = self.take("<Q")
        if self.pos + n > len(self.buf):
            raise _core.GGUFError(f"{self.path}: string of {n} bytes runs past the end of the file")
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", errors="surrogateescape")
        self.pos += n
        return s

    def at(self, pos: int) -> "_Cursor":
        self.pos = pos
        return self

    def skip_strings(self, n: int) -> None:
        buf, pos, end = self.buf, self.pos, len(self.buf)
        unpack = _U64.unpack_from
        try:
            for _ in range(n):
                pos += 8 + unpack(buf, pos)[0]
        except struct.error:
            raise _core.GGUFError(f"{self.path}: truncated string array at byte {pos}") from None
        if pos > end:
            raise _core.GGUFError(f"{self.path}: string array runs past the end of the file")
        self.pos = pos

    def strings(self, n: int) -> list:
        """n strings in a row (token lists: a tight loop, no per-item method calls)."""
        buf, pos, end = self.buf, self.pos, len(self.buf)
        unpack = _U64.unpack_from
        out = []
        append = out.append
        try:
            for _ in range(n):
                (ln,) = unpack(buf, pos)
                pos += 8
                append(str(buf[pos:pos + ln], "utf-8", "surrogateescape"))
                pos += ln
        except struct.error:
            raise _core.GGUFError(f"{self.path}: truncated string array at byte {pos}") from None
        if pos > end:
            raise _core.GGUFError(f"{self.path}: string array runs past the end of the file")
        self.pos = pos
        return out

    def value(self, vtype: int):
        if vtype == T_STRING:
            return self.string(), None
        if vtype == T_ARRAY:
            sub = self.take("<I")
            n = self.take("<Q")
            if sub == T_STRING:
                return self.strings(n), sub
            if sub == T_ARRAY:
                return [self.value(T_ARRAY)[0] for _ in range(n)], sub
            if sub not in _SCALAR:
                raise _core.GGUFError(f"{self.path}: unknown GGUF array element type {sub}")
            dt = np.dtype(_SCALAR[sub])
            end = self.pos + n * dt.itemsize
            if end > len(self.buf):
                raise _core.GGUFError(f"{self.path}: array runs past the end of the file")
            arr = np.frombuffer(self.buf, dtype=dt, count=n, offset=self.pos).copy()
            if sub == T_BOOL:
                arr = arr.astype(bool)
            self.pos = end
            return arr, sub
        if vtype not in _SCALAR:
            raise _core.GGUFError(f"{self.path}: unknown GGUF value type {vtype}")
        v = self.take(_STRUCT[vtype])
        return (bool(v) if vtype == T_BOOL else v), None


def read_gguf(path) -> GGUFContents:
    """Parses the header of a GGUF file; tensor data stays memory-mapped."""
    path = Path(path)
    if not path.is_file():
        raise _core.KQuantsIOError(f"{path}: no such GGUF file")
    mf = MappedFile(path)
    mm = mf.array
    buf = mf.mm if mf.mm is not None else b""   # slicing an mmap gives bytes: fast header parsing
    if len(mm) < 24 or bytes(mm[:4]) != GGUF_MAGIC:
        raise _core.GGUFError(f"{path}: not a GGUF file (bad magic)")
    c = _Cursor(buf, path)
    c.pos = 4
    version = c.take("<I")
    if version not in (2, 3):
        raise _core.GGUFError(f"{path}: unsupported GGUF version {version}")
    n_tensors, n_kv = c.take("<Q"), c.take("<Q")
    kvs = []
    for _ in range(n_kv):
        key = c.string()
        start = c.pos
        vtype = c.take("<I")
        if vtype == T_ARRAY and len(buf) >= c.pos + 12 and struct.unpack_from("<I", buf, c.pos)[0] == T_STRING:
            # string array: skip over it now (lengths only), decode on first use
            n = struct.unpack_from("<Q", buf, c.pos + 4)[0]
            first = c.pos + 12
            c.pos = first
            c.skip_strings(n)
            lazy = (lambda c=_Cursor(buf, path), p=first, n=n: c.at(p).strings(n))
            kvs.append(KV(key, vtype, None, T_STRING, raw=buf[start:c.pos], lazy=lazy))
            continue
        value, sub = c.value(vtype)
        kvs.append(KV(key, vtype, value, sub, raw=buf[start:c.pos]))
    alignment = DEFAULT_ALIGNMENT
    for kv in kvs:
        if kv.key == "general.alignment":
            alignment = int(kv.value)
    tensors = []
    for _ in range(n_tensors):
        name = c.string()
        nd = c.take("<I")
        ne = tuple(int(c.take("<Q")) for _ in range(nd))
        ttype = c.take("<I")
        off = c.take("<Q")
        tensors.append(TensorInfo(name, ne, ttype, off))
    data_start = _pad(c.pos, alignment)
    for t in tensors:
        try:
            n = t.nbytes
        except _core.KQuantsError as e:
            raise _core.GGUFError(f"{path}: tensor {t.name!r}: {e}") from None
        start = data_start + t.offset
        if start + n > len(mm):
            raise _core.GGUFError(f"{path}: tensor {t.name!r} data runs past the end of the file")
        t.data = mm[start:start + n]
        t.offset = start  # absolute from here on
    return GGUFContents(path, kvs, tensors, alignment, mf)


# ---------------------------------------------------------------- writing

def _enc_str(s: str) -> bytes:
    b = s.encode("utf-8", errors="surrogateescape")
    return struct.pack("<Q", len(b)) + b


def _enc_value(vtype: int, value, sub) -> bytes:
    if vtype == T_STRING:
        return _enc_str(value)
    if vtype == T_ARRAY:
        out = [struct.pack("<IQ", sub, len(value))]
        if sub == T_STRING:
            pack = _U64.pack
            for s in value:
                b = s.encode("utf-8", "surrogateescape")
                out.append(pack(len(b)))
                out.append(b)
        elif sub == T_ARRAY:
            raise _core.GGUFError("nested GGUF arrays are not supported for writing")
        else:
            out.append(np.asarray(value).astype(_SCALAR[sub]).tobytes())
        return b"".join(out)
    return np.asarray(value).astype(_SCALAR[vtype]).tobytes()


def encode_header(kvs: Iterable[KV], tensors: Iterable[TensorInfo], alignment: int) -> bytes:
    kvs = list(kvs)
    tensors = list(tensors)
    parts = [GGUF_MAGIC, struct.pack("<IQQ", GGUF_VERSION, len(tensors), len(kvs))]
    for kv in kvs:
        parts.append(_enc_str(kv.key))
        if kv.raw is not None:
            parts.append(kv.raw)
            continue
        parts.append(struct.pack("<I", kv.type))
        parts.append(_enc_value(kv.type, kv.value, kv.sub_type))
    off = 0
    for t in tensors:
        parts.append(_enc_str(t.name))
        parts.append(struct.pack("<I", len(t.ne)))
        parts.append(struct.pack(f"<{len(t.ne)}Q", *t.ne))
        parts.append(struct.pack("<IQ", t.type, off))
        t.offset = off
        off += _pad(t.nbytes, alignment)
    head = b"".join(parts)
    return head + b"\0" * (_pad(len(head), alignment) - len(head))


class GGUFOutput:
    """Streaming GGUF writer: header first, then each tensor's bytes in order.

    Writes to a temporary file in the destination folder; ``commit()`` renames
    it over ``path``; leaving the ``with`` block on an exception removes it,
    so a failed run never leaves a partial file behind.
    """

    def __init__(self, path, kvs: list, tensors: list, alignment: int = DEFAULT_ALIGNMENT, fsync: bool = False):
        self.path = Path(path)
        self.fsync = fsync  # off by default, as llama-quantize: the rename alone keeps readers off partial data
        self.tensors = list(tensors)
        self.alignment = alignment
        self._next = 0
        parent = self.path.parent if str(self.path.parent) else Path(".")
        if not parent.is_dir():
            raise _core.KQuantsIOError(f"{self.path}: output folder {parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent)
        self.tmp = Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        self._f = os.fdopen(fd, "wb", buffering=0)
        self._committed = False
        try:
            self._write(encode_header(kvs, self.tensors, alignment))
        except BaseException:
            self.abort()
            raise

    def _write(self, b) -> None:
        try:
            mv = memoryview(b).cast("B")
            while len(mv):
                n = self._f.write(mv)
                mv = mv[n:]
        except OSError as e:
            raise _core.KQuantsIOError(f"{self.path}: write failed: {e.strerror or e}") from None

    def write_tensor(self, name: str, data) -> None:
        if self._next >= len(self.tensors):
            raise _core.KQuantsError(f"{self.path}: more tensors written than declared ({name!r})")
        t = self.tensors[self._next]
        if t.name != name:
            raise _core.KQuantsError(f"{self.path}: tensor {name!r} written where {t.name!r} was declared")
        buf = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
        if buf.nbytes != t.nbytes:
            raise _core.KQuantsError(
                f"{self.path}: tensor {name!r} has {buf.nbytes} bytes, expected {t.nbytes}")
        self._write(buf)
        pad = _pad(t.nbytes, self.alignment) - t.nbytes
        if pad:
            self._write(b"\0" * pad)
        self._next += 1

    def commit(self) -> None:
        if self._next != len(self.tensors):
            raise _core.KQuantsError(
                f"{self.path}: only {self._next} of {len(self.tensors)} tensors were written")
        try:
            self._f.flush()
            if self.fsync:
                os.fsync(self._f.fileno())
            self._f.close()
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.abort()
            raise _core.KQuantsIOError(f"{self.path}: cannot finish writing: {e.strerror or e}") from None
        self._committed = True

    def abort(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None or not self._committed:
            if not self._committed:
                self.abort()
        return False
