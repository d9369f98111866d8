"""Importance matrices (llama-imatrix output), as llama-quantize reads them.

Two formats:

* GGUF (current): for each weight ``W`` two F32 tensors ``W.in_sum2`` (sum of
  squared activations per column, ne = [n_per_row, n_expert]) and
  ``W.counts`` (activations summed, one per expert); keys
  ``imatrix.datasets`` (string array), ``imatrix.chunk_count``,
  ``imatrix.chunk_size`` (u32). The importance of a column is
  ``in_sum2 / count`` (count rounded to an integer first; 1.0 where count is 0).
* legacy ``.dat``: i32 n_entries; per entry i32 name length, name bytes,
  i32 ncall, i32 nval, nval f32 values; optionally i32 chunk count, i32 length
  and the dataset name. The importance is ``value / ncall`` (ncall > 0).

Both give ``{tensor name: float32[n_per_row * n_expert]}``, divided in float32
exactly as llama-quantize does.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import _core
from ..gguf import GGUFFile, GGUFValueType, GGUFWriter


@dataclass
class IMatrix:
    data: dict                       # tensor name -> float32 array
    datasets: list = field(default_factory=list)
    chunk_count: int = 0
    path: str = ""

    def get(self, name: str):
        return self.data.get(name)


def load_imatrix(path) -> IMatrix:
    path = Path(path)
    if not path.is_file():
        raise _core.KQuantsIOError(f"{path}: imatrix file not found")
    with open(path, "rb") as f:
        magic = f.read(4)
    im = _load_gguf(path) if magic == b"GGUF" else _load_legacy(path)
    for name, v in im.data.items():
        if not np.isfinite(v).all():
            raise _core.KQuantsError(f"{path}: imatrix entry {name!r} contains a non-finite value")
    return im


def _load_gguf(path: Path) -> IMatrix:
    g = GGUFFile(path)
    if not all(k in g.fields for k in ("imatrix.datasets", "imatrix.chunk_count", "imatrix.chunk_size")):
        raise _core.KQuantsError(f"{path}: missing imatrix metadata (imatrix.datasets / chunk_count / chunk_size)")
    sums, counts = {}, {}
    for t in g.tensors:
        for suffix, dst in ((".in_sum2", sums), (".counts", counts)):
            if t.name.endswith(suffix):
                if t.type != 0:
                    raise _core.KQuantsError(f"{path}: imatrix tensor {t.name!r} must be F32")
                dst[t.name[:-len(suffix)]] = g.tensor_data(t.name).view(np.float32)
    if not sums and not counts:
        raise _core.KQuantsError(f"{path}: no imatrix data in file")
    data = {}
    for name in sorted(set(sums) | set(counts)):
        if name not in sums or name not in counts:
            raise _core.KQuantsError(f"{path}: mismatched sums and counts for {name!r}")
        s, c = sums[name], np.round(counts[name].astype(np.float64))
        ne0 = s.size // max(1, c.size)
        out = np.empty(s.size, dtype=np.float32)
        for j in range(c.size):
            seg = slice(j * ne0, (j + 1) * ne0)
            out[seg] = s[seg] / np.float32(c[j]) if c[j] > 0 else np.float32(1.0)
        data[name] = out
    ds = g.get("imatrix.datasets")
    return IMatrix(data, list(ds) if isinstance(ds, list) else [], int(g.get("imatrix.chunk_count")), str(path))


def _load_legacy(path: Path) -> IMatrix:
    raw = path.read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        try:
            v = struct.unpack_from(fmt, raw, pos)
        except struct.error:
            raise _core.KQuantsError(f"{path}: truncated legacy imatrix file") from None
        pos += struct.calcsize(fmt)
        return v[0]

    n = take("<i")
    if n < 1:
        raise _core.KQuantsError(f"{path}: no data in imatrix file")
    data = {}
    for i in range(n):
        ln = take("<i")
        if ln < 0 or pos + ln > len(raw):
            raise _core.KQuantsError(f"{path}: bad name for entry {i + 1}")
        name = raw[pos:pos + ln].decode("utf-8", errors="replace")
        pos += ln
        ncall, nval = take("<i"), take("<i")
        if nval < 1 or pos + 4 * nval > len(raw):
            raise _core.KQuantsError(f"{path}: bad value count for entry {name!r}")
        v = np.frombuffer(raw, dtype="<f4", count=nval, offset=pos).astype(np.float32)
        pos += 4 * nval
        data[name] = v / np.float32(ncall) if ncall > 0 else v.copy()
    chunks, datasets = 0, []
    if pos + 4 <= len(raw):
        chunks = take("<i")
        if pos + 4 <= len(raw):
            ln = take("<i")
            if ln > 0 and pos + ln <= len(raw):
                datasets.append(raw[pos:pos + ln].decode("utf-8", errors="replace"))
    return IMatrix(data, datasets, chunks, str(path))


def save_imatrix_dat(path, entries: dict, ncall: int = 1, chunks: int = 0, dataset: str = "") -> None:
    """Writes a legacy .dat imatrix; ``entries`` are the stored (summed) values."""
    out = [struct.pack("<i", len(entries))]
    for name, v in entries.items():
        b = name.encode()
        v = np.asarray(v, dtype="<f4")
        out += [struct.pack("<i", len(b)), b, struct.pack("<ii", ncall, v.size), v.tobytes()]
    if chunks or dataset:
        d = dataset.encode()
        out += [struct.pack("<ii", chunks, len(d)), d]
    Path(path).write_bytes(b"".join(out))


def save_imatrix_gguf(path, sums: dict, counts: dict, datasets=("test",), chunk_count: int = 1,
                      chunk_size: int = 512) -> None:
    """Writes a GGUF imatrix: ``sums[name]`` float32 [n_expert, n_per_row], ``counts[name]`` [n_expert]."""
    with GGUFWriter(path) as w:
        w.add_string("general.type", "imatrix")
        w.add_array("imatrix.datasets", list(datasets), GGUFValueType.STRING)
        w.add_uint32("imatrix.chunk_count", chunk_count)
        w.add_uint32("imatrix.chunk_size", chunk_size)
        arrays = {}
        for name in sums:
            arrays[name + ".in_sum2"] = np.atleast_2d(np.asarray(sums[name], dtype=np.float32))
            arrays[name + ".counts"] = np.asarray(counts[name], dtype=np.float32).reshape(-1, 1)
        for name, a in arrays.items():
            w.add_tensor_info(name, a.shape, "f32")
        for name, a in arrays.items():
            w.write_tensor(name, a)
