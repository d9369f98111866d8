"""Perplexity and KL divergence, computed exactly as llama.cpp's llama-perplexity.

    r = kquants.perplexity("model.gguf")                # the packaged Moby-Dick excerpt
    r = kquants.perplexity(model, "wiki.test.raw", n_ctx=512)
    print(r.ppl, r.stderr)
    k = kquants.kl_divergence("model-q4.gguf", "model-f16.gguf", "wiki.test.raw")

Procedure (llama-perplexity's ``perplexity()``):

* tokenize the whole text, prepending BOS when the vocabulary asks for it
  (tokenizer.ggml.add_bos_token);
* at least 2 * n_ctx tokens are required; n_chunks = n_tokens // n_ctx
  (optionally capped by ``chunks``); chunk i is tokens [i*n_ctx, (i+1)*n_ctx);
* the first token of each chunk is replaced by BOS when the model adds BOS;
* each chunk is evaluated from an empty KV cache, and only the second half is
  scored: the logits at positions first = n_ctx/2 .. n_ctx-2 predict tokens
  first+1 .. n_ctx-1 (n_ctx - first - 1 tokens per chunk);
* log-softmax: max in float, sum of expf in double (native, csrc/runtime/score.cpp);
* PPL = exp(mean NLL), stderr = PPL * sqrt((mean(NLL^2) - mean(NLL)^2) / (count - 1)),
  with the running value exp(sum NLL / count) after every chunk.
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np

from . import _core
from ._core import KQuantsError, KQuantsIOError
from .model import Model

DEFAULT_TEXT = "moby-dick-excerpt.txt"
# Guess at what a string argument means: longer strings, or ones holding a
# newline, are text; shorter ones are paths when such a file exists.
_MAX_PATH_LEN = 4096


def default_text_path() -> str:
    """The evaluation text shipped with kquants (a public-domain Moby-Dick excerpt)."""
    return os.path.join(os.path.dirname(__file__), "data", DEFAULT_TEXT)


def _load_text(text_or_path) -> str:
    if text_or_path is None:
        text_or_path = default_text_path()
    if isinstance(text_or_path, os.PathLike) or (
            isinstance(text_or_path, str) and len(text_or_path) < _MAX_PATH_LEN and "\n" not in text_or_path
            and os.path.isfile(text_or_path)):
        path = os.fspath(text_or_path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise KQuantsIOError(f"{path}: cannot read evaluation text: {e}") from e
        # llama.cpp reads the bytes as they are; invalid UTF-8 can only be replaced here.
        text = data.decode("utf-8", errors="replace")
        if not text.strip():
            raise KQuantsError(f"{path}: the evaluation text is empty")
        return text
    if isinstance(text_or_path, (bytes, bytearray)):
        text_or_path = bytes(text_or_path).decode("utf-8", errors="replace")
    if not isinstance(text_or_path, str):
        raise KQuantsError(f"text_or_path must be a str, bytes or path, not {type(text_or_path).__name__}")
    if not text_or_path.strip():
        raise KQuantsError("the evaluation text is empty")
    return text_or_path


def _as_model(model, threads, n_ctx) -> Model:
    if isinstance(model, Model):
        if n_ctx > model.n_ctx_train:
            raise KQuantsError(f"n_ctx={n_ctx} is longer than the model's context length {model.n_ctx_train} "
                               f"({model.path})")
        if model.n_ctx < n_ctx:
            raise KQuantsError(f"the model was opened with n_ctx={model.n_ctx}, smaller than the "
                               f"evaluation context {n_ctx}; open it with Model(path, n_ctx={n_ctx})")
        return model
    return Model(model, threads=threads, n_ctx=n_ctx)


def _prepare(model: Model, text_or_path, tokens, n_ctx: int, chunks: Optional[int]):
    """Tokens and chunk count, checked as llama-perplexity checks them."""
    n_ctx = int(n_ctx)
    if n_ctx < 4:
        raise KQuantsError(f"n_ctx must be at least 4, got {n_ctx}")
    if n_ctx > model.n_ctx_train:
        raise KQuantsError(f"n_ctx={n_ctx} is longer than the model's context length {model.n_ctx_train}")
    t0 = time.perf_counter()
    if tokens is None:
        text = _load_text(text_or_path)
        tokens = model.tokenize(text, add_bos=model.add_bos)
    tokens = np.asarray(tokens, dtype=np.int64)
    t_tok = time.perf_counter() - t0
    if tokens.ndim != 1:
        raise KQuantsError("tokens must be a 1-D sequence")
    if len(tokens) < 2 * n_ctx:
        raise KQuantsError(f"the text tokenizes to only {len(tokens)} tokens; perplexity with a context of "
                           f"{n_ctx} needs at least {2 * n_ctx} (two chunks)")
    bad = np.flatnonzero((tokens < 0) | (tokens >= model.n_vocab))
    if bad.size:
        raise KQuantsError(f"token id {int(tokens[bad[0]])} at index {int(bad[0])} is outside the "
                           f"vocabulary [0, {model.n_vocab})")
    n_chunk = len(tokens) // n_ctx
    if chunks is not None:
        if int(chunks) <= 0:
            raise KQuantsError(f"chunks must be positive, got {chunks}")
        n_chunk = min(n_chunk, int(chunks))
    return tokens.astype(np.int32), n_chunk, t_tok


def _chunk_ids(model: Model, tokens: np.ndarray, i: int, n_ctx: int) -> np.ndarray:
    ids = tokens[i * n_ctx:(i + 1) * n_ctx].copy()
    if model.add_bos:
        ids[0] = model.bos_id
    return ids


def _mean_unc(s: float, s2: float, count: int) -> tuple[float, float]:
    """Mean and its standard error, as llama.cpp's mean_and_uncertainty."""
    if count < 1:
        return 0.0, 0.0
    f = s / count
    df = s2 / count - f * f
    return f, (math.sqrt(df / (count - 1)) if df > 0 and count > 10 else 0.0)


