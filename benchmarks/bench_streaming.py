"""Peak memory of quantize() on a generated >= 2 GB checkpoint.

    PYTHONPATH=python python benchmarks/bench_streaming.py [--gb 2.2] [--preset q8_0] [--keep DIR]

Writes a Llama-shaped safetensors checkpoint (bf16, ~--gb GB, in 2 shards)
tensor by tensor, then runs kquants.quantize(hf_dir, out, preset) in a child
process and reads its peak RSS (VmHWM). The budget is
largest tensor x 4 + 300 MB: tensors are memory-mapped, converted in row
chunks and quantized one at a time; the mapped pages are released after each
tensor. Results: benchmarks/results/bench_streaming.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE.parent / "tests"))


def write_checkpoint(d: Path, gb: float) -> tuple[int, int]:
    """A Llama checkpoint of about `gb` GB (bf16); returns (total bytes, largest tensor bytes)."""
    from tiny_models import bpe_tokenizer
    from kquants.convert.hf import save_safetensors
    hidden, ff, n_head, n_kv, vocab = 2048, 5632, 16, 4, 32000
    per_layer = 2 * (hidden * hidden * 2 + 2 * hidden * (hidden // n_head) * n_kv + 3 * hidden * ff)
    n_layer = max(1, int((gb * 1e9 - 2 * 2 * vocab * hidden) // per_layer))
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
           "intermediate_size": ff, "num_attention_heads": n_head, "num_key_value_heads": n_kv,
           "num_hidden_layers": n_layer, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "max_position_embeddings": 4096, "vocab_size": vocab, "tie_word_embeddings": False}
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "tokenizer.json").write_text(json.dumps(bpe_tokenizer(vocab)))
    rng = np.random.default_rng(0)
    pattern = (rng.standard_normal(1 << 20).astype(np.float32) * 0.02).view(np.uint32) >> 16

    def bf16(shape):
        n = int(np.prod(shape))
        return np.resize(pattern.astype(np.uint16), n).reshape(shape)

    shapes = {"model.embed_tokens.weight": (vocab, hidden), "lm_head.weight": (vocab, hidden),
              "model.norm.weight": (hidden,)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,),
                       p + "self_attn.q_proj.weight": (hidden, hidden),
                       p + "self_attn.k_proj.weight": (hidden // n_head * n_kv, hidden),
                       p + "self_attn.v_proj.weight": (hidden // n_head * n_kv, hidden),
                       p + "self_attn.o_proj.weight": (hidden, hidden), p + "mlp.gate_proj.weight": (ff, hidden),
                       p + "mlp.up_proj.weight": (ff, hidden), p + "mlp.down_proj.weight": (hidden, ff)})
    names = list(shapes)
    half = len(names) // 2
    wm = {}
    for k, part in enumerate((names[:half], names[half:])):
        f = f"model-0000{k + 1}-of-00002.safetensors"
        save_safetensors(d / f, {n: bf16(shapes[n]) for n in part})
        wm.update({n: f for n in part})
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    sizes = [2 * int(np.prod(s)) for s in shapes.values()]
    return sum(sizes), max(sizes)


# Peak RSS from VmHWM (per address space; getrusage's ru_maxrss would carry over the
# parent's peak across fork+exec on Linux).
CHILD = """
import re, sys, time, kquants
t = time.perf_counter()
kquants.quantize(sys.argv[1], sys.argv[2], sys.argv[3], quiet=True)
print(time.perf_counter() - t)
print(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.2)
    ap.add_argument("--preset", default="q8_0", help="memory use does not depend on it; q8_0 is quick")
    ap.add_argument("--keep", help="folder to keep the checkpoint in (reused if present)")
    a = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    base = Path(a.keep) if a.keep else Path(tmp.name)
    hf = base / "hf"
    if (hf / "config.json").is_file():
        from kquants.convert.hf import load_checkpoint
        ts = load_checkpoint(hf)
        total, largest = sum(t.nbytes for t in ts.values()), max(t.nbytes for t in ts.values())
    else:
        total, largest = write_checkpoint(hf, a.gb)
    out = base / "out.gguf"
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "python")}
    r = subprocess.run([sys.executable, "-c", CHILD, str(hf), str(out), a.preset], capture_output=True, text=True,
                       env=env)
    if r.returncode:
        sys.exit(r.stderr)
    secs, peak_kb = r.stdout.split()
    peak = int(peak_kb) * 1024
    budget = largest * 4 + 300 * 2**20
    res = {"checkpoint_bytes": total, "largest_tensor_bytes": largest, "peak_rss_bytes": peak,
           "budget_bytes": budget, "within_budget": peak < budget, "seconds": float(secs), "preset": a.preset,
           "output_bytes": out.stat().st_size}
    print(f"checkpoint {total / 1e9:.2f} GB, largest tensor {largest / 2**20:.0f} MiB")
    print(f"peak RSS {peak / 2**20:.0f} MiB, budget {budget / 2**20:.0f} MiB -> "
          f"{'OK' if peak < budget else 'OVER'}; {float(secs):.1f} s")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "bench_streaming.json").write_text(json.dumps(res, indent=1))
    tmp.cleanup()


if __name__ == "__main__":
    main()
