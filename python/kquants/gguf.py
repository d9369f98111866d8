"""GGUF files: :class:`GGUFFile` (read over mmap) and :class:`GGUFWriter` (streaming write).

The parsing, validation and file writing are native (csrc/gguf/); this
module shapes arguments and results.

Reading::

    with kquants.GGUFFile("model.gguf") as f:
        f.metadata["llama.block_count"]         # plain Python values
        f.fields["tokenizer.ggml.tokens"]        # GGUFField(type=ARRAY, sub_type=STRING, count=49152)
        for t in f.tensors:                      # GGUFTensor records, file order
            t.name, t.type, t.shape, t.offset, t.nbytes
        raw = f.tensor_data("blk.0.attn_q.weight")   # uint8 view over the mmap, zero-copy
        w = f.dequantize("blk.0.attn_q.weight")      # float32, shape t.shape

Writing (all metadata and tensor infos first, then data in the same order)::

    with kquants.GGUFWriter("out.gguf", arch="llama") as w:
        w.add_uint32("llama.block_count", 30)
        w.add_tensor_info("a", (4, 64), "q8_0")
        w.write_tensor_data(quantized_bytes)     # or in pieces; or w.write_tensor("a", ...): whole, name checked
    # finished and renamed into place on leaving the block; on an exception
    # the temporary file is removed and "out.gguf" is left untouched.
"""
from __future__ import annotations

import enum
import os
import weakref
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from . import _core
from .types import GGMLType, TypeInfo, TypeLike, type_info

PathLike = Union[str, "os.PathLike[str]"]

_VALUE_TYPES = _core.gguf_value_types()  # [(name, id, size, numpy dtype)]
GGUFValueType = enum.IntEnum("GGUFValueType", {name: vid for name, vid, _, _ in _VALUE_TYPES})
GGUFValueType.__doc__ = "GGUF metadata value types (as stored in the file)."
_DTYPE = {vid: np.dtype(dt) for _, vid, _, dt in _VALUE_TYPES if dt}
_SCALARS = frozenset(_DTYPE)


@dataclass(frozen=True)
class GGUFTensor:
    """A tensor's record. ``shape`` is NumPy order (ggml's ne reversed), as
    gguf-py reshapes data; ``offset`` is the absolute file offset."""
    name: str
    type: GGMLType
    shape: tuple
    offset: int
    nbytes: int
    n_elements: int

    @property
    def ne(self) -> tuple:
        """ggml order: ne[0] is the row length."""
        return tuple(reversed(self.shape))

    @property
    def info(self) -> TypeInfo:
        return type_info(self.type)


@dataclass(frozen=True)
class GGUFField:
    """A metadata entry's type: ``sub_type`` is the element type of an ARRAY
    (None otherwise); ``count`` is an array's length, a string's byte length,
    1 for other scalars."""
    key: str
    type: GGUFValueType
    sub_type: Optional[GGUFValueType]
    count: int


# Readers open in this process, by path: a GGUFWriter refuses them as a destination.
_open_files: "weakref.WeakSet[GGUFFile]" = weakref.WeakSet()


