"""kquants.matmul: every weight type on every ISA this CPU runs.

The oracle is the dequantized weight matrix times x in float64. Errors are
measured per output element relative to sum_k |w * x| (the scale the
activation quantization error is proportional to) and must stay within the
type's matmul_rtol from the traits table. Each ISA is also checked against
the scalar reference ("generic") to ISA_RTOL: every kernel set computes the
same integer block sums from the same activation bytes, only the float
summation order differs.
"""
from __future__ import annotations

import functools
import zlib

import numpy as np
import pytest

import kquants

MATMUL_TYPES = [t.name for t in kquants.types() if t.matmul_rtol > 0]
ISA_RTOL = 1e-5
ISAS = kquants.system_info()["supported_isas"]


def _k_of(name: str, what: str) -> int:
    bs = kquants.type_info(name).block_size
    return {"one_block": bs, "small": max(bs, 32) * 2, "large": 14336, "odd": 7 * bs if bs > 1 else 333}[what]


# (id, m, k kind, n): rows not a multiple of any tile (37, 5, 67, 19, 150), k
# of exactly one block, large k, odd k, and n = 1, 7, 512. From 32 columns on
# (96 for Q4_K, Q5_K) the AVX-512 k-quant mat-mat takes k in chunks and rows
# in blocks of 128: large_k_n100 and k_odd_n40 run several chunks, a partial
# column tile and a partial last row block.
SHAPES = [
    ("one_block_n7", 37, "one_block", 7),
    ("m67_n1", 67, "small", 1),
    ("m37_n7", 37, "small", 7),
    ("large_k_n7", 5, "large", 7),
    ("large_k_n1", 9, "large", 1),
    ("m37_n512", 37, "small", 512),
    ("k_odd_n9", 19, "odd", 9),  # k not a multiple of any vector or group
    ("k_odd_n40", 37, "odd", 40),
    ("large_k_n100", 150, "large", 100),
]


@functools.lru_cache(maxsize=None)
def _case(name: str, shape_id: str):
    _, m, kk, n = next(s for s in SHAPES if s[0] == shape_id)
    k = _k_of(name, kk)
    rng = np.random.default_rng(zlib.crc32(f"{name}/{shape_id}".encode()))
    w = rng.standard_normal((m, k)).astype(np.float32)
    x = rng.standard_normal((n, k)).astype(np.float32)
    q = kquants.quantize_array(w, name)
    wd = kquants.dequantize_array(q, name, w.shape).astype(np.float64)
    ref = x.astype(np.float64) @ wd.T
    scale = np.abs(x).astype(np.float64) @ np.abs(wd).T + 1e-30
    gen = kquants.matmul(q, name, w.shape, x, isa="generic")
    return q, x, ref, scale, gen


def _rel_err(y, ref, scale):
    return float((np.abs(y.astype(np.float64) - ref) / scale).max())


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("shape_id", [s[0] for s in SHAPES])
@pytest.mark.parametrize("name", MATMUL_TYPES)
def test_matmul_matches_reference(name, shape_id, isa):
    q, x, ref, scale, gen = _case(name, shape_id)
    rtol = kquants.type_info(name).matmul_rtol
    m = ref.shape[1]
    y = gen if isa == "generic" else kquants.matmul(q, name, (m, x.shape[1]), x, isa=isa)
    assert y.shape == ref.shape and y.dtype == np.float32
    assert np.isfinite(y).all()
    err = _rel_err(y, ref, scale)
    assert err <= rtol, f"{name} {shape_id} {isa}: error vs dequantized float64 {err:.3g} > rtol {rtol:.3g}"
    err_g = _rel_err(y, gen.astype(np.float64), scale)
    assert err_g <= ISA_RTOL, f"{name} {shape_id} {isa}: error vs generic {err_g:.3g} > {ISA_RTOL:.3g}"


@pytest.mark.parametrize("name", MATMUL_TYPES)
def test_threads_agree(name):
    q, x, ref, scale, _ = _case(name, "m37_n7")
    shape = (ref.shape[1], x.shape[1])
    y1 = kquants.matmul(q, name, shape, x, threads=1)
    y2 = kquants.matmul(q, name, shape, x, threads=2)
    np.testing.assert_array_equal(y1, y2)


def test_vector_input_and_dtypes():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((12, 64)).astype(np.float32)
    x = rng.standard_normal(64).astype(np.float32)
    q = kquants.quantize_array(w, "q8_0")
    y = kquants.matmul(q, "q8_0", w.shape, x)
    assert y.shape == (12,)
    np.testing.assert_array_equal(y, kquants.matmul(q, "Q8_0", w.shape, x[None, :])[0])
    np.testing.assert_array_equal(y, kquants.matmul(q, kquants.GGMLType.Q8_0, w.shape, x.astype(np.float64)))
    empty = kquants.matmul(q, "q8_0", w.shape, np.zeros((0, 64), np.float32))
    assert empty.shape == (0, 12)


