"""Perplexity: kquants vs llama.cpp (through llama-cpp-python), side by side.

    python benchmarks/compare_perplexity.py MODEL.gguf [TEXT] [--chunks N] [--threads T] [--ctx 512]

llama.cpp side: the text is tokenized by llama.cpp (BOS as the vocabulary
asks), split into n_ctx chunks, the first token of each chunk replaced by BOS
where the model adds one, each chunk evaluated from an empty KV cache with all
logits, and the second half scored with llama-perplexity's log-softmax (max in
float, sum of expf in double) - the procedure of llama-perplexity's
perplexity(). kquants side: kquants.perplexity on the same text.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _llama_cpp import open_llama  # noqa: E402


def llama_cpp_perplexity(path, text, n_ctx, chunks, threads):
    ll = open_llama(path, n_ctx=n_ctx, threads=threads)
    t0 = time.perf_counter()
    tokens = ll.tokenize(text.encode("utf-8"), add_bos=True, special=False)  # add_special: BOS per vocab
    t_tok = time.perf_counter() - t0
    add_bos = ll._model.add_bos_token() if hasattr(ll._model, "add_bos_token") else False
    bos = ll.token_bos()
    n_chunk = len(tokens) // n_ctx
    if chunks:
        n_chunk = min(n_chunk, chunks)
    first = n_ctx // 2
    s = s2 = 0.0
    count = 0
    running = []
    nlls = []
    t0 = time.perf_counter()
    for i in range(n_chunk):
        ids = list(tokens[i * n_ctx:(i + 1) * n_ctx])
        if add_bos:
            ids[0] = bos
        ll.reset()
        ll.eval(ids)
        logits = np.asarray(ll.scores[first:n_ctx - 1], dtype=np.float32)
        mx = logits.max(axis=1, keepdims=True)
        sum_exp = np.exp((logits - mx).astype(np.float32)).astype(np.float64).sum(axis=1)
        nxt = np.asarray(ids[first + 1:n_ctx])
        lp = (logits[np.arange(len(nxt)), nxt] - mx[:, 0]).astype(np.float64) - np.log(sum_exp)
        nll = -lp
        nlls.append(nll)
        s += nll.sum()
        s2 += (nll * nll).sum()
        count += len(nll)
        running.append(math.exp(s / count))
    secs = time.perf_counter() - t0
    mean = s / count
    ppl = math.exp(mean)
    var = s2 / count - mean * mean
    return dict(ppl=ppl, stderr=ppl * math.sqrt(var / (count - 1)), running=running, tokens=tokens,
                seconds=secs, t_tok=t_tok, n_chunk=n_chunk, add_bos=add_bos,
                nll=np.concatenate(nlls))


def main():
    import kquants

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("text", nargs="?", default=None, help="text file (default: packaged Moby-Dick excerpt)")
    ap.add_argument("--chunks", type=int, default=None)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    path = a.text or kquants.perplexity.__globals__["default_text_path"]()
    text = open(path, "rb").read().decode("utf-8", errors="replace")

    ref = llama_cpp_perplexity(a.model, text, a.ctx, a.chunks, a.threads)
    m = kquants.Model(a.model, threads=a.threads, n_ctx=a.ctx)
    t0 = time.perf_counter()
    ours_tokens = m.tokenize(text)
    t_tok = time.perf_counter() - t0
    same_tokens = list(ours_tokens) == list(ref["tokens"])
    r = kquants.perplexity(m, tokens=ours_tokens, n_ctx=a.ctx, chunks=a.chunks, threads=a.threads, quiet=True)

    print(f"model: {os.path.basename(a.model)}   text: {os.path.basename(path)}   n_ctx={a.ctx}  "
          f"chunks={r.n_chunks}  threads={a.threads}  add_bos={ref['add_bos']}")
    print(f"tokens: llama.cpp {len(ref['tokens'])}, kquants {len(ours_tokens)}, identical={same_tokens}")
    print(f"{'':12s}{'PPL':>10s}{'+/-':>10s}{'eval s':>9s}{'tok/s':>9s}{'tokenize s':>12s}")
    print(f"{'llama.cpp':12s}{ref['ppl']:10.4f}{ref['stderr']:10.5f}{ref['seconds']:9.1f}"
          f"{ref['n_chunk'] * a.ctx / ref['seconds']:9.1f}{ref['t_tok']:12.2f}")
    print(f"{'kquants':12s}{r.ppl:10.4f}{r.stderr:10.5f}{r.seconds:9.1f}{r.tokens_per_second:9.1f}{t_tok:12.2f}")
    print(f"relative difference: {100 * (r.ppl / ref['ppl'] - 1):+.3f}%")
    d = r.nll - ref["nll"]
    print(f"per-token NLL difference (kquants - llama.cpp): mean {d.mean():+.5f}, std {d.std():.5f}, "
          f"standard error of the mean {d.std() / math.sqrt(len(d)):.5f} (over {len(d)} tokens)")
    print("running PPL per chunk (llama.cpp / kquants):")
    print("  " + " ".join(f"[{i + 1}]{x:.4f}/{y:.4f}" for i, (x, y) in enumerate(zip(ref["running"], r.chunk_ppl))))


if __name__ == "__main__":
    main()