class GGUFFile:
    """A GGUF file (versions 2 and 3), memory-mapped and validated on open.

    Raises ``GGUFError`` naming the file and the fault for malformed input,
    ``KQuantsIOError`` (an ``OSError``) when it cannot be opened or mapped.

    ``metadata``: dict key -> value: ``int``/``float``/``bool``/``str``,
    arrays as lists (nested arrays as nested lists); a string that is not
    valid UTF-8 comes back as ``bytes``. For large numeric arrays,
    ``array(key)`` gives a zero-copy NumPy view instead.

    Views from ``tensor_data`` and ``array`` keep the mapping alive on their
    own, so they stay valid after ``close()``. The file must not be truncated
    by another process while mapped (the OS would then fault on access).
    """

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)
        self._r = _core.GGUFReader(self.path)
        self._metadata: Optional[dict] = None
        self._fields: Optional[dict] = None
        self._tensors: Optional[list] = None
        self._by_name: Optional[dict] = None
        _open_files.add(self)

    # --- file ---------------------------------------------------------------
    @property
    def version(self) -> int:
        return self._r.version

    @property
    def alignment(self) -> int:
        return self._r.alignment

    @property
    def data_offset(self) -> int:
        """Absolute offset of the tensor data section."""
        return self._r.data_offset

    @property
    def file_size(self) -> int:
        return self._r.file_size

    @property
    def closed(self) -> bool:
        return self._r.closed

    def close(self) -> None:
        self._r.close()
        _open_files.discard(self)

    def __enter__(self) -> "GGUFFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.tensors)} tensors, {len(self.fields)} keys"
        return f"<GGUFFile {self.path!r} v{self.version}: {state}>"

    # --- metadata -------------------------------------------------------------
    @property
    def metadata(self) -> dict:
        if self._metadata is None:
            self._metadata = self._r.values()
        return self._metadata

    @property
    def fields(self) -> dict:
        """key -> GGUFField (types and sizes, without decoding values)."""
        if self._fields is None:
            self._fields = {k: GGUFField(k, GGUFValueType(t), None if e is None else GGUFValueType(e), n)
                            for k, t, e, n in self._r.fields()}
        return self._fields

    def get(self, key: str, default: Any = None) -> Any:
        """One metadata value (decoding only that one), or ``default``."""
        if key not in self.fields:
            return default
        return self._r.value(key)

    def array(self, key: str) -> np.ndarray:
        """A numeric array's elements as a read-only NumPy view (BOOL as uint8)."""
        return self._r.array(key)

    # --- tensors ---------------------------------------------------------------
    @property
    def tensors(self) -> list:
        """GGUFTensor records, in file order."""
        if self._tensors is None:
            self._tensors = [GGUFTensor(name, GGMLType(tid), tuple(reversed(ne)), off, nb, n)
                             for name, tid, ne, off, nb, n in self._r.tensors()]
            self._by_name = {t.name: t for t in self._tensors}
        return self._tensors

    def tensor(self, name: str) -> GGUFTensor:
        self.tensors
        try:
            return self._by_name[name]
        except KeyError:
            raise _core.KQuantsError(f"{self.path}: no tensor named {name!r}") from None

    def __contains__(self, name: str) -> bool:
        self.tensors
        return name in self._by_name

    def tensor_data(self, name: str) -> np.ndarray:
        """The tensor's raw bytes: a read-only 1-D uint8 view over the mapping."""
        return self._r.tensor_data(name)

    def release(self, name: str) -> None:
        """Drops the tensor's pages from this process's resident set (a hint:
        its views stay valid and read the bytes again on access). Streaming a
        model calls it after each tensor, so memory does not grow with the file."""
        self._r.release(name)

    def dequantize(self, name: str, threads: Optional[int] = None) -> np.ndarray:
        """The tensor as float32 of its shape (GIL released while it runs)."""
        return self._r.dequantize(name, int(threads or 0))


# --- writing --------------------------------------------------------------------

def _err(msg: str) -> _core.KQuantsError:
    return _core.KQuantsError(msg)


_INT_RANGE = {vid: (int(np.iinfo(dt).min), int(np.iinfo(dt).max))
              for vid, dt in _DTYPE.items() if dt.kind in "iu"}
# numpy dtype -> value type (native-endian lookups of the table's dtypes).
_FROM_DTYPE = {dt.newbyteorder("="): vid for vid, dt in _DTYPE.items()}


