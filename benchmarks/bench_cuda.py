"""CUDA backend benchmark: mat-vec bandwidth, tensor-core mat-mat, quantization.

    python benchmarks/bench_cuda.py [--types q4_0,q4_K] [--quick] [--out PATH]

Per weight type, with W of shape [m, k] = [4096, 14336] (a 7B-class FFN matrix):

* mat-vec (n = 1, dp4a path): time per product, weight bytes read per second,
  and that as a percentage of the device-to-device copy bandwidth measured in
  the same run (copy bandwidth = bytes read + bytes written per second, i.e.
  the DRAM traffic a kernel can sustain; the mat-vec's traffic is its weight
  bytes);
* mat-mat (n = 512, tensor-core path): TFLOPS = 2 m k n / time;
* quantization of the float32 W on the GPU, in GB/s of float32 input, next to
  kquants' CPU quantizer with 2 threads on a slice of the same matrix.

All GPU times are CUDA-event timed averages after a warm-up (the bench_*
entry points of kquants._core), so launch overhead between back-to-back
kernels counts, Python overhead does not. Writes
benchmarks/results/bench_cuda_<device>.json. Exits with status 1 and a
message when no CUDA GPU is usable.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

import kquants
import kquants.cuda as kc
from kquants import _core

M, K = 4096, 14336
N_MMA = 512
COPY_BYTES = 1 << 30  # 1 GiB: far beyond any L2


def _iters(seconds_per_run: float, budget: float = 0.5, lo: int = 3, hi: int = 200) -> int:
    return int(min(hi, max(lo, budget / max(seconds_per_run, 1e-7))))


def _timed(fn, *args):
    """Event-timed seconds per run: a probe run sizes the repetition count."""
    t = fn(*args, 1)
    return fn(*args, _iters(t))


def copy_bandwidth() -> float:
    a = kc.DeviceArray((COPY_BYTES,), np.uint8)
    b = kc.DeviceArray((COPY_BYTES,), np.uint8)
    t = _timed(lambda it: _core.cuda_bench_copy(b.ptr, a.ptr, COPY_BYTES, it))
    return 2 * COPY_BYTES / t / 1e9  # read + write


def cpu_quantize_gbps(x: np.ndarray, tname: str, rows: int) -> float:
    xs = np.ascontiguousarray(x[:rows])
    kquants.quantize_array(xs[:8], tname, threads=2)  # warm-up (pool, pages)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        kquants.quantize_array(xs, tname, threads=2)
        best = min(best, time.perf_counter() - t0)
    return xs.nbytes / best / 1e9


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--types", default="", help="comma-separated type names (default: every type)")
    ap.add_argument("--quick", action="store_true", help="fewer rows for the CPU quantizer timing")
    ap.add_argument("--out", default="", help="JSON path (default benchmarks/results/bench_cuda_<device>.json)")
    args = ap.parse_args()

    info = kc.cuda_info()
    if not info["available"]:
        print(f"bench_cuda: no usable CUDA GPU, nothing to measure ({info['status']})", file=sys.stderr)
        return 1

    names = [t.strip() for t in args.types.split(",") if t.strip()] or [t.name for t in kquants.types()]
    types = [kquants.type_info(t) for t in names]
    cpu_rows = 64 if args.quick else 256

    print(f"device: {info['device_name']} (sm_{info['compute_capability'].replace('.', '')}, "
          f"{info['sm_count']} SMs), CUDA runtime {info['runtime_version']}, driver {info['driver_version']}")
    copy_gbps = copy_bandwidth()
    print(f"device-to-device copy: {copy_gbps:.0f} GB/s (read + write)")

    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((M, K), dtype=np.float32)
    x_dev = kc.to_device(x_host)
    act1 = kc.to_device(rng.standard_normal((1, K), dtype=np.float32))
    actn = kc.to_device(rng.standard_normal((N_MMA, K), dtype=np.float32))
    y1 = kc.DeviceArray((1, M), np.float32)
    yn = kc.DeviceArray((N_MMA, M), np.float32)

    results = {}
    header = (f"{'type':6} {'q GPU GB/s':>10} {'q CPU2 GB/s':>11} {'x':>6} | {'matvec us':>9} {'GB/s':>7} "
              f"{'% copy':>6} | {'mm n=512 ms':>11} {'TFLOPS':>7}")
    print(header)
    print("-" * len(header))
    for t in types:
        wq = kc.DeviceArray((M, t.row_bytes(K)), np.uint8)
        tq = _timed(lambda it: _core.cuda_bench_quantize(x_dev.ptr, M, K, t.ggml_id, wq.ptr, it))
        q_gpu = x_host.nbytes / tq / 1e9
        q_cpu = cpu_quantize_gbps(x_host, t.name, cpu_rows)
        tv = _timed(lambda it: _core.cuda_bench_matmul(t.ggml_id, wq.ptr, M, K, act1.ptr, 1, y1.ptr, "vec", it))
        wbytes = wq.nbytes
        mv_gbps = wbytes / tv / 1e9
        tm = _timed(lambda it: _core.cuda_bench_matmul(t.ggml_id, wq.ptr, M, K, actn.ptr, N_MMA, yn.ptr, "mma", it))
        tflops = 2.0 * M * K * N_MMA / tm / 1e12
        results[t.name] = {
            "weight_bytes": wbytes,
            "quantize_gpu_GBps": q_gpu, "quantize_gpu_ms": tq * 1e3,
            "quantize_cpu_2threads_GBps": q_cpu, "quantize_speedup": q_gpu / q_cpu,
            "matvec_us": tv * 1e6, "matvec_weight_GBps": mv_gbps, "matvec_pct_of_copy": 100 * mv_gbps / copy_gbps,
            "matmul_n512_ms": tm * 1e3, "matmul_n512_TFLOPS": tflops,
        }
        print(f"{t.name:6} {q_gpu:10.2f} {q_cpu:11.3f} {q_gpu / q_cpu:6.0f} | {tv * 1e6:9.1f} {mv_gbps:7.0f} "
              f"{100 * mv_gbps / copy_gbps:5.1f}% | {tm * 1e3:11.2f} {tflops:7.1f}", flush=True)
        del wq

    device = re.sub(r"[^a-z0-9]+", "_", info["device_name"].lower()).strip("_") or "gpu"
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results" / f"bench_cuda_{device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "device": info, "host": platform.processor() or platform.machine(),
        "shape": {"m": M, "k": K, "n_matmul": N_MMA}, "cpu_quantize_rows": cpu_rows,
        "copy_GBps": copy_gbps, "types": results,
        "command": " ".join(sys.argv),
    }, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
