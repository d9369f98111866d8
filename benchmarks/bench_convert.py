"""End-to-end F16 GGUF -> Q4_K_M: kquants.quantize vs llama-quantize, same threads.

    PYTHONPATH=python python benchmarks/bench_convert.py [--threads N] [--preset q4_k_m] [--repeat 3]
        [--model path.gguf | --synthetic GB]

Default input: SmolLM2-135M re-exported to F16 (see compare_llama_cpp.py). Its
576-wide rows are not a multiple of 256, so most of its Q4_K_M tensors fall
back to Q5_0/Q8_0; --synthetic GB writes a Llama-shaped checkpoint of about GB
gigabytes (hidden 2048, as bench_streaming.py) and converts it to F16 first,
a model where the k-quants do the work (the issue's 922 MB F16 model).
llama-quantize is timed through llama_cpp.llama_model_quantize (llama-cpp-python).
Each side runs --repeat times; the best wall time is reported (the machine
may be shared: say so when quoting numbers). Also checks the outputs' tensors
are identical. Results: benchmarks/results/bench_convert.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE))

import kquants  # noqa: E402
from compare_llama_cpp import compare, smollm2_f16  # noqa: E402
from llama_ref import available, llama_quantize  # noqa: E402


def best(fn, repeat):
    """(best wall s, all wall s, CPU s of the best run): CPU time (all threads of this
    process) is less sensitive than wall time to other jobs on a shared machine."""
    runs = []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - t, time.process_time() - c))
    w, cpu = min(runs)
    return w, [r[0] for r in runs], cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--preset", default="q4_k_m")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--model", help="F16 GGUF input (default: SmolLM2-135M F16)")
    ap.add_argument("--synthetic", type=float, default=None,
                    help="instead: a generated Llama-shaped F16 model of about this many GB")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if a.synthetic:
            from bench_streaming import write_checkpoint
            write_checkpoint(tmp / "hf", a.synthetic)
            src = tmp / "synthetic-f16.gguf"
            kquants.convert(tmp / "hf", src, "f16", quiet=True)
        else:
            src = Path(a.model) if a.model else smollm2_f16(tmp)
        ours, ref = tmp / "ours.gguf", tmp / "ref.gguf"
        t_ours, all_ours, cpu_ours = best(
            lambda: kquants.quantize(src, ours, a.preset, threads=a.threads, quiet=True), a.repeat)
        name = f"synthetic Llama F16 ({a.synthetic} GB)" if a.synthetic else None
        res = {"input": name or str(src if a.model else "SmolLM2-135M F16"), "bytes": src.stat().st_size,
               "preset": a.preset, "threads": a.threads, "kquants_s": t_ours, "kquants_runs": all_ours,
               "kquants_cpu_s": cpu_ours, "isa": kquants.system_info().get("active_isa"),
               "load_average": os.getloadavg()}
        print(f"kquants     {a.preset}: {t_ours:.2f} s wall, {cpu_ours:.2f} s CPU "
              f"({src.stat().st_size / t_ours / 2**20:.0f} MiB/s in)")
        if available():
            t_ref, all_ref, cpu_ref = best(lambda: llama_quantize(src, ref, a.preset, nthread=a.threads), a.repeat)
            c = compare(ref, ours)
            res.update(llama_s=t_ref, llama_runs=all_ref, llama_cpu_s=cpu_ref, speedup=t_ref / t_ours,
                       cpu_speedup=cpu_ref / cpu_ours, identical=not c["types_differ"] and not c["bytes_differ"])
            print(f"llama.cpp   {a.preset}: {t_ref:.2f} s wall, {cpu_ref:.2f} s CPU")
            print(f"speedup {t_ref / t_ours:.2f}x wall, {cpu_ref / cpu_ours:.2f}x CPU at {a.threads} threads; "
                  f"outputs identical: {res['identical']}; load average {os.getloadavg()[0]:.1f}")
        else:
            print("llama-cpp-python not installed: no llama-quantize timing")
    out = HERE / "results" / ("bench_convert_synthetic.json" if a.synthetic else "bench_convert.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
