#!/usr/bin/env python
"""Benchmark kquants.matmul: every weight type x ISA x thread count.

Shapes (defaults, as llama.cpp's test-backend-ops MUL_MAT cases): W is
[m=4096, k=14336]; x is [n, k] with n = 1 (mat-vec, one token) and n = 512
(mat-mat, a prompt batch). Mat-vec also runs on a weight set larger than the
last-level cache (more rows, same k), which is what a model's layers amount
to, and is compared with the memory read bandwidth measured in the same run
(a streaming read over a buffer twice the LLC, same thread count).

Reported: mat-vec GFLOPS and GB/s of weight bytes (ggml's size of W) and, for
the set larger than the LLC, that rate as a % of the read bandwidth measured
right before it (same thread count; on a shared machine the bandwidth drifts
with the other load, so each cell gets its own); mat-mat GFLOPS, also against
numpy's sgemm measured in the same run (the f32 FMA limit that F32 and F16
mat-mat cannot pass on a CPU without f16 arithmetic). Times are the
best of the repetitions (the median is kept in the JSON as well). Weights are kquants.PreparedWeight (packed once, as a model
holds them); the unprepared call (packing row chunks on the fly) is timed
for the best ISA at 1 thread. Results: benchmarks/results/bench_matmul.json
and bench_matmul.md. The 1-thread best-ISA numbers are compared with the
llama.cpp targets of issue 3.

Default run: ~2-3 minutes on 2 cores. --full: more repetitions and the
generic (scalar) kernels at n=1 as well; --quick: a few types, for a smoke test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
import kquants  # noqa: E402
from kquants import _core  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from _ggml import GGMLMatmul  # noqa: E402

# llama.cpp test-backend-ops MUL_MAT, 1 thread, GFLOPS, on the 2-core AVX-512
# machine of issue 3 (m=4096, k=14336). Used only when llama-cpp-python is not
# installed: otherwise ggml's mul_mat is measured in the same run (_ggml.py).
LLAMA_CPP = {
    1: {"F16": 11.3, "Q4_0": 20.9, "Q4_1": 17.2, "Q5_0": 18.0, "Q5_1": 14.7, "Q8_0": 16.6,
        "Q2_K": 34.4, "Q3_K": 31.1, "Q4_K": 25.6, "Q5_K": 21.3, "Q6_K": 20.4},
    512: {"F16": 86.7, "Q4_0": 70.5, "Q4_1": 34.2, "Q5_0": 67.4, "Q5_1": 29.6, "Q8_0": 96.2,
          "Q2_K": 66.4, "Q3_K": 42.0, "Q4_K": 55.1, "Q5_K": 35.3, "Q6_K": 42.1},
}
GOAL = {1: 1.5, 512: 1.2}  # wanted ratio to llama.cpp


def llc_bytes() -> int:
    """Size of the last-level cache (sysfs), default 32 MiB."""
    best = 0
    for idx in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            size = (idx / "size").read_text().strip()
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1], 1)
            best = max(best, int(size.rstrip("KMG")) * mult)
        except (OSError, ValueError):
            pass
    return best or (32 << 20)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


_SGEMM = """
import time
import numpy as np
a = np.random.default_rng(0).standard_normal((512, 4096), dtype=np.float32)
b = np.random.default_rng(1).standard_normal((4096, 4096), dtype=np.float32)
a @ b
best = 1e9
for _ in range(5):
    t0 = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - t0)
