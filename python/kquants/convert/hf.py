"""Reading Hugging Face checkpoints without torch.

safetensors layout: u64 little-endian header length N, N bytes of JSON
``{name: {"dtype": "F16"|"BF16"|"F32"|..., "shape": [...], "data_offsets":
[begin, end]}, "__metadata__": {...}}``, then the data; offsets are relative
to the end of the header. Each tensor is a zero-copy view of a memory map of
the file (``_core.MappedFile``, the GGUF reader's mapping), released after use.

A checkpoint is ``model.safetensors``, or shards listed by
``model.safetensors.index.json`` (``weight_map``: tensor -> file), or
``pytorch_model*.bin`` (only when torch is importable).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .. import _core

# safetensors dtype -> (numpy dtype of the raw data, kind)
_ST_DTYPES = {
    "F32": (np.float32, "f32"),
    "F16": (np.float16, "f16"),
    "BF16": (np.uint16, "bf16"),   # raw bits; widened by bf16_to_f32
    "F64": (np.float64, "f64"),
    "I64": (np.int64, "i64"),
    "I32": (np.int32, "i32"),
    "I16": (np.int16, "i16"),
    "I8": (np.int8, "i8"),
    "U8": (np.uint8, "u8"),
    "BOOL": (np.bool_, "bool"),
}


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32: the 16 bits are the top half of a float32."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


@dataclass
class HFTensor:
    name: str
    shape: tuple          # PyTorch order (last dim = row length)
    dtype: str            # safetensors dtype name
    file: object          # _core.MappedFile, or None for a torch tensor
    offset: int = 0
    nbytes: int = 0
    _torch: Optional[Callable] = None

    def raw(self) -> np.ndarray:
        """The data in its stored dtype (BF16 as uint16 bits), zero-copy for safetensors."""
        if self._torch is not None:
            return self._torch()
        npdt = _ST_DTYPES[self.dtype][0]
        return self.file.view(self.offset, self.nbytes).view(npdt).reshape(self.shape)

    def float32(self) -> np.ndarray:
        a = self.raw()
        if self.dtype == "BF16":
            return bf16_to_f32(a)
        return a.astype(np.float32, copy=False)

    def release(self) -> None:
        if self.file is not None:
            self.file.release(self.offset, self.nbytes)


def read_safetensors(path) -> dict:
    """{name: HFTensor} of one .safetensors file (header only; data is mapped)."""
    path = Path(path)
    mf = _core.MappedFile(str(path))
    if mf.size < 8:
        raise _core.KQuantsError(f"{path}: not a safetensors file (too short)")
    (hlen,) = struct.unpack("<Q", bytes(mf.view(0, 8)))
    if hlen > mf.size - 8:
        raise _core.KQuantsError(f"{path}: safetensors header length {hlen} exceeds the file size")
    try:
        header = json.loads(bytes(mf.view(8, hlen)).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _core.KQuantsError(f"{path}: bad safetensors header: {e}") from None
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info.get("dtype")
        if dt not in _ST_DTYPES:
            raise _core.KQuantsError(f"{path}: tensor {name!r} has unsupported dtype {dt}")
        shape = tuple(int(s) for s in info["shape"])
        b, e = (int(x) for x in info["data_offsets"])
        n = int(np.prod(shape, dtype=np.int64)) * np.dtype(_ST_DTYPES[dt][0]).itemsize
        if b < 0 or e - b != n or base + e > mf.size:
            raise _core.KQuantsError(
                f"{path}: tensor {name!r}: data offsets [{b}, {e}) do not fit shape {list(shape)} {dt} "
                f"or the file size")
        out[name] = HFTensor(name, shape, dt, mf, base + b, n)
    return out


def _torch_tensors(path: Path) -> dict:
    try:
        import torch
    except ImportError:
        raise _core.KQuantsError(
            f"{path}: pytorch_model.bin checkpoints need torch (pip install torch), "
            "or convert the checkpoint to safetensors") from None
    sd = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    out = {}
    for name, t in sd.items():
        if t.dtype not in names:
            t = t.float()
        dt = names[t.dtype]

        def load(t=t, dt=dt):
            if dt == "BF16":
                return t.contiguous().view(torch.int16).numpy().view(np.uint16)
            return t.contiguous().numpy()
        out[name] = HFTensor(name, tuple(t.shape), dt, None, 0, 0, load)
    return out


def load_checkpoint(model_dir) -> dict:
    """All tensors of a checkpoint folder: {name: HFTensor}, in file order."""
    d = Path(model_dir)
    idx = d / "model.safetensors.index.json"
    single = sorted(d.glob("model*.safetensors"))
    if idx.is_file():
        try:
            wm = json.loads(idx.read_text())["weight_map"]
        except (KeyError, json.JSONDecodeError, TypeError) as e:
            raise _core.KQuantsError(f"{idx}: cannot read weight_map: {e}") from None
        files = sorted(set(wm.values()))
        out = {}
        for f in files:
            fp = d / f
            if not fp.is_file():
                missing = sorted(n for n, v in wm.items() if v == f)
                raise _core.KQuantsIOError(
                    f"{fp}: shard listed in {idx.name} is missing ({len(missing)} tensors, e.g. {missing[0]!r})")
            out.update(read_safetensors(fp))
        missing = sorted(set(wm) - set(out))
        if missing:
            raise _core.KQuantsError(f"{idx}: tensors listed but not found in the shards: {missing[:5]}")
        return out
    if single:
        out = {}
        for f in single:
            out.update(read_safetensors(f))
        return out
    bins = sorted(d.glob("pytorch_model*.bin"))
    if bins:
        out = {}
        for f in bins:
            out.update(_torch_tensors(f))
        return out
    raise _core.KQuantsIOError(
        f"{d}: no weights found (looked for model.safetensors, model.safetensors.index.json, pytorch_model.bin)")


def load_config(model_dir) -> dict:
    d = Path(model_dir)
    p = d / "config.json"
    if not d.is_dir():
        raise _core.KQuantsIOError(f"{d}: not a folder (expected a Hugging Face checkpoint folder or a .gguf file)")
    if not p.is_file():
        raise _core.KQuantsIOError(f"{p}: missing config.json in the checkpoint folder")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise _core.KQuantsError(f"{p}: invalid JSON: {e}") from None
    if "text_config" in cfg:
        cfg = {**cfg, **cfg["text_config"]}
    return cfg


def save_safetensors(path, tensors: dict, metadata: Optional[dict] = None) -> None:
    """Writes {name: np.ndarray} (float32/float16; uint16 arrays are written as BF16)."""
    dtypes = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.uint16): "BF16",
              np.dtype(np.int64): "I64"}
    header, off, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        if a.dtype not in dtypes:
            raise _core.KQuantsError(f"save_safetensors: tensor {name!r} has unsupported dtype {a.dtype}")
        header[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for a in blobs:
            f.write(a.tobytes() if a.nbytes < (64 << 20) else memoryview(a).cast("B"))
