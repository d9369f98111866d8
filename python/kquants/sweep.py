"""``kquants sweep``: llama.cpp's README quantization table for your own model.

    r = kquants.sweep("smollm2-hf", types=["f16", "q8_0", "q4_k_m"], out_dir="sweep")
    print(r.markdown())

For each type the model (a Hugging Face folder or a GGUF) is quantized with
:func:`kquants.quantize`, then measured:

* file size and bits per weight (tensor bytes * 8 / weights, over all tensors,
  as llama.cpp's README counts them);
* perplexity on the text (llama-perplexity's procedure, :mod:`kquants.perplexity`)
  and its difference from the *reference type*, the type of the sweep with the
  most bits per weight (f16 in the default list);
* mean KL divergence from the reference type, in the same pass over both
  models as llama-perplexity --kl-divergence (so each non-reference row also
  gets its perplexity from that pass, no second evaluation);
* prompt processing and generation speed in ms/token, at 1 thread and at all
  threads (best of ``reps`` timings of a ``pp_tokens`` prompt and of
  ``tg_tokens`` single-token decode steps).

The text is tokenized once with the reference model's vocabulary and every
type is scored on those same ids. Output: ``sweep.md`` (markdown table),
``sweep.json`` and, when matplotlib is installed (``pip install kquants[plot]``),
``sweep.png`` (bits/weight against perplexity), all in ``out_dir``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ._core import KQuantsError
from .gguf import GGUFFile

DEFAULT_TYPES = ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0", "q3_k_m", "q2_k")
# Generation is timed after a short prompt: the KV cache holds this many
# tokens when the first timed decode step runs (as bench_e2e does).
_TG_PREFIX = 16


@dataclass
class SweepRow:
    type: str
    path: str
    file_bytes: int
    bits_per_weight: float        # tensor bytes * 8 / number of weights
    n_params: int
    ppl: float
    ppl_stderr: float
    delta_ppl: float              # ppl - reference ppl
    kld: Optional[float]          # mean KLD from the reference (0 for the reference itself)
    kld_stderr: Optional[float]
    same_top: Optional[float]     # top-1 agreement with the reference (fraction)
    pp_ms: dict = field(default_factory=dict)   # {threads: ms per prompt token}
    tg_ms: dict = field(default_factory=dict)   # {threads: ms per generated token}
    quantize_seconds: float = 0.0
    eval_seconds: float = 0.0


@dataclass
class SweepResult:
    model: str
    text: str
    n_ctx: int
    n_chunks: int
    n_tokens: int
    reference: str
    threads: list
    pp_tokens: int
    tg_tokens: int
    rows: list
    outputs: dict = field(default_factory=dict)

    def markdown(self) -> str:
        th = self.threads
        head = ["type", "size (MiB)", "bits/weight", "PPL", "ΔPPL", "mean KLD", "same top"]
        head += [f"pp ms/tok t={t}" for t in th] + [f"tg ms/tok t={t}" for t in th]
        lines = [f"# kquants sweep: {os.path.basename(self.model)}", "",
                 f"Text: {self.text}; {self.n_chunks} chunks of {self.n_ctx} tokens ({self.n_tokens} tokens). "
                 f"ΔPPL and KLD against {self.reference}, the type with the most bits per weight. "
                 f"Speed: best of timed {self.pp_tokens}-token prompts (pp) and {self.tg_tokens} decode steps (tg), "
                 f"ms per token at {' and '.join(map(str, self.threads))} thread(s).", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
        for r in self.rows:
            kld = "-" if r.kld is None else f"{r.kld:.5f} ± {r.kld_stderr:.5f}"
            same = "-" if r.same_top is None else f"{100 * r.same_top:.2f}%"
            cells = [r.type, f"{r.file_bytes / 2**20:.1f}", f"{r.bits_per_weight:.3f}",
                     f"{r.ppl:.4f} ± {r.ppl_stderr:.4f}", f"{r.delta_ppl:+.4f}", kld, same]
            cells += [f"{r.pp_ms[t]:.3f}" for t in th] + [f"{r.tg_ms[t]:.3f}" for t in th]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        d = asdict(self)
        for r in d["rows"]:
            r["pp_ms"] = {str(k): v for k, v in r["pp_ms"].items()}
            r["tg_ms"] = {str(k): v for k, v in r["tg_ms"].items()}
        return d


def model_bits(path) -> tuple[int, float]:
    """(number of weights, bits per weight) over all tensors of a GGUF."""
    f = GGUFFile(path)
    n = sum(int(np.prod(t.shape)) for t in f.tensors)
    nbytes = sum(t.nbytes for t in f.tensors)
    return n, 8.0 * nbytes / n


def speed(path, threads: int, prompt, n_gen: int, reps: int) -> tuple[float, float]:
    """(ms per prompt token, ms per generated token) of a GGUF at ``threads``:
    the best of ``reps`` timings of ``prompt`` in one batch from an empty
    cache, and of ``n_gen`` greedy decode steps after its first 16 tokens."""
    from .model import Model
    m = Model(path, threads=threads, n_ctx=max(len(prompt), _TG_PREFIX + n_gen))
    pp = []
    for _ in range(reps):
        m.reset()
        t0 = time.perf_counter()
        m.eval(prompt)
        pp.append(time.perf_counter() - t0)
    tg = []
    for _ in range(reps):
        m.reset()
        tok = int(np.argmax(m.eval(prompt[:_TG_PREFIX])))
        t0 = time.perf_counter()
        for _ in range(n_gen):
            tok = int(np.argmax(m.eval([tok])))
        tg.append(time.perf_counter() - t0)
    return 1e3 * min(pp) / len(prompt), 1e3 * min(tg) / n_gen


def _plot(result: SweepResult, path: Path) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    rows = sorted(result.rows, key=lambda r: r.bits_per_weight)
    x = [r.bits_per_weight for r in rows]
    y = [r.ppl for r in rows]
    e = [r.ppl_stderr for r in rows]
    ax.errorbar(x, y, yerr=e, fmt="o-", capsize=3)
    for r in result.rows:
        ax.annotate(r.type, (r.bits_per_weight, r.ppl), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("bits per weight")
    ax.set_ylabel(f"perplexity ({result.n_chunks} x {result.n_ctx} tokens)")
    ax.set_title(f"kquants sweep: {os.path.basename(result.model)}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def sweep(model: Union[str, os.PathLike], types: Sequence[str] = DEFAULT_TYPES, text_or_path=None,
          out_dir: Union[str, os.PathLike, None] = None, *, n_ctx: int = 512, chunks: Optional[int] = None,
          threads: Optional[int] = None, pp_tokens: int = 512, tg_tokens: int = 64, reps: int = 2,
          plot: bool = True, keep: bool = True, quiet: bool = False) -> SweepResult:
    """Quantizes ``model`` to each of ``types`` (quantize presets) and measures
    size, bits/weight, perplexity, ΔPPL and mean KLD against the type with the
    most bits per weight, and prompt/generation ms per token at 1 thread and
    at ``threads`` (default: all cores). Writes sweep.md, sweep.json and
    sweep.png to ``out_dir`` (default: ``<model name>-sweep`` beside the
    model). keep=False deletes the quantized GGUFs at the end. A quantized
    GGUF input is requantized (llama-quantize --allow-requantize)."""
    from tqdm.auto import tqdm

    from .convert import quantize
    from .convert.presets import get_preset
    from .model import Model
    from .perplexity import _load_text, kl_divergence, perplexity

    types = [t.strip().lower() for t in types if t.strip()]
    if not types:
        raise KQuantsError("sweep: the list of types is empty")
    if len(set(types)) != len(types):
        raise KQuantsError(f"sweep: a type is listed twice in {types}")
    for t in types:
        get_preset(t)  # raises naming the supported presets
    src = Path(model)
    if not src.exists():
        raise KQuantsError(f"{src}: no such model (a GGUF file or a Hugging Face folder)")
    out = Path(out_dir) if out_dir is not None else src.parent / f"{src.stem if src.is_file() else src.name}-sweep"
    out.mkdir(parents=True, exist_ok=True)
    all_threads = int(threads or os.cpu_count() or 1)
    thread_list = sorted({1, all_threads})
    text_name = "packaged Moby-Dick excerpt" if text_or_path is None else os.path.basename(os.fspath(text_or_path))
    text = _load_text(text_or_path)
    stem = src.stem if src.is_file() else src.name

    steps = tqdm(total=3 * len(types), desc="sweep", unit="step", disable=quiet)
    paths, quant_s = {}, {}
    for t in types:
        steps.set_postfix_str(f"quantize {t}")
        p = out / f"{stem}-{t}.gguf"
        t0 = time.perf_counter()
        quantize(src, p, t, threads=threads, quiet=True, allow_requantize=True)
        quant_s[t] = time.perf_counter() - t0
        paths[t] = p
        steps.update()
    bits = {t: model_bits(paths[t]) for t in types}
    ref = max(types, key=lambda t: bits[t][1])

    steps.set_postfix_str(f"perplexity {ref}")
    ref_model = Model(paths[ref], threads=all_threads, n_ctx=n_ctx)
    tokens = ref_model.tokenize(text)
    t0 = time.perf_counter()
    ref_ppl = perplexity(ref_model, n_ctx=n_ctx, chunks=chunks, tokens=tokens, quiet=True)
    evals = {ref: (ref_ppl.ppl, ref_ppl.stderr, 0.0, 0.0, 1.0, time.perf_counter() - t0)}
    steps.update()
    for t in types:
        if t == ref:
            continue
        steps.set_postfix_str(f"KLD {t}")
        t0 = time.perf_counter()
        k = kl_divergence(Model(paths[t], threads=all_threads, n_ctx=n_ctx), ref_model, n_ctx=n_ctx,
                          chunks=chunks, tokens=tokens, quiet=True)
        evals[t] = (k.ppl[0], k.ppl[1], k.kld[0], k.kld[1], k.same_top[0], time.perf_counter() - t0)
        steps.update()

    # The timed prompt and decode steps must fit the model's context.
    n_ctx_train = ref_model.n_ctx_train
    del ref_model
    pp_tokens = max(1, min(pp_tokens, n_ctx_train))
    tg_tokens = max(1, min(tg_tokens, n_ctx_train - _TG_PREFIX))
    prompt = np.resize(np.asarray(tokens, dtype=np.int32), pp_tokens)
    speeds = {}
    for t in types:
        steps.set_postfix_str(f"speed {t}")
        speeds[t] = {th: speed(paths[t], th, prompt, tg_tokens, reps) for th in thread_list}
        steps.update()
    steps.close()

    rows = []
    for t in types:
        ppl, ppl_se, kld, kld_se, same, ev_s = evals[t]
        rows.append(SweepRow(
            type=t, path=str(paths[t]), file_bytes=paths[t].stat().st_size, bits_per_weight=bits[t][1],
            n_params=bits[t][0], ppl=ppl, ppl_stderr=ppl_se, delta_ppl=ppl - evals[ref][0], kld=kld,
            kld_stderr=kld_se, same_top=same, pp_ms={th: speeds[t][th][0] for th in thread_list},
            tg_ms={th: speeds[t][th][1] for th in thread_list}, quantize_seconds=quant_s[t], eval_seconds=ev_s))
    n_chunks = len(ref_ppl.chunk_ppl)
    res = SweepResult(model=str(src), text=text_name, n_ctx=n_ctx, n_chunks=n_chunks, n_tokens=len(tokens),
                      reference=ref, threads=thread_list, pp_tokens=pp_tokens, tg_tokens=tg_tokens, rows=rows)
    md, js, png = out / "sweep.md", out / "sweep.json", out / "sweep.png"
    md.write_text(res.markdown(), encoding="utf-8")
    res.outputs = {"markdown": str(md), "json": str(js)}
    if plot and _plot(res, png):
        res.outputs["png"] = str(png)
    js.write_text(json.dumps(res.to_json(), indent=1), encoding="utf-8")
    if not keep:
        for p in paths.values():
            p.unlink(missing_ok=True)
    return res