def _infer(value: Any, key: str) -> GGUFValueType:
    """Type of a Python value: bool -> BOOL, int -> INT32 (INT64 / UINT64 when
    it does not fit), float -> FLOAT32, str/bytes -> STRING, sequences and
    NumPy arrays -> ARRAY, NumPy scalars -> their own type."""
    if isinstance(value, (bool, np.bool_)):
        return GGUFValueType.BOOL
    if isinstance(value, np.generic):
        vid = _FROM_DTYPE.get(value.dtype.newbyteorder("="))
        if vid is None:
            raise _err(f"metadata {key!r}: NumPy type {value.dtype} has no GGUF equivalent")
        return GGUFValueType(vid)
    if isinstance(value, int):
        if -2**31 <= value < 2**31:
            return GGUFValueType.INT32
        return GGUFValueType.INT64 if -2**63 <= value < 2**63 else GGUFValueType.UINT64
    if isinstance(value, float):
        return GGUFValueType.FLOAT32
    if isinstance(value, (str, bytes)):
        return GGUFValueType.STRING
    if isinstance(value, (list, tuple, np.ndarray, bytearray)):
        return GGUFValueType.ARRAY
    raise _err(f"metadata {key!r}: cannot store a {type(value).__name__} in GGUF")


def _infer_elements(values: Sequence, key: str) -> GGUFValueType:
    if isinstance(values, np.ndarray):
        if values.ndim > 1:
            return GGUFValueType.ARRAY
        vid = _FROM_DTYPE.get(values.dtype.newbyteorder("="))
        if vid is None:
            raise _err(f"metadata {key!r}: NumPy dtype {values.dtype} has no GGUF equivalent")
        return GGUFValueType(vid)
    if isinstance(values, (bytes, bytearray)):
        return GGUFValueType.UINT8
    if len(values) == 0:
        raise _err(f"metadata {key!r}: the element type of an empty array must be given (sub_type=)")
    kinds = {_infer(v, key) for v in values}
    ints = {GGUFValueType.INT32, GGUFValueType.INT64, GGUFValueType.UINT64}
    if kinds <= ints:  # the narrowest type holding every value
        if GGUFValueType.UINT64 in kinds:
            return GGUFValueType.UINT64  # negatives then fail the range check
        return GGUFValueType.INT64 if GGUFValueType.INT64 in kinds else GGUFValueType.INT32
    if kinds <= ints | {GGUFValueType.FLOAT32}:
        return GGUFValueType.FLOAT32
    if len(kinds) != 1:
        raise _err(f"metadata {key!r}: array mixes {', '.join(sorted(k.name for k in kinds))}")
    return kinds.pop()


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _pack_scalars(values, vtype: GGUFValueType, key: str) -> bytes:
    """Little-endian bytes of the values (a sequence or 1-D array) as ``vtype``.
    Integers are range-checked; bools and numbers are not mixed up."""
    dt = _DTYPE[int(vtype)]
    is_array = isinstance(values, np.ndarray)
    if vtype == GGUFValueType.BOOL:
        ok = values.dtype == np.bool_ if is_array else all(isinstance(v, (bool, np.bool_)) for v in values)
        if not ok:
            raise _err(f"metadata {key!r}: BOOL needs bool values")
        arr = np.asarray(values, dtype=np.bool_)
    elif dt.kind in "iu":
        if is_array and values.dtype.kind in "iu":
            arr = values
            bounds = (int(arr.min()), int(arr.max())) if arr.size else None
        elif not is_array and all(_is_int(v) for v in values):
            ints = [int(v) for v in values]
            arr = None
            bounds = (min(ints), max(ints)) if ints else None
        else:
            raise _err(f"metadata {key!r}: {vtype.name} needs integers")
        lo, hi = _INT_RANGE[int(vtype)]
        if bounds and (bounds[0] < lo or bounds[1] > hi):
            raise _err(f"metadata {key!r}: value out of range for {vtype.name} [{lo}, {hi}]")
        if arr is None:
            arr = np.array(ints, dtype=dt)
    else:
        ok = values.dtype.kind in "iuf" if is_array else all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            for v in values)
        if not ok:
            raise _err(f"metadata {key!r}: {vtype.name} needs numbers")
        arr = np.asarray(values, dtype=np.float64 if not is_array else None)
    return np.ascontiguousarray(arr, dtype=dt).tobytes()


