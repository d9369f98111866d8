"""Regenerates tests/data/convert_expected.json with llama.cpp (llama-cpp-python 0.3.36).

    PYTHONPATH=python python tests/data/gen_convert_expected.py

For each case a tiny model is generated (tests/tiny_models.py, deterministic),
converted to an F16 GGUF by kquants, and quantized by llama.cpp's
llama_model_quantize for each preset; the JSON stores, per tensor, the type
and the sha256 of its bytes (first 20 hex digits), plus the sha256 of the F16 input (so a change in
the generator or the converter shows up as such, not as a quantizer bug).
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent.parent / "benchmarks"))

from tiny_models import CASES, case_imatrix, make_case, tensor_digests  # noqa: E402
from llama_ref import llama_quantize  # noqa: E402


def main() -> None:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case, spec in CASES.items():
            f16 = make_case(case, tmp)
            entry = {"f16_sha256": hashlib.sha256(f16.read_bytes()).hexdigest(), "presets": {}}
            im = case_imatrix(f16) if spec.get("imatrix") else None
            for preset in spec["presets"]:
                q = tmp / f"{case}-out-{preset}.gguf"
                llama_quantize(f16, q, preset, imatrix=im, overrides=spec.get("overrides"), nthread=2)
                entry["presets"][preset] = tensor_digests(q)
                print(case, preset, "ok", flush=True)
            out[case] = entry
    (HERE / "convert_expected.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
