"""The scalar reference quantizers on awkward inputs, beyond the golden cases.

test_golden.py proves byte-exactness with ggml on its cases; these tests add
shapes and values the golden data does not cover (one-block rows, long rows,
single-sign rows, the fp16 range limit, zero rows and blocks, denormals) and
check properties that must hold for every type: finite output, a bounded
round-trip error, rows written completely, and Q8_1's s = d * sum(q) field.
All run on the generic (reference) kernel set.
"""
from __future__ import annotations

import numpy as np
import pytest

import kquants

FP16_MAX = np.float32(65504.0)

# Largest allowed max|dequantize(quantize(x)) - x| / max|x| over a row, as
# (without imatrix, with imatrix). The legacy bounds follow from the format:
# Q4_0 puts the extreme value on level -8, so a value of the opposite sign and
# equal magnitude is clamped to +7 (error amax/8); Q4_1/Q5_1 step over the
# range [min, max] <= 2*amax in 15/31 steps (error half a step); Q5_0 amax/16;
# Q8_x half of amax/127. A few percent on top covers the fp16 rounding of the
# scales. The k-quant searches have no closed form: their bounds are about
# 1.3x the worst case measured over these and broader random inputs (normal,
# Student-t, single-sign, fp16-edge, spiky rows), so a regression that
# coarsens a format by a level fails. Importance weights trade the worst case for the
# weighted error, hence the looser second column.
BOUNDS = {
    "Q4_0": (0.13, 0.20),
    "Q4_1": (0.070, 0.15),
    "Q5_0": (0.065, 0.11),
    "Q5_1": (0.034, 0.075),
    "Q8_0": (0.0045, 0.0045),
    "Q8_1": (0.0045, 0.0045),
    "Q8_K": (0.0040, 0.0040),
    "Q2_K": (0.46, 0.70),
    "Q3_K": (0.34, 0.40),
    "Q4_K": (0.11, 0.20),
    "Q5_K": (0.067, 0.095),
    "Q6_K": (0.025, 0.060),
}

QTYPES = kquants.types(quantized_only=True)


def _q(x, tname, imatrix=None):
    return kquants.quantize_array(x, tname, imatrix=imatrix, isa="generic")


def _dq(q, tname, shape):
    return kquants.dequantize_array(q, tname, shape, isa="generic")


def _cases(block: int) -> dict[str, np.ndarray]:
    """Awkward float32 rows for a type with the given block size."""
    rng = np.random.default_rng(block)
    n = 4 * block if block >= 256 else 8 * block
    edge = rng.uniform(-1, 1, (4, n)).astype(np.float32) * FP16_MAX
    edge[:, 0], edge[:, -1] = FP16_MAX, -FP16_MAX        # the exact fp16 extremes
    edge[2] = FP16_MAX                                    # constant rows at the limit
    edge[3] = -FP16_MAX
    mixed = rng.standard_normal((4, n)).astype(np.float32)
    mixed.reshape(4, -1, block)[:, ::2] = 0               # every other block all zero
    return {
        "one_block": rng.standard_normal((6, block)).astype(np.float32),
        "many_blocks": rng.standard_normal((2, 64 * block)).astype(np.float32),
        "negative_only": -rng.uniform(0.1, 3.0, (4, n)).astype(np.float32),
        "positive_only": rng.uniform(0.1, 3.0, (4, n)).astype(np.float32),
        "heavy_tail": rng.standard_t(2, (4, n)).astype(np.float32),
        "fp16_edge": edge,
        "zero_blocks": mixed,
    }


def _imatrix(n: int) -> np.ndarray:
    return (np.random.default_rng(n).random(n) + 0.01).astype(np.float32)


@pytest.mark.parametrize("use_imatrix", [False, True], ids=["plain", "imatrix"])
@pytest.mark.parametrize("info", QTYPES, ids=lambda i: i.name)
def test_roundtrip_error_is_bounded(info, use_imatrix):
    if info.name not in BOUNDS:
        pytest.fail(f"{info.name}: add its round-trip bound to BOUNDS")
    if use_imatrix and not info.uses_imatrix:
        pytest.skip(f"{info.name} ignores importance weights")
    bound = BOUNDS[info.name][1 if use_imatrix else 0]
    for case, x in _cases(info.block_size).items():
        if use_imatrix and case == "fp16_edge" and info.name in ("Q4_1", "Q5_1"):
            # ggml's weighted least-squares offset can land just below
            # -65504 and is stored as fp16 -inf; we reproduce that byte for
            # byte, so the round trip is not finite here by design.
            continue
        w = _imatrix(x.shape[1]) if use_imatrix else None
        y = _dq(_q(x, info.name, w), info.name, x.shape)
        assert np.isfinite(y).all(), f"{info.name}/{case}: non-finite output"
        amax = np.abs(x).max(axis=1)
        err = np.abs(y - x).max(axis=1)
        # A row of zero blocks and non-zero blocks is judged by its max too.
        rel = np.where(amax > 0, err / np.where(amax > 0, amax, 1), err)
        worst = float(rel.max())
        assert worst <= bound, f"{info.name}/{case}: error {worst:.4g} x row max > {bound}"
        if case == "zero_blocks":
            zero = y.reshape(y.shape[0], -1, info.block_size)[:, ::2]
            assert not zero.any(), f"{info.name}: an all-zero block does not dequantize to 0"


