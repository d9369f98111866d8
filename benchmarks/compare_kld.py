"""KL divergence: kquants vs llama.cpp (through llama-cpp-python), side by side.

    python benchmarks/compare_kld.py MODEL.gguf BASE.gguf [TEXT] [--chunks N] [--threads T]

llama.cpp side: llama-perplexity --kl-divergence's procedure, replayed on
llama.cpp's logits: the base model's log-probs are stored as llama.cpp stores
them (16-bit, range [max-16, max]), then each chunk of the model is scored
against them (KLD over base log-probs > -16, Δp of the next token, top-1
agreement). kquants side: kquants.kl_divergence (one pass over both models).
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _llama_cpp import open_llama  # noqa: E402


def chunk_logits(ll, ids, first, n_ctx):
    ll.reset()
    ll.eval(list(ids))
    return np.asarray(ll.scores[first:n_ctx - 1], dtype=np.float32)


def encode_base(lg):
    """llama.cpp's 16-bit log-prob rows: (scale, min_log_prob, q)."""
    mx = lg.max(1)
    mn = np.maximum(lg.min(1), mx - 16)
    lse = np.log(np.exp(lg - mx[:, None]).astype(np.float64).sum(1)).astype(np.float32)
    min_lp = mn - mx - lse
    scale = ((mx - mn) / np.float32(65535)).astype(np.float32)
    inv = np.where(scale > 0, 1 / np.where(scale > 0, scale, 1), 0).astype(np.float32)
    q = np.where(lg > mn[:, None], np.rint(inv[:, None] * (lg - mn[:, None])), 0)
    return scale, min_lp, q


def kld_rows(lg, base, toks):
    scale, min_lp, q = base
    mx = lg.max(1)
    imax = lg.argmax(1)
    lse = np.log(np.exp(lg - mx[:, None]).astype(np.float64).sum(1)).astype(np.float32)
    r = np.arange(len(toks))
    nll = mx + lse - lg[r, toks]
    nll_base = -(scale * q[r, toks] + min_lp)
    lpb = (scale[:, None] * q + min_lp[:, None]).astype(np.float32)
    keep = lpb > -16
    kld = (np.where(keep, np.exp(lpb) * (lpb - lg + (mx + lse)[:, None]), 0)).astype(np.float64).sum(1)
    same = imax == lpb.argmax(1)
    p_diff = np.exp(-nll) - np.exp(-nll_base)
    return kld, nll, nll_base, p_diff, same


def main():
    import kquants
    from kquants.perplexity import default_text_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("base")
    ap.add_argument("text", nargs="?", default=None)
    ap.add_argument("--chunks", type=int, default=4)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    text = open(a.text or default_text_path(), "rb").read().decode("utf-8", errors="replace")
    n_ctx, first = a.ctx, a.ctx // 2
    lb = open_llama(a.base, n_ctx=n_ctx, threads=a.threads)
    tokens = lb.tokenize(text.encode(), add_bos=True, special=False)
    n_chunk = min(len(tokens) // n_ctx, a.chunks)
    bases = [encode_base(chunk_logits(lb, tokens[i * n_ctx:(i + 1) * n_ctx], first, n_ctx)) for i in range(n_chunk)]
    del lb
    lm = open_llama(a.model, n_ctx=n_ctx, threads=a.threads)
    parts = []
    for i in range(n_chunk):
        ids = tokens[i * n_ctx:(i + 1) * n_ctx]
        parts.append(kld_rows(chunk_logits(lm, ids, first, n_ctx), bases[i], np.asarray(ids[first + 1:])))
    del lm
    kld, nll, nll_b, p_diff, same = (np.concatenate(x) for x in zip(*parts))
    ours = kquants.kl_divergence(a.model, a.base, tokens=tokens, n_ctx=n_ctx, chunks=n_chunk, threads=a.threads,
                                 quiet=True)
    rows = [("Mean PPL(Q)", math.exp(nll.mean()), ours.ppl[0]),
            ("Mean PPL(base)", math.exp(nll_b.mean()), ours.ppl_base[0]),
            ("Mean KLD", kld.mean(), ours.kld[0]),
            ("Median KLD", float(np.median(kld)), ours.kld_median),
            ("99% KLD", float(np.quantile(kld, 0.99)), ours.kld_percentiles[0.99]),
            ("RMS Δp (%)", 100 * math.sqrt((p_diff ** 2).mean()), 100 * ours.dp_rms[0]),
            ("Same top p (%)", 100 * same.mean(), 100 * ours.same_top[0])]
    print(f"model {os.path.basename(a.model)} vs base {os.path.basename(a.base)}: {n_chunk} chunks of {n_ctx}, "
          f"{len(kld)} scored tokens")
    print(f"{'':18s}{'llama.cpp':>12s}{'kquants':>12s}{'diff %':>9s}")
    for name, x, y in rows:
        print(f"{name:18s}{x:12.6f}{y:12.6f}{100 * (y / x - 1):+9.2f}")


if __name__ == "__main__":
    main()
