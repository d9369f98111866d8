"""The ISA quantizers give the reference's bytes on awkward inputs.

Every supported ISA's kernel set (system_info()["supported_isas"]) is compared
byte for byte with isa="generic", the scalar reference, for every quantizable
type: zeros, constants, single spikes, signed zeros, huge and tiny magnitudes
(fp32 denormals, values whose squares overflow), non-finite values, many random
rows from several seeds and distributions, and rows of one block, of an odd
number of blocks (partly filled lanes) and of many blocks. Dequantizing the
ISA's bytes with the ISA's kernels must give the reference's floats too.
"""
from __future__ import annotations

import numpy as np
import pytest

import kquants

ISAS = [i for i in kquants.system_info()["supported_isas"] if i != "generic"]
TYPES = [t for t in kquants.types() if t.name != "F32"]
FLT_MAX = np.finfo(np.float32).max


def _blocks(rng, rows, nblocks, block):
    return rng.standard_normal((rows, nblocks * block)).astype(np.float32)


def _cases(block: int) -> dict[str, np.ndarray]:
    """Awkward float32 rows whose length is a multiple of `block`."""
    rng = np.random.default_rng(1234 + block)
    kb = max(1, 256 // block)           # blocks per 256 values
    n = 3 * kb * block                  # three super-blocks: an odd count fills lanes partly
    cases: dict[str, np.ndarray] = {}
    cases["zeros"] = np.zeros((2, n), np.float32)
    consts = np.array([1.0, -1.0, 3.5e-3, -7e4, 65504.0, 1e-30], np.float32)
    cases["constant"] = np.repeat(consts[:, None], n, axis=1)
    spike = np.zeros((4, n), np.float32)
    for r in range(4):                  # one spike per block, at random positions and signs
        for b in range(n // block):
            spike[r, b * block + rng.integers(block)] = rng.choice([-1, 1]) * 10.0 ** rng.integers(-3, 4)
    cases["spikes"] = spike
    lone = rng.standard_normal((3, n)).astype(np.float32) * 1e-3
    lone[0, 5] = 1e3
    lone[1, n - 1] = -1e3
    lone[2, :: block] = 50.0
    cases["spike_in_noise"] = lone
    zs = np.zeros((4, n), np.float32)
    zs[0, 1::2] = -0.0                  # signed zeros: ggml keeps the first extreme's sign
    zs[1] = np.where(rng.random(n) < 0.5, -0.0, 0.0)
    zs[2] = np.abs(rng.standard_normal(n)).astype(np.float32)
    zs[2, ::7] = -0.0
    zs[3] = -np.abs(rng.standard_normal(n)).astype(np.float32)
    zs[3, 3::5] = 0.0
    cases["signed_zeros"] = zs
    ties = rng.standard_normal((4, n)).astype(np.float32)
    ties[0] = np.round(ties[0] * 4) / 4  # exact halves after scaling
    ties[1] = rng.integers(-8, 8, n).astype(np.float32)
    ties[2] = np.abs(ties[2])
    ties[2, ::block] = -ties[2, ::block].max()  # +max and -max in the same block
    ties[3] = rng.choice(np.array([-2.0, -1.0, 0.0, 1.0, 2.0], np.float32), n)
    cases["ties_and_small_ints"] = ties
    mags = []
    for scale in (1e-45, 1e-40, 1e-30, 1e-8, 1e-3, 1e3, 1e5, 1e18, 1e30, 3e38):
        v = np.clip(rng.standard_normal(n) * scale, -FLT_MAX, FLT_MAX)
        mags.append(v.astype(np.float32))
    huge = rng.uniform(-1, 1, n).astype(np.float32) * FLT_MAX  # sums and squares overflow
    mags += [huge, np.abs(huge)]
    cases["magnitudes"] = np.stack(mags)
    nf = rng.standard_normal((5, n)).astype(np.float32)
    nf[0, 7] = np.nan
    nf[1, 3] = np.inf
    nf[2, 3 * block // 2] = -np.inf
    nf[3, ::block] = np.nan
    nf[4, :block] = np.nan               # a whole block of NaN
    cases["non_finite"] = nf
    cases["one_block"] = rng.standard_normal((8, block)).astype(np.float32)
    cases["many_blocks"] = _blocks(rng, 2, 40 * kb + 1, block)
    for seed in (0, 1, 2):
        r = np.random.default_rng(seed)
        cases[f"random_{seed}"] = np.concatenate([
            r.standard_normal((12, n)), r.standard_t(2, (6, n)), r.uniform(0, 1, (4, n)),
            -r.uniform(0, 1, (4, n)), r.standard_normal((4, n)) * r.uniform(0, 1e4, (4, 1)),
        ]).astype(np.float32)
    return cases


def _assert_same(q, ref, what):
    bad = np.nonzero((q != ref).any(axis=1))[0]
    assert bad.size == 0, f"{what}: rows {bad.tolist()} differ from the reference"


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("info", TYPES, ids=lambda t: t.name)
def test_isa_quantize_is_byte_identical(info, isa):
    for case, x in _cases(info.block_size).items():
        with np.errstate(all="ignore"):
            ref = kquants.quantize_array(x, info.name, isa="generic")
            q = kquants.quantize_array(x, info.name, isa=isa)
        _assert_same(q, ref, f"{isa}/{info.name}/{case}")
        dq_ref = kquants.dequantize_array(ref, info.name, x.shape, isa="generic")
        dq = kquants.dequantize_array(q, info.name, x.shape, isa=isa)
        np.testing.assert_array_equal(dq.view(np.uint32), dq_ref.view(np.uint32),
                                      err_msg=f"{isa}/{info.name}/{case}: dequantize differs")


def _imatrices(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    w = {"random": (rng.random(n) + 0.01).astype(np.float32),
         "ones": np.ones(n, np.float32),
         "spiky": (rng.random(n) ** 8 * 1e4).astype(np.float32),
         "tiny": (rng.random(n) * 1e-30).astype(np.float32)}
    z = w["random"].copy()
    z[::3] = 0                          # columns of zero importance
    w["some_zero"] = z
    w["all_zero"] = np.zeros(n, np.float32)
    return w


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("info", [t for t in TYPES if t.uses_imatrix], ids=lambda t: t.name)
def test_isa_quantize_with_imatrix_is_byte_identical(info, isa):
    cases = _cases(info.block_size)
    for case in ("random_0", "random_1", "magnitudes", "signed_zeros", "spikes", "zeros", "constant",
                 "non_finite", "one_block", "many_blocks"):
        x = cases[case]
        for wname, w in _imatrices(x.shape[1]).items():
            with np.errstate(all="ignore"):
                ref = kquants.quantize_array(x, info.name, imatrix=w, isa="generic")
                q = kquants.quantize_array(x, info.name, imatrix=w, isa=isa)
            _assert_same(q, ref, f"{isa}/{info.name}/{case}/imatrix {wname}")


@pytest.mark.parametrize("isa", ISAS)
def test_isa_float_conversions_over_bit_patterns(isa):
    """F16 / BF16 over a wide sample of all 2^32 float bit patterns (NaN
    payloads, denormals, rounding ties, the fp16 overflow threshold)."""
    bits = np.arange(0, 2**32, 65521, dtype=np.uint64).astype(np.uint32)  # a prime stride
    edge = np.array([0x477FEFFF, 0x477FF000, 0x477FF001, 0x33000000, 0x33000001, 0x387FC000,
                     0x38800000, 0x7F800001, 0x7FC00000, 0xFF800000, 0x7F7FFFFF, 0x00000001],
                    np.uint32)
    x = np.concatenate([bits, edge, edge | np.uint32(0x80000000)])
    x = x[: x.size // 256 * 256].view(np.float32).reshape(-1, 256)
    for tname in ("F16", "BF16"):
        _assert_same(kquants.quantize_array(x, tname, isa=isa),
                     kquants.quantize_array(x, tname, isa="generic"), f"{isa}/{tname}")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("src", ["f16", "bf16"])
def test_isa_widening_of_f16_bf16_inputs(isa, src):
    """Every 16-bit pattern (signalling NaN payloads, subnormals, infinities)
    dequantizes as F16 / BF16 to the reference's f32 bits, rows of every
    length mod 8 included; quantizing a float16 array, which widens its
    rows the same way, gives the reference's bytes."""
    tname = src.upper()
    h = np.arange(65536, dtype=np.uint32).astype(np.uint16)
    for n in (65536, 65535, 65531, 9, 7, 1):
        raw = h[-n:].view(np.uint8).reshape(1, -1)
        y = kquants.dequantize_array(raw, tname, (1, n), isa=isa)
        ref = kquants.dequantize_array(raw, tname, (1, n), isa="generic")
        assert np.array_equal(y.view(np.uint32), ref.view(np.uint32)), (isa, tname, n)
    if src == "f16":
        x = (np.random.default_rng(7).standard_normal((9, 768)) * 3).astype(np.float16)
        for t in ("Q5_0", "Q4_K", "Q8_0"):
            _assert_same(kquants.quantize_array(x, t, isa=isa), kquants.quantize_array(x, t, isa="generic"),
                         f"{isa}/{t} from float16")