@pytest.mark.parametrize("info", QTYPES, ids=lambda i: i.name)
def test_zero_rows_are_exact_and_fully_written(info):
    """Zero rows give zero back, and every byte of every row is written.

    The output buffer is uninitialised memory, so identical input rows that
    gave different bytes would reveal an unwritten field.
    """
    n = 4 * info.block_size
    x = np.zeros((48, n), np.float32)
    weights = [None]
    if info.uses_imatrix:
        weights += [_imatrix(n), np.zeros(n, np.float32)]
    for w in weights:
        q = _q(x, info.name, w)
        assert (q == q[0]).all(), f"{info.name}: identical zero rows gave different bytes"
        y = _dq(q, info.name, x.shape)
        assert (y == 0).all(), f"{info.name}: zero row does not dequantize to 0"
    # Random rows repeated: the same check with every field in use.
    r = np.random.default_rng(7).standard_normal((1, n)).astype(np.float32)
    q = _q(np.repeat(r, 32, axis=0), info.name)
    assert (q == q[0]).all(), f"{info.name}: identical rows gave different bytes"


@pytest.mark.parametrize("scale", [1e-6, 1e-40], ids=["fp16_subnormal", "fp32_denormal"])
@pytest.mark.parametrize("info", QTYPES, ids=lambda i: i.name)
def test_denormal_inputs_stay_tiny_and_finite(info, scale):
    """Values below fp16's normal range (or fp32 denormals) cannot keep their
    relative precision: the fp16 scales go subnormal or flush to zero, as in
    ggml. The result must still be finite and of the same tiny magnitude."""
    n = 2 * info.block_size
    x = (np.random.default_rng(3).standard_normal((4, n)) * scale).astype(np.float32)
    for w in ([None, _imatrix(n)] if info.uses_imatrix else [None]):
        y = _dq(_q(x, info.name, w), info.name, x.shape)
        assert np.isfinite(y).all()
        # Three times the row's magnitude plus one smallest fp16 step per level.
        assert np.abs(y - x).max() <= 3 * np.abs(x).max() + 64 * 2.0 ** -24


# ---- Q8_0 / Q8_1 against a NumPy model of ggml's quantize_row_q8_{0,1}_ref ----

def _np_q8(x: np.ndarray):
    """d (fp32, before the fp16 store) and q of each 32-block."""
    blocks = x.reshape(-1, 32).astype(np.float32)
    amax = np.abs(blocks).max(axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        inv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = (blocks * inv[:, None]).astype(np.float32)
    q = np.sign(v) * np.floor(np.abs(v).astype(np.float64) + 0.5)  # roundf: half away from zero
    return d, q.astype(np.int8)


def _q8_inputs() -> np.ndarray:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, 256)).astype(np.float32)
    x[1] *= 1000
    x[2] = -np.abs(x[2])
    x[3] = rng.uniform(-1, 1, 256).astype(np.float32) * FP16_MAX  # s overflows fp16 -> inf
    x[4, :32] = 0                                                  # a zero block
    x[5] = np.round(x[5] * 4) / 4                                  # many exact .5 ties after scaling
    return x


@pytest.mark.parametrize("tname", ["Q8_0", "Q8_1"])
def test_q8_bytes_match_numpy_model(tname):
    x = _q8_inputs()
    q = _q(x, tname)
    d, qs = _np_q8(x)
    bs = 34 if tname == "Q8_0" else 36
    blocks = q.reshape(-1, bs)
    np.testing.assert_array_equal(blocks[:, :2].copy().view(np.uint16)[:, 0],
                                  d.astype(np.float16).view(np.uint16))
    np.testing.assert_array_equal(blocks[:, bs - 32:].view(np.int8), qs)


def test_q8_1_s_is_d_times_sum_in_fp16():
    x = _q8_inputs()
    blocks = _q(x, "Q8_1").reshape(-1, 36)
    d_fp32, _ = _np_q8(x)
    qs = blocks[:, 4:].view(np.int8).astype(np.int32)
    s = blocks[:, 2:4].copy().view(np.float16)[:, 0]
    # ggml multiplies the integer sum by the fp32 d (not the fp16-rounded one)
    # and rounds the product to fp16 once; an overflow gives +-inf.
    with np.errstate(over="ignore"):
        expected = (qs.sum(axis=1).astype(np.float32) * d_fp32).astype(np.float16)
    np.testing.assert_array_equal(s.view(np.uint16), expected.view(np.uint16))
    assert np.isinf(s).any(), "the fp16-edge row should overflow s"
    # And s agrees with the stored d to fp16 precision where it is finite.
    d16 = blocks[:, :2].copy().view(np.float16)[:, 0].astype(np.float32)
    fin = np.isfinite(s)
    approx = qs.sum(axis=1)[fin] * d16[fin]
    np.testing.assert_allclose(s[fin].astype(np.float32), approx, rtol=2e-3, atol=1e-6)
