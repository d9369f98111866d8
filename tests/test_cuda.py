"""The CUDA backend (kquants.cuda) against the CPU reference.

Three tests always run: the build reports its CUDA state consistently; the
device code, compiled for the host (csrc/cuda_emu), gives the reference's
bytes; and without a usable GPU every device entry point raises a clear
KQuantsError. Everything else needs a GPU and skips without one.

What the GPU tests prove:
  * quantization is byte-identical to the CPU reference (isa="generic") for
    every type, with and without imatrix, on awkward shapes and values, from
    float32/float16/bfloat16 sources, and to the golden ggml data;
  * float32 dequantization is bit-identical, float16 output is that value
    rounded to nearest even; the fp16/bf16 conversions agree bit for bit;
  * matmul (dp4a mat-vec and tensor-core paths) agrees with the float64
    product of the dequantized weights within the type's tolerance;
  * device arrays (DeviceArray, __cuda_array_interface__, DLPack) pass
    through without a host round trip and results stay on the device;
  * RMSNorm, RoPE, softmax, attention and SwiGLU agree with NumPy models.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import kquants
import kquants.cuda as kc
from conftest import require_shared, shared_dir

HAVE_CUDA = kquants.cuda_available()
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason=f"CUDA unavailable: {kc.cuda_info()['status']}")

ALL = kquants.types()
QTYPES = kquants.types(quantized_only=True)
FP16_MAX = np.float32(65504.0)


# ---- always run ---------------------------------------------------------------------

def test_cuda_state_is_consistent():
    info = kc.cuda_info()
    for key in ("compiled", "available", "status", "archs", "runtime_version", "driver_version",
                "driver_present", "device_count", "device_name"):
        assert key in info, key
    assert kquants.system_info()["cuda"] == info
    assert kquants.cuda_available() is bool(info["available"])
    assert isinstance(info["status"], str) and info["status"]
    if not info["compiled"]:
        assert not info["available"] and info["runtime_version"] == 0
        assert "without CUDA" in info["status"]
    else:
        assert info["archs"] and info["runtime_version"] > 0
    if info["available"]:
        assert info["driver_present"] and info["device_count"] >= 1 and info["device_name"]
        assert info["status"] == "ok"
    else:
        assert info["status"] != "ok"
    if not info["driver_present"]:
        assert not info["available"]
    for t in ALL:  # no kernels in the stub; all of them in a CUDA build
        assert kquants._core.cuda_has_quantize(t.ggml_id) == info["compiled"]
        assert kquants._core.cuda_has_matmul(t.ggml_id) == info["compiled"]


def test_device_code_matches_reference_in_host_emulation():
    # The per-block device functions (quantizers, chunk dequantizers, dp4a
    # unpackers) compiled for the CPU: proves the port's arithmetic is the
    # reference's in every build, GPU or not.
    report = kquants._core.cuda_emulation_check()
    assert report == [], "\n".join(report)


def test_dlpack_capsules_are_read_in_place():
    # The DLPack reader works on any capsule; NumPy's are CPU ones, which
    # kquants.cuda treats as host data (np.asarray) rather than device memory.
    a = np.arange(24, dtype=np.float32).reshape(4, 6)[1:]
    info = kquants._core.dlpack_info(a.__dlpack__())
    assert info["ptr"] == a.ctypes.data and info["device_type"] == 1
    assert (info["code"], info["bits"], info["lanes"]) == (2, 32, 1)
    assert info["shape"] == (3, 6) and info["strides"] in (None, (6, 1))
    assert kc._device_operand(a, "test") is None  # host memory: not a device operand
    with pytest.raises(kquants.KQuantsError, match="capsule"):
        kquants._core.dlpack_info(_used_capsule(a))


def _used_capsule(a):
    import ctypes
    cap = a.__dlpack__()
    set_name = ctypes.pythonapi.PyCapsule_SetName
    set_name.argtypes, set_name.restype = [ctypes.py_object, ctypes.c_char_p], ctypes.c_int
    set_name(cap, b"used_dltensor")  # what a consumer leaves behind (the tiny tensor then leaks)
    return cap


def test_unavailable_cuda_raises_kquants_error():
    if HAVE_CUDA:
        pytest.skip("CUDA is available here")
    x = np.zeros((2, 32), np.float32)
    calls = {
        "quantize": lambda: kc.quantize_array_cuda(x, "q4_0"),
        "dequantize": lambda: kc.dequantize_array_cuda(np.zeros((2, 18), np.uint8), "q4_0", (2, 32)),
        "matmul": lambda: kc.matmul_cuda(np.zeros((2, 18), np.uint8), "q4_0", (2, 32), x),
        "to_device": lambda: kc.to_device(x),
        "rmsnorm": lambda: kc.rmsnorm_cuda(x, np.ones(32, np.float32)),
        "softmax": lambda: kc.softmax_cuda(x),
        "swiglu": lambda: kc.swiglu_cuda(x, x),
        "DeviceArray": lambda: kc.DeviceArray((4,), np.float32),
        "raw entry point": lambda: kquants._core.cuda_quantize(0, "f32", 1, 32, 2, 0, 0),
    }
    for name, call in calls.items():
        with pytest.raises(kquants.KQuantsError, match="CUDA is not available"):
            call()
    # Plain errors: a KQuantsError is a ValueError.
    with pytest.raises(ValueError):
        kc.quantize_array_cuda(x, "q4_0")


# ---- helpers ------------------------------------------------------------------------

def _ref_q(x, tname, imatrix=None):
    return kquants.quantize_array(x, tname, imatrix=imatrix, isa="generic")


def _ref_dq(q, tname, shape):
    return kquants.dequantize_array(q, tname, shape, isa="generic")


def _imatrix(n: int) -> np.ndarray:
    return (np.random.default_rng(n).random(n) + 0.01).astype(np.float32)


def _cases(block: int) -> dict[str, np.ndarray]:
    """Awkward float32 inputs: odd row counts, one-block rows, value edge cases."""
    rng = np.random.default_rng(block)
    n = 3 * block if block >= 256 else 7 * block
    edge = rng.uniform(-1, 1, (3, n)).astype(np.float32) * FP16_MAX
    edge[:, 0], edge[:, -1] = FP16_MAX, -FP16_MAX
    edge[2] = FP16_MAX
    mixed = rng.standard_normal((5, n)).astype(np.float32)
    mixed.reshape(5, -1, block)[:, ::2] = 0
    mixed[1] = 0
    return {
        "one_row_one_block": rng.standard_normal((1, block)).astype(np.float32),
        "gauss": rng.standard_normal((13, n)).astype(np.float32),
        "heavy_tail": rng.standard_t(2, (5, n)).astype(np.float32),
        "positive": rng.uniform(0.1, 3.0, (3, n)).astype(np.float32),
        "negative": -rng.uniform(0.1, 3.0, (3, n)).astype(np.float32),
        "fp16_edge": edge,
        "zero_blocks": mixed,
        "tiny": (rng.standard_normal((3, n)) * 1e-6).astype(np.float32),
        "denormal": (rng.standard_normal((2, n)) * 1e-40).astype(np.float32),
        "small_ints": rng.integers(-8, 8, (4, n)).astype(np.float32),
    }


def _assert_same_bytes(got, expected, what):
    got = np.asarray(got)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    bad = np.nonzero((got != expected).any(axis=1))[0]
    assert bad.size == 0, f"{what}: rows {bad.tolist()[:10]} differ from the CPU reference"


# ---- conversions --------------------------------------------------------------------

@needs_cuda
def test_fp16_bf16_conversions_are_bit_exact():
    # Every fp16/bf16 bit pattern widens exactly (NaN payloads included).
    bits = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    for t in ("F16", "BF16"):
        got = kc.dequantize_array_cuda(bits.view(np.uint8), t, bits.shape)
        np.testing.assert_array_equal(got.view(np.uint32), _ref_dq(bits.view(np.uint8), t, bits.shape).view(np.uint32))
    # Narrowing: 2^22 float32 patterns spread over every exponent, plus the
    # rounding boundaries (ties at every exponent) and specials.
    rng = np.random.default_rng(0)
    u = (np.arange(1 << 22, dtype=np.uint64) << np.uint64(10)).astype(np.uint32)
    u ^= rng.integers(0, 1 << 10, u.size, dtype=np.uint32)
    ties = (np.arange(256, dtype=np.uint32) << 23) | 0x1000
    specials = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00001, 0x477FF000, 0x477FEFFF,
                         0x33000000, 0x33000001, 0x38800000, 0x387FFFFF], np.uint32)
    x = np.concatenate([u, ties, specials, np.zeros(256 - (ties.size + specials.size) % 256, np.uint32)])
    x = x.view(np.float32).reshape(-1, 256)
    for t in ("F16", "BF16", "F32"):
        _assert_same_bytes(kc.quantize_array_cuda(x, t), _ref_q(x, t), t)


# ---- quantize / dequantize ------------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("use_imatrix", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("info", ALL, ids=lambda i: i.name)
def test_quantize_matches_reference(info, use_imatrix):
    if use_imatrix and not info.uses_imatrix:
        pytest.skip(f"{info.name} ignores importance weights")
    block = max(info.block_size, 32)
    for case, x in _cases(block).items():
        w = _imatrix(x.shape[1]) if use_imatrix else None
        _assert_same_bytes(kc.quantize_array_cuda(x, info.name, imatrix=w), _ref_q(x, info.name, w),
                           f"{info.name}/{case}")


@needs_cuda
@pytest.mark.parametrize("info", QTYPES, ids=lambda i: i.name)
def test_quantize_from_half_sources(info):
    x = np.random.default_rng(5).standard_normal((3, 2 * info.block_size)).astype(np.float32)
    x16 = x.astype(np.float16)
    _assert_same_bytes(kc.quantize_array_cuda(x16, info.name), _ref_q(x16, info.name), f"{info.name}/f16")
    # bfloat16 by its bits through DLPack-free host path: ml_dtypes if present.
    ml_dtypes = pytest.importorskip("ml_dtypes")
    xb = x.astype(ml_dtypes.bfloat16)
    _assert_same_bytes(kc.quantize_array_cuda(xb, info.name), _ref_q(xb, info.name), f"{info.name}/bf16")


def _golden_params(sub: str):
    base = shared_dir()
    names = [t.name for t in ALL]
    if base is None or not (base / "golden" / sub / "index.json").exists():
        return [pytest.param("missing", "F16", id="shared-missing")]
    index = json.loads((base / "golden" / sub / "index.json").read_text())
    return [(case, t) for case, meta in index.items() for t in names if t in meta["types"]]


@needs_cuda
@pytest.mark.parametrize("case,tname", _golden_params("quant"))
def test_golden_quantize_and_dequantize(case, tname):
    data = np.load(require_shared("golden/quant") / f"{case}.npz")
    x = data["input"]
    _assert_same_bytes(kc.quantize_array_cuda(x, tname), data[f"q_{tname}"], f"golden {case}/{tname}")
    if f"dq_{tname}" in data:
        dq = kc.dequantize_array_cuda(data[f"q_{tname}"], tname, x.shape)
        np.testing.assert_array_equal(dq.view(np.uint32), data[f"dq_{tname}"].view(np.uint32))


@needs_cuda
@pytest.mark.parametrize("case,tname", _golden_params("quant_imatrix"))
def test_golden_quantize_imatrix(case, tname):
    data = np.load(require_shared("golden/quant_imatrix") / f"{case}.npz")
    q = kc.quantize_array_cuda(data["input"], tname, imatrix=data["imatrix"])
    _assert_same_bytes(q, data[f"q_{tname}"], f"golden imatrix {case}/{tname}")


@needs_cuda
@pytest.mark.parametrize("info", ALL, ids=lambda i: i.name)
def test_dequantize_matches_reference(info):
    block = max(info.block_size, 32)
    for case, x in _cases(block).items():
        q = _ref_q(x, info.name)
        ref = _ref_dq(q, info.name, x.shape)
        got = kc.dequantize_array_cuda(q, info.name, x.shape)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got.view(np.uint32), ref.view(np.uint32), err_msg=f"{info.name}/{case}")
        got16 = kc.dequantize_array_cuda(q, info.name, x.shape, dtype=np.float16)
        with np.errstate(over="ignore"):
            np.testing.assert_array_equal(got16.view(np.uint16), ref.astype(np.float16).view(np.uint16),
                                          err_msg=f"{info.name}/{case} (f16)")


@needs_cuda
def test_float_types_accept_any_row_length():
    x = np.random.default_rng(1).standard_normal((3, 37)).astype(np.float32)
    for t in ("F32", "F16", "BF16"):
        q = kc.quantize_array_cuda(x, t)
        _assert_same_bytes(q, _ref_q(x, t), t)
        np.testing.assert_array_equal(kc.dequantize_array_cuda(q, t, x.shape), _ref_dq(q, t, x.shape))


@needs_cuda
def test_bad_arguments_raise_kquants_errors():
    x = np.zeros((2, 33), np.float32)
    with pytest.raises(kquants.KQuantsError, match="block size 32"):
        kc.quantize_array_cuda(x, "q4_0")
    with pytest.raises(kquants.KQuantsError, match="imatrix"):
        kc.quantize_array_cuda(np.zeros((2, 32), np.float32), "q4_0", imatrix=np.ones(31, np.float32))
    with pytest.raises(kquants.KQuantsError, match="bytes"):
        kc.dequantize_array_cuda(np.zeros(17, np.uint8), "q4_0", (1, 32))
    with pytest.raises(kquants.KQuantsError, match="dtype"):
        kc.quantize_array_cuda(np.zeros((2, 32), np.float64), "q4_0")
    with pytest.raises(kquants.KQuantsError, match="x must be"):
        kc.matmul_cuda(np.zeros((2, 18), np.uint8), "q4_0", (2, 32), np.zeros((1, 64), np.float32))


# ---- matmul -------------------------------------------------------------------------

def _matmul_case(info, m, k, n, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((m, k)).astype(np.float32)
    x = rng.standard_normal((n, k)).astype(np.float32)
    q = _ref_q(w, info.name)
    wd = _ref_dq(q, info.name, (m, k)).astype(np.float64)
    ref = x.astype(np.float64) @ wd.T
    scale = np.abs(x).astype(np.float64) @ np.abs(wd).T  # sum |w*x| per output
    return q, x, ref, scale


@needs_cuda
@pytest.mark.parametrize("path", ["vec", "mma"])
@pytest.mark.parametrize("info", ALL, ids=lambda i: i.name)
def test_matmul_matches_dequantized_product(info, path):
    # The tensor-core path rounds x and W to fp16 (11 bits): 3e-3 of sum|w*x| covers it.
    tol = max(info.matmul_rtol, 3e-3) if path == "mma" else max(info.matmul_rtol, 1e-5)
    bs = info.block_size
    kb = 2 * bs if bs >= 256 else 9 * max(bs, 32)  # several chunks; 288 for floats (not a multiple of 64)
    for m, k, n in [(1, kb, 1), (67, kb, 3), (130, 2 * kb, 8), (33, kb, 9), (129, kb, 70)]:
        q, x, ref, scale = _matmul_case(info, m, k, n, seed=m + n)
        y = kc.matmul_cuda(q, info.name, (m, k), x, path=path)
        assert y.shape == (n, m) and y.dtype == np.float32
        err = np.abs(y - ref) / np.maximum(scale, 1e-30)
        assert err.max() <= tol, f"{info.name} {path} m={m} k={k} n={n}: error {err.max():.3g} > {tol}"


@needs_cuda
def test_matmul_vector_and_auto_paths():
    info = kquants.type_info("q4_K")
    q, x, ref, scale = _matmul_case(info, 96, 512, 1)
    y = kc.matmul_cuda(q, "q4_K", (96, 512), x[0])
    assert y.shape == (96,)
    assert (np.abs(y - ref[0]) / scale[0]).max() <= info.matmul_rtol
    q, x, ref, scale = _matmul_case(info, 96, 512, 40)
    y = kc.matmul_cuda(q, "q4_K", (96, 512), x)  # auto -> tensor cores
    assert (np.abs(y - ref) / scale).max() <= 3e-3


# ---- device pass-through ---------------------------------------------------------------

@needs_cuda
def test_device_arrays_pass_through():
    x = np.random.default_rng(2).standard_normal((4, 512)).astype(np.float32)
    dx = kc.to_device(x)
    assert isinstance(dx, kc.DeviceArray) and dx.__cuda_array_interface__["data"][0] == dx.ptr
    dq = kc.quantize_array_cuda(dx, "q4_K")
    assert isinstance(dq, kc.DeviceArray) and dq.dtype == np.uint8
    np.testing.assert_array_equal(dq.numpy(), _ref_q(x, "q4_K"))
    y = kc.dequantize_array_cuda(dq, "q4_K", x.shape)
    assert isinstance(y, kc.DeviceArray)
    np.testing.assert_array_equal(np.asarray(y), _ref_dq(dq.numpy(), "q4_K", x.shape))
    out = kc.matmul_cuda(dq, "q4_K", x.shape, kc.to_device(x[:2]))
    assert isinstance(out, kc.DeviceArray) and out.shape == (2, 4)


class _CaiWrapper:
    """A foreign device array: only __cuda_array_interface__ (like Numba's)."""

    def __init__(self, dev):
        self._dev = dev
        self.__cuda_array_interface__ = dev.__cuda_array_interface__


@needs_cuda
def test_cuda_array_interface_objects_are_used_in_place():
    x = np.random.default_rng(3).standard_normal((3, 64)).astype(np.float32)
    wrapped = _CaiWrapper(kc.to_device(x))
    q = kc.quantize_array_cuda(wrapped, "q8_0")
    assert isinstance(q, kc.DeviceArray)
    np.testing.assert_array_equal(q.numpy(), _ref_q(x, "q8_0"))


@needs_cuda
def test_torch_and_cupy_interop():
    done = 0
    try:
        import torch
        if torch.cuda.is_available():
            t = torch.randn(4, 256, device="cuda")
            q = kc.quantize_array_cuda(t, "q6_K")  # via __cuda_array_interface__
            np.testing.assert_array_equal(q.numpy(), _ref_q(t.cpu().numpy(), "q6_K"))
            back = torch.as_tensor(kc.dequantize_array_cuda(q, "q6_K", (4, 256)), device="cuda")
            assert back.shape == (4, 256)
            tb = t.to(torch.bfloat16)  # bfloat16 has no typestr: it travels by DLPack
            qb = kc.quantize_array_cuda(tb, "q4_0")
            np.testing.assert_array_equal(qb.numpy(), _ref_q(tb.float().cpu().numpy(), "q4_0"))
            done += 1
    except ImportError:
        pass
    try:
        import cupy
        c = cupy.asarray(np.random.default_rng(4).standard_normal((2, 64)).astype(np.float32))
        q = kc.quantize_array_cuda(c, "q5_1")
        np.testing.assert_array_equal(cupy.asarray(q).get(), _ref_q(c.get(), "q5_1"))
        done += 1
    except ImportError:
        pass
    if not done:
        pytest.skip("neither torch (with CUDA) nor cupy installed")


# ---- activation ops ---------------------------------------------------------------------

def _np_rope(x, pos, n_heads, hd, n_rot, base, fscale, ff, neox):
    x = x.astype(np.float64).reshape(len(pos), n_heads, hd).copy()
    half = n_rot // 2
    i = np.arange(half)
    theta = pos[:, None] * base ** (-2.0 * i / n_rot) / (1.0 if ff is None else ff[None, :]) * fscale
    c, s = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    a_idx, b_idx = (i, i + half) if neox else (2 * i, 2 * i + 1)
    a, b = x[:, :, a_idx].copy(), x[:, :, b_idx].copy()
    x[:, :, a_idx] = a * c - b * s
    x[:, :, b_idx] = a * s + b * c
    return x.reshape(len(pos), -1)


@needs_cuda
def test_rmsnorm_softmax_swiglu():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 1000)).astype(np.float32)
    w = rng.standard_normal(1000).astype(np.float32)
    ref = x / np.sqrt((x.astype(np.float64) ** 2).mean(axis=1, keepdims=True) + 1e-6) * w
    np.testing.assert_allclose(kc.rmsnorm_cuda(x, w, 1e-6), ref, rtol=1e-5, atol=1e-6)
    s = kc.softmax_cuda(x * 10)
    e = np.exp(x.astype(np.float64) * 10 - (x * 10).max(axis=1, keepdims=True))
    np.testing.assert_allclose(s, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-9)
    u = rng.standard_normal((5, 1000)).astype(np.float32)
    g = x.astype(np.float64)
    np.testing.assert_allclose(kc.swiglu_cuda(x, u), g / (1 + np.exp(-g)) * u, rtol=1e-5, atol=1e-6)


