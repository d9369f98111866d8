"""Byte-exactness with ggml: every case and type in ../shared/golden/."""
from __future__ import annotations

import json

import numpy as np
import pytest

import kquants
from conftest import require_shared


def _cases(sub: str):
    base = require_shared(f"golden/{sub}")
    index = json.loads((base / "index.json").read_text())
    return base, index


def _params(sub: str):
    # Parameter lists come from the traits table: every type kquants knows,
    # crossed with the cases that hold data for it.
    from conftest import shared_dir
    base = shared_dir()
    names = [t.name for t in kquants.types()]
    if base is None or not (base / "golden" / sub / "index.json").exists():
        return [pytest.param("missing", "F16", id="shared-missing")]
    index = json.loads((base / "golden" / sub / "index.json").read_text())
    return [(case, t) for case, meta in index.items() for t in names if t in meta["types"]]


@pytest.mark.parametrize("case,tname", _params("quant"))
def test_golden_quantize(case, tname):
    base, _ = _cases("quant")
    data = np.load(base / f"{case}.npz")
    q = kquants.quantize_array(data["input"], tname)
    expected = data[f"q_{tname}"]
    assert q.shape == expected.shape
    bad = np.nonzero((q != expected).any(axis=1))[0]
    assert bad.size == 0, f"{case}/{tname}: rows {bad.tolist()} differ"


@pytest.mark.parametrize("case,tname", _params("quant"))
def test_golden_dequantize(case, tname):
    base, _ = _cases("quant")
    data = np.load(base / f"{case}.npz")
    x = data["input"]
    q = data[f"q_{tname}"]
    dq = kquants.dequantize_array(q, tname, x.shape)
    if f"dq_{tname}" in data:
        expected = data[f"dq_{tname}"]
    else:  # the float types ship no dq_: their decoding is exact in NumPy
        expected = _decode_float(q, tname, x.shape)
    np.testing.assert_array_equal(dq.view(np.uint32), expected.view(np.uint32))


def _decode_float(q, tname, shape):
    bits = np.ascontiguousarray(q).view(np.uint16).reshape(shape)
    if tname == "F16":
        return bits.view(np.float16).astype(np.float32)
    assert tname == "BF16"
    return (bits.astype(np.uint32) << 16).view(np.float32)


@pytest.mark.parametrize("case,tname", _params("quant_imatrix"))
def test_golden_quantize_imatrix(case, tname):
    base, _ = _cases("quant_imatrix")
    data = np.load(base / f"{case}.npz")
    q = kquants.quantize_array(data["input"], tname, imatrix=data["imatrix"])
    expected = data[f"q_{tname}"]
    bad = np.nonzero((q != expected).any(axis=1))[0]
    assert bad.size == 0, f"{case}/{tname} (imatrix): rows {bad.tolist()} differ"


@pytest.mark.parametrize("isa", kquants.system_info()["supported_isas"])
@pytest.mark.parametrize("case,tname", _params("quant"))
def test_isa_quantize_matches_reference(case, tname, isa):
    """Every compiled ISA gives the reference's bytes, with and without imatrix."""
    if isa == "generic":
        pytest.skip("generic is the reference")
    base, _ = _cases("quant")
    x = np.load(base / f"{case}.npz")["input"]
    ref = kquants.quantize_array(x, tname, isa="generic")
    np.testing.assert_array_equal(kquants.quantize_array(x, tname, isa=isa), ref)
    if kquants.type_info(tname).uses_imatrix:
        w = np.random.default_rng(0).random(x.shape[1]).astype(np.float32) + 0.1
        ref_w = kquants.quantize_array(x, tname, imatrix=w, isa="generic")
        np.testing.assert_array_equal(kquants.quantize_array(x, tname, imatrix=w, isa=isa), ref_w)
