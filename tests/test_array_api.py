"""The NumPy array API: argument checking, dtypes, type info, threads."""
from __future__ import annotations

import numpy as np
import pytest

import kquants


def test_type_table_matches_ggml_ids():
    # ggml.h enum ggml_type values, as GGUF stores them.
    expected = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
                "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "Q8_K": 15, "BF16": 30}
    for name, gid in expected.items():
        info = kquants.type_info(name)
        assert info.ggml_id == gid
        assert kquants.GGMLType[name] == gid
    assert kquants.type_info("q4_k").bits_per_weight == 4.5
    assert kquants.type_info("Q6_K").type_size == 210
    assert kquants.type_info(kquants.GGMLType.Q8_0).block_size == 32


@pytest.mark.parametrize("info", kquants.types(), ids=lambda i: i.name)
def test_bad_row_length_names_type_and_block(info):
    if info.block_size == 1:
        pytest.skip("float types accept any row length")
    x = np.zeros((2, info.block_size + 1), np.float32)
    with pytest.raises(ValueError, match=rf"{info.name}.*|block size {info.block_size}"):
        kquants.quantize_array(x, info.name)


def test_errors_are_kquants_errors():
    assert issubclass(kquants.KQuantsError, ValueError)
    assert issubclass(kquants.GGUFError, kquants.KQuantsError)
    assert issubclass(kquants.KQuantsIOError, OSError)
    with pytest.raises(kquants.KQuantsError, match="unknown type"):
        kquants.type_info("q9_9")
    with pytest.raises(kquants.KQuantsError, match="2-D"):
        kquants.quantize_array(np.zeros(32, np.float32), "q8_0")
    with pytest.raises(kquants.KQuantsError, match="dtype"):
        kquants.quantize_array(np.zeros((1, 32), np.int32), "q8_0")
    with pytest.raises(kquants.KQuantsError, match="imatrix"):
        kquants.quantize_array(np.zeros((1, 32), np.float32), "q4_0", imatrix=np.ones(16))
    with pytest.raises(kquants.KQuantsError, match="bytes"):
        kquants.dequantize_array(np.zeros(10, np.uint8), "q8_0", (1, 32))


@pytest.mark.parametrize("info", kquants.types(), ids=lambda i: i.name)
def test_input_dtypes_and_threads(info):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((37, 512)).astype(np.float32)
    x16 = x.astype(np.float16)
    q32 = kquants.quantize_array(x16.astype(np.float32), info.name, threads=1)
    q16 = kquants.quantize_array(x16, info.name, threads=2)
    np.testing.assert_array_equal(q32, q16)
    assert q16.shape == (37, info.row_bytes(512))
    dq = kquants.dequantize_array(q16, info.name, x.shape, threads=2)
    assert dq.dtype == np.float32 and dq.shape == x.shape


def test_bfloat16_input():
    ml = pytest.importorskip("ml_dtypes")
    x = np.random.default_rng(2).standard_normal((4, 256)).astype(np.float32)
    xb = x.astype(ml.bfloat16)
    np.testing.assert_array_equal(kquants.quantize_array(xb, "q4_K"),
                                  kquants.quantize_array(xb.astype(np.float32), "q4_K"))


def test_system_info():
    info = kquants.system_info()
    assert info["compiled_isas"][0] == "generic"
    assert info["active_isa"] in info["supported_isas"]