@needs_cuda
@pytest.mark.parametrize("neox", [False, True], ids=["normal", "neox"])
def test_rope(neox):
    rng = np.random.default_rng(8)
    n_heads, hd, n_rot = 3, 64, 48
    x = rng.standard_normal((7, n_heads * hd)).astype(np.float32)
    pos = np.array([0, 1, 2, 17, 100, 511, 4000], np.int32)
    ff = (1 + rng.random(n_rot // 2)).astype(np.float32)
    got = kc.rope_cuda(x, pos, n_heads, hd, n_rot, 10000.0, 0.5, ff, neox)
    ref = _np_rope(x, pos, n_heads, hd, n_rot, 10000.0, 0.5, ff, neox)
    np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-3)  # theta recurrence rounding at pos 4000
    unrotated = np.concatenate([np.arange(h * hd + n_rot, (h + 1) * hd) for h in range(n_heads)])
    np.testing.assert_array_equal(got[:, unrotated], x[:, unrotated])


@needs_cuda
@pytest.mark.parametrize("n,n_past,hd", [(1, 0, 64), (1, 37, 128), (9, 5, 64), (3, 300, 80)])
def test_attention(n, n_past, hd):
    rng = np.random.default_rng(n + n_past)
    n_head, n_kv = 6, 2
    q = rng.standard_normal((n, n_head * hd)).astype(np.float32)
    k = rng.standard_normal((n_past + n, n_kv * hd)).astype(np.float32)
    v = rng.standard_normal((n_past + n, n_kv * hd)).astype(np.float32)
    got = kc.attention_cuda(q, k, v, n_head, n_kv, hd, n_past)
    ref = np.zeros((n, n_head * hd))
    for i in range(n):
        for h in range(n_head):
            kvh = h // (n_head // n_kv)
            keys = k[: n_past + i + 1, kvh * hd:(kvh + 1) * hd].astype(np.float64)
            vals = v[: n_past + i + 1, kvh * hd:(kvh + 1) * hd].astype(np.float64)
            sc = keys @ q[i, h * hd:(h + 1) * hd] / np.sqrt(hd)
            p = np.exp(sc - sc.max())
            ref[i, h * hd:(h + 1) * hd] = (p / p.sum()) @ vals
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