print(2.0 * 512 * 4096 * 4096 / best / 1e9)
"""


def sgemm_gflops(threads: int) -> Optional[float]:
    """The f32 FMA-bound reference: numpy's sgemm (its BLAS, e.g. OpenBLAS)
    on [512, 4096] x [4096, 4096], limited to `threads`, in a subprocess (the
    BLAS reads its thread count at import). None if it cannot run."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    try:
        out = subprocess.run([sys.executable, "-c", _SGEMM], env=env, capture_output=True, text=True, timeout=300)
        return float(out.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def make_weights(name: str, m: int, k: int, rng) -> np.ndarray:
    """m rows of valid quantized data: 64 random rows quantized, then tiled."""
    base = kquants.quantize_array(rng.standard_normal((min(m, 64), k), dtype=np.float32), name)
    return np.ascontiguousarray(np.tile(base, (-(-m // base.shape[0]), 1))[:m])


def timeit(fn, reps: int) -> list[float]:
    """Wall-clock seconds of each call (also recorded: process CPU seconds, in
    _CPU, a noise-robust check for 1-thread runs on a shared machine)."""
    out = []
    _CPU.clear()
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        out.append(time.perf_counter() - t0)
        _CPU.append(time.process_time() - c0)
    return out


_CPU: list[float] = []


def timeit_pair(fn, other, reps: int) -> tuple[list[float], list[float]]:
    """timeit of fn and of other, the calls alternating (fn, other, fn, ...),
    so that load from other processes on a shared machine hits both alike."""
    a, b, cpu = [], [], []
    for _ in range(reps):
        a += timeit(fn, 1)
        cpu += _CPU
        b += timeit(other, 1)
    _CPU[:] = cpu
    return a, b


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--types", default="", help="comma list (default: every type with a matmul)")
    ap.add_argument("--isas", default="", help="comma list (default: every supported SIMD ISA)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--m", type=int, default=4096)
    ap.add_argument("--k", type=int, default=14336)
    ap.add_argument("--n", type=int, default=512, help="columns of the mat-mat case")
    ap.add_argument("--big", type=float, default=1.5, help="size of the large mat-vec set, x LLC")
    ap.add_argument("--full", action="store_true", help="more repetitions; generic kernels at n=1")
    ap.add_argument("--quick", action="store_true", help="Q4_0, Q4_K, F16 only, few repetitions")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--no-llama", action="store_true", help="do not time ggml's mul_mat (llama-cpp-python)")
    args = ap.parse_args()
    ggml = None if args.no_llama else GGMLMatmul.load()

    info = kquants.system_info()
    types = [t.name for t in kquants.types() if t.matmul_rtol > 0]
    if args.quick:
        types = ["F16", "Q4_0", "Q4_K"]
    if args.types:
        types = [kquants.type_info(t).name for t in args.types.split(",")]
    isas = [i for i in info["supported_isas"] if i != "generic"]
    if args.isas:
        isas = args.isas.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    reps_mv, reps_big, reps_mm = (40, 8, 5) if args.full else (3, 2, 1) if args.quick else (20, 4, 3)
    m, k, n = args.m, args.k, args.n
    llc = llc_bytes()
    rng = np.random.default_rng(0)

    load0 = os.getloadavg()
    started = time.time()
    bw = {t: _core.read_bandwidth_gbs(2 * llc, t, 3) for t in threads}
    sgemm = {t: sgemm_gflops(t) for t in threads}
    print(f"# {cpu_model()}, LLC {llc >> 20} MiB, ISAs {isas}, threads {threads}; "
          f"read bandwidth {', '.join(f'{t} thr {v:.1f} GB/s' for t, v in bw.items())}", flush=True)

    x1 = rng.standard_normal((1, k), dtype=np.float32)
    xn = rng.standard_normal((n, k), dtype=np.float32)
    flops1, flopsn = 2.0 * m * k, 2.0 * m * k * n
    results = []
    llama: dict = {}  # type -> threads -> n -> GFLOPS of ggml's mul_mat
    for name in types:
        ti = kquants.type_info(name)
        q = make_weights(name, m, k, rng)
        pw = kquants.PreparedWeight(q, name, (m, k))
        runs = {nn: ggml.prepare(ti.ggml_id, q, m, k, xx) for nn, xx in ((1, x1), (n, xn))} if ggml else None
        m_big = max(m, int(args.big * llc / ti.row_bytes(k)) // 64 * 64 + 64)
        q_big = make_weights(name, m_big, k, rng)
        pw_big = kquants.PreparedWeight(q_big, name, (m_big, k))
        run_isas = (["generic"] if args.full else []) + isas
        for isa in run_isas:
            for t in threads:
                r = {"type": name, "isa": isa, "threads": t, "weight_bytes": int(q.nbytes),
                     "big_rows": m_big, "big_bytes": int(q_big.nbytes)}
                # ggml's mul_mat (same weights, shapes, threads) alternates
                # with the best ISA's calls.
                vs_ggml = runs is not None and isa == isas[-1]
                if vs_ggml:
                    mv, gmv = timeit_pair(lambda: pw.matmul(x1, t, isa=isa), lambda: runs[1](t), reps_mv)
                    llama.setdefault(name, {}).setdefault(t, {})[1] = flops1 / min(gmv) / 1e9
                else:
                    mv = timeit(lambda: pw.matmul(x1, t, isa=isa), reps_mv if isa != "generic" else 2)
                r["mv_s"], r["mv_median_s"] = min(mv), statistics.median(mv)
                r["mv_cpu_gflops"] = flops1 / min(_CPU) / 1e9
                r["mv_gflops"] = flops1 / r["mv_s"] / 1e9
                r["mv_gbs"] = q.nbytes / r["mv_s"] / 1e9
                if isa != "generic":
                    r["bw_gbs"] = _core.read_bandwidth_gbs(q_big.nbytes, t, 2)
                    big = timeit(lambda: pw_big.matmul(x1, t, isa=isa), reps_big)
                    r["mv_big_s"], r["mv_big_median_s"] = min(big), statistics.median(big)
                    r["mv_big_gflops"] = 2.0 * m_big * k / r["mv_big_s"] / 1e9
                    r["mv_big_gbs"] = q_big.nbytes / r["mv_big_s"] / 1e9
                    r["mv_big_pct_bw"] = 100.0 * r["mv_big_gbs"] / r["bw_gbs"]
                    if vs_ggml:
                        mm, gmm = timeit_pair(lambda: pw.matmul(xn, t, isa=isa), lambda: runs[n](t), reps_mm)
                        llama[name][t][n] = flopsn / min(gmm) / 1e9
                    else:
                        mm = timeit(lambda: pw.matmul(xn, t, isa=isa), reps_mm)
                    r["mm_s"], r["mm_median_s"] = min(mm), statistics.median(mm)
                    r["mm_gflops"] = flopsn / r["mm_s"] / 1e9
                    r["mm_cpu_gflops"] = flopsn / min(_CPU) / 1e9
                if isa == isas[-1] and t == 1:
                    un = timeit(lambda: kquants.matmul(q, name, (m, k), x1, t, isa=isa), max(2, reps_mv // 4))
                    r["mv_unprepared_gflops"] = flops1 / min(un) / 1e9
                results.append(r)
                line = (f"{name:5s} {isa:10s} thr={t}  n=1: {r['mv_gflops']:7.1f} GFLOPS {r['mv_gbs']:6.1f} GB/s")
                if "mv_big_gbs" in r:
                    line += (f" | >LLC {r['mv_big_gflops']:6.1f} GFLOPS {r['mv_big_gbs']:5.1f} GB/s "
                             f"{r['mv_big_pct_bw']:5.1f}% of {r['bw_gbs']:.1f} | n={n}: {r['mm_gflops']:6.1f} GFLOPS")
                if "mv_unprepared_gflops" in r:
                    line += f" | n=1 unprepared {r['mv_unprepared_gflops']:.1f}"
                print(line, flush=True)
        del pw_big, q_big
        if runs is not None:
            for run in runs.values():
                ggml.free(run)
            print(f"{name:5s} llama.cpp  " + "  ".join(
                f"thr={t} n=1: {v[1]:6.1f} n={n}: {v[n]:6.1f} GFLOPS" for t, v in llama[name].items()), flush=True)

    meta = {"cpu": cpu_model(), "llc_bytes": llc, "read_bandwidth_gbs": bw, "sgemm_gflops": sgemm,
            "m": m, "k": k, "n": n,
            "isas": isas, "threads": threads, "system_info": info, "kquants": kquants.__version__,
            "load_avg_start": load0, "load_avg_end": os.getloadavg(),
            "seconds": round(time.time() - started, 1), "args": vars(args),
            "llama_cpp": "measured (ggml mul_mat via llama-cpp-python)" if ggml else "quoted from issue 3"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_matmul.json").write_text(json.dumps({"meta": meta, "results": results, "llama_cpp": llama},
                                                      indent=1))
    (out / "bench_matmul.md").write_text(markdown(meta, results, isas[-1], llama))
    print(f"# wrote {out / 'bench_matmul.json'} and bench_matmul.md in {meta['seconds']} s", flush=True)
    return 0


def markdown(meta, results, best_isa, llama=None) -> str:
    m, k, n = meta["m"], meta["k"], meta["n"]
    bw = ", ".join(f"{t} thread{'s' if int(t) > 1 else ''}: {v:.1f} GB/s" for t, v in meta["read_bandwidth_gbs"].items())
    la0 = ", ".join(f"{v:.1f}" for v in meta["load_avg_start"])
    la1 = ", ".join(f"{v:.1f}" for v in meta["load_avg_end"])
    measured = bool(llama)
    lines = [
        "# kquants.matmul benchmark",
        "",
        f"CPU: {meta['cpu']}; LLC {meta['llc_bytes'] >> 20} MiB; streaming read bandwidth at the start {bw}.",
        "",
        "Compute reference (f32 FMA bound): numpy's sgemm [512, 4096] x [4096, 4096] in the same run: "
        + ", ".join(f"{t} thread{'s' if int(t) > 1 else ''}: " + (f"{v:.1f} GFLOPS" if v else "not measured")
                    for t, v in meta.get("sgemm_gflops", {}).items())
        + ". F32 and F16 mat-mat are f32 FMAs (AVX-512 has no f16 arithmetic on this CPU), so a goal above "
          "this rate is past the hardware's limit; the sgemm column gives each mat-mat rate against it.",
        f"W [{m}, {k}] (PreparedWeight), x [n, {k}] float32; load average {la0} at start, {la1} at end; "
        f"{meta['seconds']} s. Command: `python benchmarks/bench_matmul.py"
        + (" --full" if meta["args"]["full"] else "") + "`.",
        "",
        "llama.cpp: " + ("ggml's mul_mat (llama-cpp-python's libggml, ggml_graph_compute_with_ctx, "
                         "weights in plain CPU memory as in test-backend-ops) on the same weights, "
                         "shapes and thread counts, measured in this run: its calls alternate with kquants' "
                         "(best ISA) so that load from other processes hits both alike; best of the repetitions."
                         if measured else "test-backend-ops numbers quoted from issue 3 (1 thread; "
                         "llama-cpp-python not installed)."),
        "",
    ]

    def vs_sgemm(r):
        ref = meta.get("sgemm_gflops", {}).get(r["threads"]) or meta.get("sgemm_gflops", {}).get(str(r["threads"]))
        return f"{r['mm_gflops'] / ref:.2f}x" if ref else "-"

    def ratio(v, ref, goal):
        if not ref:
            return "-"
        q = v / ref
        return f"{q:.2f}x" + ("" if q >= goal else " (miss)")

    for th in sorted({r["threads"] for r in results}):
        if not measured and th != 1:
            continue
        lines += [
            f"## Against llama.cpp ({th} thread{'s' if th > 1 else ''}, {best_isa}, GFLOPS)",
            "",
            "Wall-clock GFLOPS; ratio marked (miss) below the goal (1.5x at n=1, 1.2x at n=512), "
            "% bw below 80%. cpu-time: the same calls timed by process CPU time (all threads).",
            "",
            "| type | n=1 | llama.cpp | ratio | n=1 >LLC % bw | n=1 unprepared | n=1 cpu-time "
            f"| n={n} | llama.cpp | ratio | n={n} cpu-time | n={n} / sgemm |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results:
            if r["isa"] != best_isa or r["threads"] != th:
                continue
            if measured:
                ref = (llama.get(r["type"]) or {}).get(th) or {}
                t1, tn = ref.get(1), ref.get(n)
            else:
                t1, tn = LLAMA_CPP[1].get(r["type"]), LLAMA_CPP[512].get(r["type"]) if n == 512 else None
            unprep = f"{r['mv_unprepared_gflops']:.1f}" if "mv_unprepared_gflops" in r else "-"
            lines.append(
                f"| {r['type']} | {r['mv_gflops']:.1f} | {f'{t1:.1f}' if t1 else '-'} "
                f"| {ratio(r['mv_gflops'], t1, GOAL[1])} "
                f"| {r['mv_big_pct_bw']:.0f}%{'' if r['mv_big_pct_bw'] >= 80 else ' (miss)'} | {unprep} "
                f"| {r['mv_cpu_gflops']:.1f} | {r['mm_gflops']:.1f} | {f'{tn:.1f}' if tn else '-'} "
                f"| {ratio(r['mm_gflops'], tn, GOAL[512])} | {r['mm_cpu_gflops']:.1f} | {vs_sgemm(r)} |")
        lines.append("")
    if measured:
        lines += ["Issue 3's quoted test-backend-ops numbers (1 thread, the machine of the issue), for reference: "
                  + ", ".join(f"{t} {LLAMA_CPP[1][t]}/{LLAMA_CPP[512][t]}" for t in LLAMA_CPP[1]) + " (n=1/n=512).", ""]
    lines += [
        "## All cells",
        "",
        f"n=1: GFLOPS and GB/s of ggml weight bytes ({m} rows, LLC-resident after the first call); "
        f">LLC: the same on a set larger than the LLC ({results[0]['big_rows']} rows for {results[0]['type']}), "
        f"the streaming read bandwidth measured just before (same bytes, same threads) and the mat-vec rate "
        f"as % of it; n={n}: GFLOPS. Best of the repetitions.",
        "",
        "| type | ISA | threads | n=1 GFLOPS | n=1 GB/s | >LLC GFLOPS | >LLC GB/s | read GB/s | >LLC % bw "
        f"| n={n} GFLOPS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        big = (f"{r['mv_big_gflops']:.1f} | {r['mv_big_gbs']:.1f} | {r['bw_gbs']:.1f} | {r['mv_big_pct_bw']:.0f}%"
               if "mv_big_gbs" in r else "- | - | - | -")
        mm = f"{r['mm_gflops']:.1f}" if "mm_gflops" in r else "-"
        lines.append(f"| {r['type']} | {r['isa']} | {r['threads']} | {r['mv_gflops']:.1f} | {r['mv_gbs']:.1f} "
                     f"| {big} | {mm} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