def test_matmul_errors():
    w = np.zeros((4, 64), np.float32)
    q = kquants.quantize_array(w, "q4_0")
    x = np.zeros((2, 64), np.float32)
    with pytest.raises(kquants.KQuantsError, match="block size 32"):
        kquants.matmul(q, "q4_0", (4, 48), x[:, :48])
    with pytest.raises(kquants.KQuantsError, match=r"x must be \[n, 64\]"):
        kquants.matmul(q, "q4_0", (4, 64), np.zeros((2, 32), np.float32))
    with pytest.raises(kquants.KQuantsError, match="bytes"):
        kquants.matmul(q, "q4_0", (5, 64), x)
    with pytest.raises(kquants.KQuantsError, match="float"):
        kquants.matmul(q, "q4_0", (4, 64), np.zeros((2, 64), np.int32))
    with pytest.raises(kquants.KQuantsError, match="w_shape"):
        kquants.matmul(q, "q4_0", (4, 64, 1), x)
    with pytest.raises(kquants.KQuantsError, match="no matrix multiplication"):
        kquants.matmul(kquants.quantize_array(np.zeros((1, 256), np.float32), "q8_K"), "q8_K", (1, 256),
                       np.zeros((1, 256), np.float32))
    with pytest.raises(kquants.KQuantsError, match="ISA"):
        kquants.matmul(q, "q4_0", (4, 64), x, isa="nonsense")


@pytest.mark.parametrize("n", [1, 3, 40])
@pytest.mark.parametrize("name", MATMUL_TYPES)
def test_prepared_weight_same_floats_on_whole_groups(name, n):
    """k = 1024 fills whole groups of 16 lane blocks in every packed layout
    (no padding), where PreparedWeight packs: the unprepared call must take
    the same kernel and give the same floats, at every ISA."""
    rng = np.random.default_rng(zlib.crc32(f"{name}/whole/{n}".encode()))
    m, k = 24, 1024
    q = kquants.quantize_array(rng.standard_normal((m, k)).astype(np.float32), name)
    x = rng.standard_normal((n, k)).astype(np.float32)
    for isa in ISAS:
        pw = kquants.PreparedWeight(q, name, (m, k), isa=isa)
        np.testing.assert_array_equal(pw.matmul(x, isa=isa), kquants.matmul(q, name, (m, k), x, isa=isa),
                                      err_msg=f"{name} n={n} isa={isa}")


@pytest.mark.parametrize("name", MATMUL_TYPES)
def test_prepared_weight(name):
    q, x, ref, scale, gen = _case(name, "m37_n7")
    shape = (ref.shape[1], x.shape[1])
    pw = kquants.PreparedWeight(q, name, shape)
    assert pw.shape == shape and pw.type.name == name and pw.nbytes > 0
    np.testing.assert_array_equal(pw.matmul(x), kquants.matmul(q, name, shape, x))
    np.testing.assert_array_equal(kquants.matmul(pw, x[:1]), kquants.matmul(q, name, shape, x[:1]))
    np.testing.assert_array_equal(kquants.matmul(pw, name, shape, x[0]), kquants.matmul(q, name, shape, x[0]))
    # A kernel set that reads ggml's rows uses the original bytes.
    np.testing.assert_array_equal(pw.matmul(x, isa="generic"), gen)
    for isa in ISAS:
        assert _rel_err(pw.matmul(x, isa=isa), ref, scale) <= kquants.type_info(name).matmul_rtol


def test_prepared_weight_errors():
    w = np.zeros((4, 64), np.float32)
    q = kquants.quantize_array(w, "q4_0")
    pw = kquants.PreparedWeight(q, "q4_0", w.shape)
    with pytest.raises(kquants.KQuantsError, match="does not match"):
        kquants.matmul(pw, "q8_0", w.shape, w)
    with pytest.raises(kquants.KQuantsError, match="does not match"):
        kquants.matmul(pw, "q4_0", (2, 128), w)
    with pytest.raises(kquants.KQuantsError, match="bytes"):
        kquants.PreparedWeight(q[:3], "q4_0", w.shape)


@pytest.mark.parametrize("name", [t for t in MATMUL_TYPES if kquants.type_info(t).is_quantized])
def test_packers_agree(name):
    """Every kernel set's packer writes the same packed bytes, for any bytes
    (random ones included: NaN scales, every bit pattern) and group counts."""
    info = kquants.type_info(name)
    sets = [i for i in ISAS if i != "generic"]
    if len(sets) < 2:
        pytest.skip("one SIMD kernel set only")
    rng = np.random.default_rng(7)
    for blocks in (1, 15, 16, 17, 32, 33):
        k = blocks * info.block_size
        q = rng.integers(0, 256, size=(3, info.row_bytes(k)), dtype=np.uint8)
        # Sets with a mat-vec on ggml rows do not prepare rows that packing
        # would pad (their mat-mat packing of such rows is checked against
        # the reference by the matmul tests).
        packed = [(isa, pw._packed) for isa in sets
                  if (pw := kquants.PreparedWeight(q, name, (3, k), isa=isa))._packed is not None]
        if blocks % 16 == 0 and info.block_size != 256:
            assert len(packed) == len(sets)
        for isa, p in packed[1:]:
            np.testing.assert_array_equal(p, packed[0][1], err_msg=f"{name} k={k}: {isa} vs {packed[0][0]}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", MATMUL_TYPES)
def test_vec_dot(name, isa):
    """The per-ISA dot product of one weight row and one activation row (in
    the type's vec_dot_type) agrees with matmul's result for that output."""
    info = kquants.type_info(name)
    act = kquants.type_info(info.vec_dot_type).name
    q, x, ref, scale, gen = _case(name, "k_odd_n9")
    k = x.shape[1]
    a = kquants.quantize_array(x[:2], act)
    for r in (0, 5):
        for c in (0, 1):
            d = kquants._core.vec_dot(q[r], a[c], info.ggml_id, k, isa)
            assert abs(d - gen[c, r]) <= ISA_RTOL * scale[c, r], (name, isa, r, c, d, gen[c, r])
