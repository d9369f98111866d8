"""CUDA backend: device arrays and the ``device="cuda"`` array operations.

Every function here accepts host arrays (NumPy, anything ``np.asarray``
takes) and device arrays without a host round trip:

* :class:`DeviceArray` (what these functions return for device inputs);
* objects exposing ``__cuda_array_interface__`` (CuPy, Numba, PyTorch CUDA
  tensors);
* objects exposing ``__dlpack__`` on a CUDA device (PyTorch, JAX, CuPy ...).

Device inputs must be C-contiguous and on the current CUDA device. The
result lives where the (main) input lives: a host input gives a NumPy array,
a device input a :class:`DeviceArray`, which CuPy (``cupy.asarray``) and
PyTorch (``torch.as_tensor(a, device="cuda")``) read in place through
``__cuda_array_interface__``. Work runs on the legacy default stream and has
finished when a call returns.

When CUDA is not built in, or no driver/GPU is present, every call raises
:class:`kquants.KQuantsError` naming the reason; :func:`cuda_available`
tells beforehand.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from . import _core
from .types import TypeLike, type_info

__all__ = [
    "cuda_available", "cuda_info", "DeviceArray", "to_device",
    "quantize_array_cuda", "dequantize_array_cuda", "matmul_cuda",
    "rmsnorm_cuda", "rope_cuda", "softmax_cuda", "attention_cuda", "swiglu_cuda",
]


def cuda_info() -> dict:
    """State of the CUDA backend: compiled in? driver present? device name ..."""
    return dict(_core.cuda_info())


def cuda_available() -> bool:
    """True when kquants was built with CUDA and a usable GPU is present."""
    return bool(_core.cuda_info()["available"])


def _require(what: str) -> None:
    info = _core.cuda_info()
    if not info["available"]:
        raise _core.KQuantsError(f"{what}: CUDA is not available ({info['status']})")


class DeviceArray:
    """A C-contiguous array in CUDA device memory, owned by kquants."""

    def __init__(self, shape: Sequence[int], dtype):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self._buf = _core.CudaBuffer(self.nbytes)

    @classmethod
    def from_host(cls, array) -> "DeviceArray":
        a = np.ascontiguousarray(array)
        d = cls(a.shape, a.dtype)
        _core.cuda_upload(d.ptr, a.reshape(-1).view(np.uint8))
        return d

    @property
    def ptr(self) -> int:
        return self._buf.ptr

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def numpy(self) -> np.ndarray:
        """Copy to a new host array."""
        out = np.empty(self.shape, self.dtype)
        _core.cuda_download(out.reshape(-1).view(np.uint8), self.ptr)
        return out

    get = numpy  # CuPy's spelling

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    @property
    def __cuda_array_interface__(self) -> dict:
        # stream None: the data is ready (every kquants call synchronises).
        return {"shape": self.shape, "typestr": self.dtype.str, "data": (self.ptr, False),
                "strides": None, "version": 3, "stream": None}

    def __repr__(self) -> str:
        return f"DeviceArray(shape={self.shape}, dtype={self.dtype})"


def to_device(array) -> DeviceArray:
    """Copy a host array to the device (a DeviceArray is returned as is)."""
    _require("to_device")
    if isinstance(array, DeviceArray):
        return array
    return DeviceArray.from_host(array)


# ---- operands --------------------------------------------------------------------

class _Dev:
    """A device operand: pointer, shape, element kind and the object keeping it alive."""

    def __init__(self, ptr: int, shape: tuple, kind: str, keep: Any):
        self.ptr, self.shape, self.kind, self.keep = int(ptr), tuple(int(s) for s in shape), kind, keep


# typestr / DLPack (code, bits) -> element kind
_CAI_KINDS = {"<f4": "f32", "<f2": "f16", "|u1": "u8", "<u1": "u8", "|i1": "i8", "<i4": "i32"}
_DL_KINDS = {(2, 32): "f32", (2, 16): "f16", (4, 16): "bf16", (1, 8): "u8", (0, 8): "i8", (0, 32): "i32"}
_KIND_SIZE = {"f32": 4, "f16": 2, "bf16": 2, "u8": 1, "i8": 1, "i32": 4}
_DL_CUDA, _DL_CUDA_MANAGED = 2, 13


def _c_contiguous(shape, strides, itemsize) -> bool:
    expect = itemsize
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1 and s != expect:
            return False
        expect *= n
    return True


def _device_operand(obj, what: str) -> Optional[_Dev]:
    """A _Dev for device arrays, None for host data."""
    if isinstance(obj, DeviceArray):
        return _Dev(obj.ptr, obj.shape, _np_kind(obj.dtype, what), obj)
    try:
        cai = getattr(obj, "__cuda_array_interface__", None)
    except (TypeError, ValueError, RuntimeError):
        cai = None  # e.g. PyTorch raises for dtypes without a typestr (bfloat16): try DLPack
    if cai is not None:
        kind = _CAI_KINDS.get(cai["typestr"])
        if kind is None:
            raise _core.KQuantsError(f"{what}: device arrays of typestr {cai['typestr']!r} are not supported")
        if cai.get("mask") is not None:
            raise _core.KQuantsError(f"{what}: masked device arrays are not supported")
        strides = cai.get("strides")
        if strides is not None and not _c_contiguous(cai["shape"], strides, _KIND_SIZE[kind]):
            raise _core.KQuantsError(f"{what}: device arrays must be C-contiguous")
        return _Dev(cai["data"][0], cai["shape"], kind, obj)
    if hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__"):
        dev_type, dev_id = obj.__dlpack_device__()
        if int(dev_type) not in (_DL_CUDA, _DL_CUDA_MANAGED):
            return None  # host memory (NumPy, CPU tensors): np.asarray handles it
        cap = obj.__dlpack__()
        info = _core.dlpack_info(cap)
        if info["device_id"] != 0:
            raise _core.KQuantsError(f"{what}: only CUDA device 0 is supported, got device {info['device_id']}")
        kind = _DL_KINDS.get((info["code"], info["bits"]))
        if kind is None or info["lanes"] != 1:
            raise _core.KQuantsError(f"{what}: DLPack dtype (code {info['code']}, bits {info['bits']}) "
                                     "is not supported")
        if info["strides"] is not None and not _c_contiguous(
                info["shape"], [s * _KIND_SIZE[kind] for s in info["strides"]], _KIND_SIZE[kind]):
            raise _core.KQuantsError(f"{what}: device arrays must be C-contiguous")
        return _Dev(info["ptr"], info["shape"], kind, (obj, cap))
    return None


def _np_kind(dtype, what: str) -> str:
    dtype = np.dtype(dtype)
    if dtype.name == "bfloat16":
        return "bf16"
    kind = _CAI_KINDS.get(dtype.str)
    if kind is None:
        raise _core.KQuantsError(f"{what}: dtype {dtype} is not supported")
    return kind


def _host_or_device(obj, what: str, host_dtype=None) -> tuple[_Dev, bool]:
    """(device operand, was_on_device). Host data is uploaded (as host_dtype if given)."""
    dev = _device_operand(obj, what)
    if dev is not None:
        return dev, True
    a = np.asarray(obj)
    if host_dtype is not None:
        a = a.astype(host_dtype, copy=False)
    d = DeviceArray.from_host(a)
    return _Dev(d.ptr, d.shape, _np_kind(d.dtype, what), d), False


def _expect(dev: _Dev, kinds: tuple, what: str, name: str) -> None:
    if dev.kind not in kinds:
        raise _core.KQuantsError(f"{what}: {name} must be {' or '.join(kinds)} on the device, got {dev.kind}")


def _result(out: DeviceArray, on_device: bool):
    return out if on_device else out.numpy()


# ---- array operations ------------------------------------------------------------

def quantize_array_cuda(array, type: TypeLike, imatrix=None):
    """``quantize_array`` on the GPU: the same bytes as the CPU reference.

    ``array``: 2-D float32/float16/bfloat16 ``[rows, cols]`` on the host or the
    device. Returns uint8 ``[rows, row_bytes]`` (NumPy for host input,
    DeviceArray for device input).
    """
    what = "quantize_array(device='cuda')"
    _require(what)
    info = type_info(type)
    src, on_dev = _host_or_device(array, what)
    _expect(src, ("f32", "f16", "bf16"), what, "input")
    if len(src.shape) != 2:
        raise _core.KQuantsError(f"{what}: input must be 2-D [rows, cols], got shape {src.shape}")
    rows, cols = src.shape
    if cols % info.block_size:
        raise _core.KQuantsError(f"{what}: row length {cols} is not a multiple of the block size "
                                 f"{info.block_size} of type {info.name}")
    w_ptr, w_keep = 0, None
    if imatrix is not None and info.uses_imatrix:
        w, _ = _host_or_device(imatrix, what, host_dtype=np.float32)
        _expect(w, ("f32",), what, "imatrix")
        if w.shape != (cols,):
            raise _core.KQuantsError(f"{what}: imatrix must have shape ({cols},) (one weight per column), "
                                     f"got {w.shape}")
        w_ptr, w_keep = w.ptr, w
    out = DeviceArray((rows, info.row_bytes(cols)), np.uint8)
    _core.cuda_quantize(src.ptr, src.kind, rows, cols, info.ggml_id, w_ptr, out.ptr)
    del w_keep
    return _result(out, on_dev)


def dequantize_array_cuda(data, type: TypeLike, shape: Sequence[int], dtype=np.float32):
    """``dequantize_array`` on the GPU. float32 output is bit-identical to the
    CPU reference; ``dtype=np.float16`` rounds it to nearest even."""
    what = "dequantize_array(device='cuda')"
    _require(what)
    info = type_info(type)
    shape = tuple(int(s) for s in shape)
    if not shape:
        raise _core.KQuantsError(f"{what}: shape must have at least one dimension")
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise _core.KQuantsError(f"{what}: dtype must be float32 or float16, got {out_dtype}")
    cols = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
    if cols % info.block_size:
        raise _core.KQuantsError(f"{what}: row length {cols} is not a multiple of the block size "
                                 f"{info.block_size} of type {info.name}")
    dev = _device_operand(data, what)
    on_dev = dev is not None
    if not on_dev:
        buf = np.ascontiguousarray(data)
        d = DeviceArray.from_host(buf.reshape(-1).view(np.uint8))
        dev = _Dev(d.ptr, d.shape, "u8", d)
    nbytes = int(np.prod(dev.shape, dtype=np.int64)) * _KIND_SIZE[dev.kind]
    need = rows * info.row_bytes(cols)
    if nbytes != need:
        raise _core.KQuantsError(f"{what}: data holds {nbytes} bytes, but {rows} rows of {cols} {info.name} "
                                 f"values need {need}")
    out = DeviceArray(shape, out_dtype)
    _core.cuda_dequantize(dev.ptr, info.ggml_id, rows, cols, out.ptr, out_dtype == np.float16)
    return _result(out, on_dev)


def matmul_cuda(w_q, w_type: TypeLike, w_shape: Sequence[int], x, *, path: str = "auto"):
    """``x @ W.T`` on the GPU, with W stored quantized (``kquants.matmul``'s contract).

    ``w_q``: the bytes of W ``[m, k]`` (host or device). ``x``: ``[n, k]`` or
    ``[k]``. Returns float32 ``[n, m]`` (or ``[m]``), a DeviceArray when x is
    on the device. ``path``: "auto" (dp4a mat-vec for n <= 8, tensor cores
    above), "vec" or "mma".
    """
    what = "matmul(device='cuda')"
    _require(what)
    info = type_info(w_type)
    shape = tuple(int(s) for s in w_shape)
    if len(shape) != 2 or shape[0] < 0 or shape[1] <= 0:
        raise _core.KQuantsError(f"{what}: w_shape must be (m, k) with k > 0, got {tuple(w_shape)}")
    m, k = shape
    if k % info.block_size:
        raise _core.KQuantsError(f"{what}: row length {k} is not a multiple of the block size "
                                 f"{info.block_size} of type {info.name}")
    w = _device_operand(w_q, what)
    if w is None:
        buf = np.ascontiguousarray(w_q)
        d = DeviceArray.from_host(buf.reshape(-1).view(np.uint8))
        w = _Dev(d.ptr, d.shape, "u8", d)
    wbytes = int(np.prod(w.shape, dtype=np.int64)) * _KIND_SIZE[w.kind]
    if wbytes != m * info.row_bytes(k):
        raise _core.KQuantsError(f"{what}: weights hold {wbytes} bytes, but {m} rows of {k} {info.name} values "
                                 f"need {m * info.row_bytes(k)}")
    xd = _device_operand(x, what)
    on_dev = xd is not None
    if not on_dev:
        xa = np.asarray(x)
        if not np.issubdtype(xa.dtype, np.floating):
            raise _core.KQuantsError(f"{what}: x must be a float array, got dtype {xa.dtype}")
        d = DeviceArray.from_host(np.ascontiguousarray(xa, dtype=np.float32))
        xd = _Dev(d.ptr, d.shape, "f32", d)
    _expect(xd, ("f32",), what, "x")
    vec = len(xd.shape) == 1
    xshape = (1,) + xd.shape if vec else xd.shape
    if len(xshape) != 2 or xshape[1] != k:
        raise _core.KQuantsError(f"{what}: x must be [n, {k}] (or [{k}]) to match W {shape}, got {xd.shape}")
    n = xshape[0]
    out = DeviceArray((m,) if vec else (n, m), np.float32)
    _core.cuda_matmul(info.ggml_id, w.ptr, m, k, xd.ptr, n, out.ptr, path)
    return _result(out, on_dev)


# ---- activation ops (float32) -------------------------------------------------------

def _f32_operand(obj, what, name):
    dev, on_dev = _host_or_device(obj, what, host_dtype=np.float32)
    _expect(dev, ("f32",), what, name)
    return dev, on_dev


def _copy_of(dev: _Dev) -> DeviceArray:
    out = DeviceArray(dev.shape, np.float32)
    _core.cuda_copy(out.ptr, dev.ptr, out.nbytes)
    return out


def rmsnorm_cuda(x, w, eps: float = 1e-5):
    """``x / sqrt(mean(x^2) + eps) * w`` over the last axis of x."""
    what = "rmsnorm(device='cuda')"
    _require(what)
    xd, on_dev = _f32_operand(x, what, "x")
    wd, _ = _f32_operand(w, what, "w")
    n = xd.shape[-1] if xd.shape else 0
    if n == 0 or wd.shape != (n,):
        raise _core.KQuantsError(f"{what}: w must have shape ({n},) matching the last axis of x {xd.shape}")
    out = DeviceArray(xd.shape, np.float32)
    _core.cuda_rmsnorm(xd.ptr, wd.ptr, out.ptr, out.size // n, n, float(eps))
    return _result(out, on_dev)


def rope_cuda(x, pos, n_heads: int, head_dim: int, n_rot: Optional[int] = None, freq_base: float = 10000.0,
              freq_scale: float = 1.0, freq_factors=None, neox: bool = False):
    """Rotary embedding of x ``[rows, n_heads * head_dim]`` at positions ``pos[rows]`` (a new array)."""
    what = "rope(device='cuda')"
    _require(what)
    xd, on_dev = _f32_operand(x, what, "x")
    if len(xd.shape) != 2 or xd.shape[1] != n_heads * head_dim:
        raise _core.KQuantsError(f"{what}: x must be [rows, {n_heads * head_dim}], got {xd.shape}")
    pd, _ = _host_or_device(pos, what, host_dtype=np.int32)
    _expect(pd, ("i32",), what, "pos")
    if pd.shape != (xd.shape[0],):
        raise _core.KQuantsError(f"{what}: pos must have shape ({xd.shape[0]},), got {pd.shape}")
    n_rot = head_dim if n_rot is None else int(n_rot)
    ff_ptr, ff_keep = 0, None
    if freq_factors is not None:
        ff_keep, _ = _f32_operand(freq_factors, what, "freq_factors")
        if ff_keep.shape != (n_rot // 2,):
            raise _core.KQuantsError(f"{what}: freq_factors must have shape ({n_rot // 2},)")
        ff_ptr = ff_keep.ptr
    out = _copy_of(xd)
    _core.cuda_rope(out.ptr, pd.ptr, xd.shape[0], int(n_heads), int(head_dim), n_rot, float(freq_base),
                    float(freq_scale), ff_ptr, bool(neox))
    return _result(out, on_dev)


def softmax_cuda(x):
    """Softmax over the last axis (a new array)."""
    what = "softmax(device='cuda')"
    _require(what)
    xd, on_dev = _f32_operand(x, what, "x")
    n = xd.shape[-1] if xd.shape else 0
    if n == 0:
        raise _core.KQuantsError(f"{what}: x must have a non-empty last axis")
    out = _copy_of(xd)
    _core.cuda_softmax(out.ptr, out.size // n, n)
    return _result(out, on_dev)


def attention_cuda(q, k, v, n_head: int, n_kv: int, head_dim: int, n_past: int = 0):
    """Causal grouped-query attention of q ``[n, n_head*hd]`` over caches k, v
    ``[n_past + n, n_kv*hd]`` (query i sits at position n_past + i)."""
    what = "attention(device='cuda')"
    _require(what)
    qd, on_dev = _f32_operand(q, what, "q")
    kd, _ = _f32_operand(k, what, "k")
    vd, _ = _f32_operand(v, what, "v")
    if len(qd.shape) != 2 or qd.shape[1] != n_head * head_dim:
        raise _core.KQuantsError(f"{what}: q must be [n, {n_head * head_dim}], got {qd.shape}")
    n = qd.shape[0]
    want = (n_past + n, n_kv * head_dim)
    if kd.shape != want or vd.shape != want:
        raise _core.KQuantsError(f"{what}: k and v must be {want}, got {kd.shape} and {vd.shape}")
    out = DeviceArray(qd.shape, np.float32)
    _core.cuda_attention(qd.ptr, kd.ptr, vd.ptr, n_kv * head_dim, out.ptr, n, int(n_past), int(n_head), int(n_kv),
                         int(head_dim))
    return _result(out, on_dev)


def swiglu_cuda(g, u):
    """``silu(g) * u`` element-wise (a new array)."""
    what = "swiglu(device='cuda')"
    _require(what)
    gd, on_dev = _f32_operand(g, what, "g")
    ud, _ = _f32_operand(u, what, "u")
    if gd.shape != ud.shape:
        raise _core.KQuantsError(f"{what}: g and u must have the same shape, got {gd.shape} and {ud.shape}")
    out = _copy_of(gd)
    _core.cuda_swiglu(out.ptr, ud.ptr, out.size)
    return _result(out, on_dev)