@dataclass
class PerplexityResult:
    ppl: float                    # exp(mean NLL)
    stderr: float                 # standard error of ppl
    chunk_ppl: list[float]        # running PPL after each chunk (llama.cpp's [i]value list)
    n_tokens: int                 # tokens of the whole text
    n_chunks: int
    n_ctx: int
    n_scored: int                 # tokens scored: n_chunks * (n_ctx - n_ctx/2 - 1)
    seconds: float                # evaluation wall time (excluding tokenization)
    tokenize_seconds: float
    nll: np.ndarray = field(repr=False, default=None)  # per scored token

    @property
    def tokens_per_second(self) -> float:
        return self.n_chunks * self.n_ctx / self.seconds if self.seconds > 0 else float("nan")

    def __str__(self) -> str:
        return f"PPL = {self.ppl:.4f} +/- {self.stderr:.5f} ({self.n_chunks} chunks of {self.n_ctx})"


def perplexity(model: Union[Model, str, os.PathLike], text_or_path=None, n_ctx: int = 512,
               chunks: Optional[int] = None, threads: Optional[int] = None, quiet: bool = False,
               tokens: Optional[Sequence[int]] = None) -> PerplexityResult:
    """Perplexity of ``model`` (a Model or a GGUF path) on a text, as llama-perplexity.

    text_or_path: text, or a path to a text file (e.g. wikitext-2's
    wiki.test.raw); None = the packaged Moby-Dick excerpt. tokens: evaluate
    these ids instead of tokenizing a text. chunks: evaluate at most this many
    chunks. Unless quiet, prints the running values like llama.cpp.
    """
    m = _as_model(model, threads, n_ctx)
    th = int(threads or m.threads or 0)
    toks, n_chunk, t_tok = _prepare(m, text_or_path, tokens, n_ctx, chunks)
    first = n_ctx // 2
    nll_all = []
    s = s2 = 0.0
    count = 0
    running = []
    if not quiet:
        print(f"perplexity: {len(toks)} tokens, {n_chunk} chunks of {n_ctx}", file=sys.stderr)
    t0 = time.perf_counter()
    for i in range(n_chunk):
        nll = m._native.score_chunk(_chunk_ids(m, toks, i, n_ctx), first, th)
        nll_all.append(nll)
        s += float(nll.sum())
        s2 += float((nll * nll).sum())
        count += len(nll)
        running.append(math.exp(s / count))
        if not quiet:
            print(f"[{i + 1}]{running[-1]:.4f},", end="", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    if not quiet:
        print(file=sys.stderr)
    mean = s / count
    var = s2 / count - mean * mean
    ppl = math.exp(mean)
    stderr = ppl * math.sqrt(var / (count - 1)) if var > 0 else 0.0
    res = PerplexityResult(ppl=ppl, stderr=stderr, chunk_ppl=running, n_tokens=len(toks), n_chunks=n_chunk,
                           n_ctx=n_ctx, n_scored=count, seconds=seconds, tokenize_seconds=t_tok,
                           nll=np.concatenate(nll_all))
    if not quiet:
        print(f"Final estimate: PPL = {ppl:.4f} +/- {stderr:.5f}", file=sys.stderr)
    return res


# --------------------------------------------------------------------------
# KL divergence
# --------------------------------------------------------------------------

def _percentile(sorted_vals: np.ndarray, fraction: float) -> float:
    """llama.cpp's linear-interpolation percentile of sorted values."""
    if fraction <= 0:
        return float(sorted_vals[0])
    if fraction >= 1:
        return float(sorted_vals[-1])
    p = fraction * (len(sorted_vals) - 1)
    ip = int(p)
    p -= ip
    return float((1 - p) * sorted_vals[ip] + p * sorted_vals[min(ip + 1, len(sorted_vals) - 1)])


def _median(v: np.ndarray) -> float:
    n = len(v)
    return float(0.5 * (v[n // 2] + v[n // 2 - 1]) if n % 2 == 0 else v[n // 2])


_KLD_PCTS = (0.999, 0.99, 0.95, 0.90, 0.10, 0.05, 0.01, 0.001)
_DP_PCTS = (0.999, 0.99, 0.95, 0.90, 0.75, 0.25, 0.10, 0.05, 0.01, 0.001)


@dataclass
class KLDivergenceResult:
    """The statistics llama-perplexity --kl-divergence prints."""
    ppl: tuple[float, float]              # PPL(Q) and its uncertainty
    ppl_base: tuple[float, float]
    ppl_correlation: float                # Cor(ln PPL(Q), ln PPL(base))
    ln_ppl_ratio: tuple[float, float]     # mean ln(PPL(Q)/PPL(base))
    ppl_ratio: tuple[float, float]
    ppl_diff: tuple[float, float]
    kld: tuple[float, float]              # mean KLD and its uncertainty
    kld_max: float
    kld_median: float
    kld_min: float
    kld_percentiles: dict[float, float]
    dp_mean: tuple[float, float]          # mean Δp (fraction, not %)
    dp_max: float
    dp_median: float
    dp_min: float
    dp_percentiles: dict[float, float]
    dp_rms: tuple[float, float]
    same_top: tuple[float, float]         # top-1 agreement (fraction)
    n_chunks: int
    n_ctx: int
    n_scored: int
    seconds: float
    chunk_kld: list[float] = field(default_factory=list)  # running mean KLD after each chunk

    def report(self) -> str:
        """Text in llama.cpp's layout."""
        L = ["====== Perplexity statistics ======",
             f"Mean PPL(Q)                   : {self.ppl[0]:10.6f} ± {self.ppl[1]:10.6f}",
             f"Mean PPL(base)                : {self.ppl_base[0]:10.6f} ± {self.ppl_base[1]:10.6f}",
             f"Cor(ln(PPL(Q)), ln(PPL(base))): {100 * self.ppl_correlation:6.2f}%",
             f"Mean ln(PPL(Q)/PPL(base))     : {self.ln_ppl_ratio[0]:10.6f} ± {self.ln_ppl_ratio[1]:10.6f}",
             f"Mean PPL(Q)/PPL(base)         : {self.ppl_ratio[0]:10.6f} ± {self.ppl_ratio[1]:10.6f}",
             f"Mean PPL(Q)-PPL(base)         : {self.ppl_diff[0]:10.6f} ± {self.ppl_diff[1]:10.6f}",
             "", "====== KL divergence statistics ======",
             f"Mean    KLD: {self.kld[0]:10.6f} ± {self.kld[1]:10.6f}",
             f"Maximum KLD: {self.kld_max:10.6f}"]
        for f in _KLD_PCTS[:4]:
            L.append(f"{100 * f:4.1f}%   KLD: {self.kld_percentiles[f]:10.6f}")
        L.append(f"Median  KLD: {self.kld_median:10.6f}")
        for f in _KLD_PCTS[4:]:
            L.append(f"{100 * f:4.1f}%   KLD: {self.kld_percentiles[f]:10.6f}")
        L += [f"Minimum KLD: {self.kld_min:10.6f}", "", "====== Token probability statistics ======",
              f"Mean    Δp: {100 * self.dp_mean[0]:6.3f} ± {100 * self.dp_mean[1]:5.3f} %",
              f"Maximum Δp: {100 * self.dp_max:6.3f}%"]
        for f in _DP_PCTS[:5]:
            L.append(f"{100 * f:4.1f}%   Δp: {100 * self.dp_percentiles[f]:6.3f}%")
        L.append(f"Median  Δp: {100 * self.dp_median:6.3f}%")
        for f in _DP_PCTS[5:]:
            L.append(f"{100 * f:4.1f}%   Δp: {100 * self.dp_percentiles[f]:6.3f}%")
        L += [f"Minimum Δp: {100 * self.dp_min:6.3f}%",
              f"RMS Δp    : {100 * self.dp_rms[0]:6.3f} ± {100 * self.dp_rms[1]:5.3f} %",
              f"Same top p: {100 * self.same_top[0]:6.3f} ± {100 * self.same_top[1]:5.3f} %"]
        return "\n".join(L)

    def __str__(self) -> str:
        return self.report()


def kl_divergence(model, base, text_or_path=None, n_ctx: int = 512, chunks: Optional[int] = None,
                  threads: Optional[int] = None, quiet: bool = False,
                  tokens: Optional[Sequence[int]] = None) -> KLDivergenceResult:
    """KL divergence of ``model`` from a reference ``base`` (e.g. the F16/Q8_0
    GGUF of the same model), as llama-perplexity --kl-divergence reports it,
    in one pass over both models (no logits file). Tokens, chunks and BOS
    handling as :func:`perplexity`; the text is tokenized with ``base``'s
    vocabulary (llama.cpp stores the base run's tokens in its logits file).
    """
    b = _as_model(base, threads, n_ctx)
    m = _as_model(model, threads, n_ctx)
    if m.n_vocab != b.n_vocab:
        raise KQuantsError(f"the models' vocabularies differ ({m.n_vocab} vs {b.n_vocab} tokens)")
    th = int(threads or m.threads or 0)
    toks, n_chunk, _ = _prepare(b, text_or_path, tokens, n_ctx, chunks)
    first = n_ctx // 2
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("kld", "nll", "nll_base", "p_diff", "same_top")}
    running = []
    t0 = time.perf_counter()
    if not quiet:
        print("chunk   mean KLD   same top", file=sys.stderr)
    for i in range(n_chunk):
        r = _core.kld_chunk(m._native, b._native, _chunk_ids(b, toks, i, n_ctx), first, th)
        for k in parts:
            parts[k].append(np.asarray(r[k]))
        kall = np.concatenate(parts["kld"])
        running.append(float(kall.mean()))
        if not quiet:
            same = np.concatenate(parts["same_top"]).mean()
            print(f"{i + 1:4d}   {running[-1]:9.6f}   {100 * same:6.3f}%", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - t0
    a = {k: np.concatenate(v) for k, v in parts.items()}
    count = len(a["kld"])

    def sums(x):
        return float(x.sum()), float((x * x).sum())

    # NLLs accumulate as float in llama.cpp's per-token code; sums are double.
    nll, nll_b = a["nll"].astype(np.float32).astype(np.float64), a["nll_base"].astype(np.float32).astype(np.float64)
    lp = _mean_unc(*sums(nll), count)
    lpb = _mean_unc(*sums(nll_b), count)
    cov = ((nll * nll_b).sum() / count - (nll.sum() / count) * (nll_b.sum() / count)) / (count - 1) \
        if count >= 10 else 0.0
    ppl_v, ppl_b = math.exp(lp[0]), math.exp(lpb[0])
    ratio_unc = math.sqrt(max(lp[1] ** 2 + lpb[1] ** 2 - 2 * cov, 0.0))
    ppl_unc, ppl_b_unc = ppl_v * lp[1], ppl_b * lpb[1]
    kv = np.sort(a["kld"].astype(np.float32))
    dp = a["p_diff"].astype(np.float32).astype(np.float64)
    dps = np.sort(dp.astype(np.float32))
    mse = _mean_unc(float((dp * dp).sum()), float((dp ** 4).sum()), count)
    rms = math.sqrt(mse[0])
    same = float(a["same_top"].mean())
    return KLDivergenceResult(
        ppl=(ppl_v, ppl_unc), ppl_base=(ppl_b, ppl_b_unc),
        ppl_correlation=cov / (lp[1] * lpb[1]) if lp[1] * lpb[1] > 0 else float("nan"),
        ln_ppl_ratio=(lp[0] - lpb[0], ratio_unc),
        ppl_ratio=(math.exp(lp[0] - lpb[0]), math.exp(lp[0] - lpb[0]) * ratio_unc),
        ppl_diff=(ppl_v - ppl_b, math.sqrt(max(ppl_unc ** 2 + ppl_b_unc ** 2 - 2 * ppl_v * ppl_b * cov, 0.0))),
        kld=_mean_unc(*sums(a["kld"]), count), kld_max=float(kv[-1]), kld_median=_median(kv),
        kld_min=float(kv[0]), kld_percentiles={f: _percentile(kv, f) for f in _KLD_PCTS},
        dp_mean=_mean_unc(*sums(dp), count), dp_max=float(dps[-1]), dp_median=_median(dps),
        dp_min=float(dps[0]), dp_percentiles={f: _percentile(dps, f) for f in _DP_PCTS},
        dp_rms=(rms, 0.5 / rms * mse[1] if rms > 0 else 0.0),
        same_top=(same, math.sqrt(same * (1 - same) / (count - 1)) if count > 1 else 0.0),
        n_chunks=n_chunk, n_ctx=n_ctx, n_scored=count, seconds=seconds, chunk_kld=running)
