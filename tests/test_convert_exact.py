"""kquants.quantize is byte-identical to llama-quantize (llama.cpp as vendored by
llama-cpp-python 0.3.36) on tiny generated models, for every preset.

The expected per-tensor types and sha256 prefixes are in
tests/data/convert_expected.json (made by tests/data/gen_convert_expected.py
with llama_cpp.llama_model_quantize from the same F16 GGUF inputs).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tiny_models import CASES, case_imatrix, make_case, tensor_digests

import kquants

EXPECTED = json.loads((Path(__file__).parent / "data" / "convert_expected.json").read_text())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exact")
    return {case: make_case(case, tmp) for case in CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_input_is_the_expected_f16(inputs, case):
    # the generated checkpoint and its F16 conversion are the ones the expectations were made from
    assert hashlib.sha256(inputs[case].read_bytes()).hexdigest() == EXPECTED[case]["f16_sha256"]


@pytest.mark.parametrize("case,preset", [(c, p) for c in CASES for p in CASES[c]["presets"]])
def test_matches_llama_quantize(inputs, tmp_path, case, preset):
    spec = CASES[case]
    out = tmp_path / "out.gguf"
    im = case_imatrix(inputs[case]) if spec.get("imatrix") else None
    kquants.quantize(inputs[case], out, preset, imatrix=im, overrides=spec.get("overrides"), quiet=True)
    got, want = tensor_digests(out), EXPECTED[case]["presets"][preset]
    assert list(got) == list(want), "tensor order differs from llama-quantize"
    bad = {n: (got[n], want[n]) for n in want if got[n] != want[n]}
    assert not bad, f"{len(bad)} tensors differ: {dict(list(bad.items())[:4])}"