def _encode_str(value, key: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str):
        raise _err(f"metadata {key!r}: STRING needs str or bytes, got {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _err(f"metadata {key!r}: string is not encodable as UTF-8 ({e})") from None


def _spec(value: Any, vtype: Optional[GGUFValueType], sub_type: Optional[GGUFValueType], key: str) -> tuple:
    """(type, bytes) or (ARRAY, elem type, count, data): what the native writer takes."""
    vtype = GGUFValueType(vtype) if vtype is not None else _infer(value, key)
    if vtype == GGUFValueType.STRING:
        return (int(vtype), _encode_str(value, key))
    if vtype != GGUFValueType.ARRAY:
        if isinstance(value, (list, tuple, np.ndarray)) and np.ndim(value) != 0:
            raise _err(f"metadata {key!r}: {vtype.name} needs a single value")
        return (int(vtype), _pack_scalars([value], vtype, key))
    if not isinstance(value, (list, tuple, np.ndarray, bytes, bytearray)):
        raise _err(f"metadata {key!r}: ARRAY needs a list, tuple, bytes or NumPy array")
    elem = GGUFValueType(sub_type) if sub_type is not None else _infer_elements(value, key)
    n = len(value)
    if elem == GGUFValueType.STRING:
        return (int(vtype), int(elem), n, [_encode_str(v, key) for v in value])
    if elem == GGUFValueType.ARRAY:
        return (int(vtype), int(elem), n, [_spec(v, GGUFValueType.ARRAY, None, key) for v in value])
    if isinstance(value, (bytes, bytearray)):
        value = np.frombuffer(value, np.uint8)
    return (int(vtype), int(elem), n, _pack_scalars(value, elem, key))


def _as_bytes(data) -> np.ndarray:
    """Any buffer or array as a flat uint8 array over the same memory (copied only if not contiguous)."""
    arr = np.asarray(data) if not isinstance(data, (bytes, bytearray, memoryview)) \
        else np.frombuffer(data, np.uint8)
    return np.ascontiguousarray(arr).reshape(-1).view(np.uint8)


class GGUFWriter:
    """Writes a GGUF v3 file tensor by tensor (see the module docstring).

    ``alignment``: data alignment (written as general.alignment when not 32).
    ``arch``: written as general.architecture first, as gguf-py does.
    ``inputs``: files this one is made from; the destination may be none of
    them, nor any GGUFFile open in this process.
    ``fsync``: flush the data to the device before the rename (off: faster,
    as llama-quantize; the rename alone still keeps readers off partial data).

    The file appears at ``path`` only when ``finish()`` succeeds (or the
    ``with`` block ends without an exception). Errors raise ``KQuantsError``
    / ``KQuantsIOError``; an I/O error while writing removes the temporary file.
    """

    def __init__(self, path: PathLike, *, arch: Optional[str] = None, alignment: Optional[int] = None,
                 inputs: Iterable[PathLike] = (), fsync: bool = True):
        self.path = os.fspath(path)
        ins = [os.fspath(p) for p in inputs] + [f.path for f in list(_open_files) if not f.closed]
        self._w = _core.GGUFWriterCore(self.path, ins, bool(fsync))
        if arch is not None:
            self.add_string("general.architecture", arch)
        if alignment is not None and alignment != 32:
            self.add_uint32("general.alignment", alignment)

    # --- metadata ---------------------------------------------------------------
    def add_value(self, key: str, value: Any, type: Optional[GGUFValueType] = None,
                  sub_type: Optional[GGUFValueType] = None) -> None:
        """Adds one key. ``type`` defaults to what the value suggests (see
        _infer); ``sub_type`` is an ARRAY's element type."""
        if not isinstance(key, str):
            raise _err(f"metadata key must be a str, got {key!r}")
        self._w.add_kv(key, _spec(value, type, sub_type, key))

    def add_uint8(self, key: str, value: int) -> None: self.add_value(key, value, GGUFValueType.UINT8)
    def add_int8(self, key: str, value: int) -> None: self.add_value(key, value, GGUFValueType.INT8)
    def add_uint16(self, key: str, value: int) -> None: self.add_value(key, value, GGUFValueType.UINT16)
    def add_int16(self, key: str, value: int) -> None: self.add_value(key, value, GGUFValueType.INT16)
    def add_uint32(self, key: str, value: int) -> None: self.add_value(key, value, GGUFValueType.UINT32)
    def add_int32(self, key: str, value: int) -> None: self.add_value(key, value, GGUFValueType.INT32)
    def add_uint64(self, key: str, value: int) -> None: self.add_value(key, value, GGUFValueType.UINT64)
    def add_int64(self, key: str, value: int) -> None: self.add_value(key, value, GGUFValueType.INT64)
    def add_float32(self, key: str, value: float) -> None: self.add_value(key, value, GGUFValueType.FLOAT32)
    def add_float64(self, key: str, value: float) -> None: self.add_value(key, value, GGUFValueType.FLOAT64)
    def add_bool(self, key: str, value: bool) -> None: self.add_value(key, value, GGUFValueType.BOOL)
    def add_string(self, key: str, value: str) -> None: self.add_value(key, value, GGUFValueType.STRING)

    def add_array(self, key: str, values: Sequence, sub_type: Optional[GGUFValueType] = None) -> None:
        """An array; elements may be arrays themselves (nested)."""
        self.add_value(key, values, GGUFValueType.ARRAY, sub_type)

    def copy_field(self, src: GGUFFile, key: str, as_key: Optional[str] = None) -> None:
        """Copies ``key`` of ``src`` byte for byte (type included), without decoding it."""
        self._w.copy_kv(src._r, key, as_key or "")

    def copy_metadata(self, src: GGUFFile, skip: Iterable[str] = ()) -> None:
        """Copies every key of ``src`` except those in ``skip`` and those already added."""
        skip = set(skip)
        for key in src.fields:
            if key not in skip:
                self.copy_field(src, key)

    # --- tensors ------------------------------------------------------------------
    def add_tensor_info(self, name: str, shape: Sequence[int], type: TypeLike,
                        nbytes: Optional[int] = None) -> int:
        """Declares a tensor of ``shape`` (NumPy order: last dim = row length)
        and ``type``; returns its byte size (checked against ``nbytes`` if given)."""
        info = type_info(type)
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        ne = [int(d) for d in reversed(shape)]
        n = self._w.add_tensor_info(name, ne, info.ggml_id)
        if nbytes is not None and int(nbytes) != n:
            raise _err(f"{self.path}: tensor {name!r}: nbytes {nbytes} does not match shape "
                       f"{tuple(shape)} of type {info.name} ({n} bytes)")
        return n

    def write_tensor_data(self, data) -> None:
        """Bytes of the current tensor (declaration order); whole or in pieces."""
        self._w.write_tensor_data(_as_bytes(data))

    def write_tensor(self, name: str, data) -> None:
        """All of tensor ``name``'s bytes at once; it must be the tensor due
        next (declaration order) and ``data`` exactly its size."""
        self._w.write_tensor(name, _as_bytes(data))

    @property
    def current_tensor(self) -> str:
        """Name of the tensor whose bytes are expected next ("" when all are written)."""
        return self._w.current_tensor

    # --- end ------------------------------------------------------------------------
    def finish(self) -> None:
        """Completes the file and renames it into place."""
        self._w.finish()

    def abort(self) -> None:
        """Discards the temporary file; ``path`` is left as it was."""
        self._w.abort()

    def close(self) -> None:
        """finish() unless already finished or aborted."""
        if not (self._w.finished or self._w.aborted):
            self.finish()

    @property
    def finished(self) -> bool:
        return self._w.finished

    def __enter__(self) -> "GGUFWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        w = getattr(self, "_w", None)
        if w is not None and not w.finished:
            w.abort()
