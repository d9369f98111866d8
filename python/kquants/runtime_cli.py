"""Command-line subcommands of the runtime: generate, perplexity, kl-divergence, sweep.

``SUBCOMMANDS`` lists them as (name, help, add_arguments, run); the
``kquants`` command line (kquants.cli) registers them next to its own.
"""
from __future__ import annotations

import sys


def _generate_args(p) -> None:
    p.add_argument("model", help="GGUF model file")
    p.add_argument("prompt", help="prompt text")
    p.add_argument("-n", "--max-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("-t", "--threads", type=int, default=None)
    p.add_argument("--ctx", type=int, default=None, help="context size (default: model's, at most 4096)")


def _generate(a) -> int:
    import time

    from .model import Model
    m = Model(a.model, threads=a.threads, n_ctx=a.ctx)
    sys.stdout.write(a.prompt)
    sys.stdout.flush()
    t0 = time.perf_counter()
    n = 0
    for piece in m.generate(a.prompt, max_tokens=a.max_tokens, temperature=a.temperature, top_k=a.top_k,
                            top_p=a.top_p, seed=a.seed, stream=True):
        sys.stdout.write(piece)
        sys.stdout.flush()
        n += 1
    dt = time.perf_counter() - t0
    sys.stdout.write("\n")
    sys.stderr.write(f"[{n} pieces in {dt:.2f} s]\n")
    return 0


def _ppl_args(p) -> None:
    p.add_argument("model", help="GGUF model file")
    p.add_argument("text", nargs="?", default=None,
                   help="text file, e.g. wikitext-2's wiki.test.raw (default: packaged Moby-Dick excerpt)")
    p.add_argument("-c", "--ctx", type=int, default=512, help="tokens per chunk (default 512)")
    p.add_argument("--chunks", type=int, default=None, help="evaluate at most this many chunks")
    p.add_argument("-t", "--threads", type=int, default=None)
    p.add_argument("-q", "--quiet", action="store_true", help="no per-chunk progress")


def _perplexity(a) -> int:
    from .perplexity import perplexity
    r = perplexity(a.model, a.text, n_ctx=a.ctx, chunks=a.chunks, threads=a.threads, quiet=a.quiet)
    print(f"PPL = {r.ppl:.4f} +/- {r.stderr:.5f}  ({r.n_chunks} chunks of {r.n_ctx}, {r.n_tokens} tokens, "
          f"{r.seconds:.1f} s, {r.tokens_per_second:.1f} tok/s)")
    return 0


def _kld_args(p) -> None:
    p.add_argument("model", help="GGUF model file to evaluate (e.g. a quantization)")
    p.add_argument("base", help="reference GGUF of the same model (e.g. F16 or Q8_0)")
    p.add_argument("text", nargs="?", default=None, help="text file (default: packaged Moby-Dick excerpt)")
    p.add_argument("-c", "--ctx", type=int, default=512)
    p.add_argument("--chunks", type=int, default=None)
    p.add_argument("-t", "--threads", type=int, default=None)
    p.add_argument("-q", "--quiet", action="store_true")


def _kld(a) -> int:
    from .perplexity import kl_divergence
    r = kl_divergence(a.model, a.base, a.text, n_ctx=a.ctx, chunks=a.chunks, threads=a.threads, quiet=a.quiet)
    print(r.report())
    return 0


def _sweep_args(p) -> None:
    from .sweep import DEFAULT_TYPES
    p.add_argument("model", help="model to quantize: a Hugging Face folder or a GGUF (quantized ones are requantized)")
    p.add_argument("--types", default=",".join(DEFAULT_TYPES),
                   help=f"comma-separated quantize presets (default {','.join(DEFAULT_TYPES)})")
    p.add_argument("--text", default=None, help="evaluation text file (default: packaged Moby-Dick excerpt)")
    p.add_argument("-o", "--out", default=None, help="output folder (default: <model>-sweep beside the model)")
    p.add_argument("-c", "--ctx", type=int, default=512, help="tokens per perplexity chunk (default 512)")
    p.add_argument("--chunks", type=int, default=None, help="evaluate at most this many chunks")
    p.add_argument("-t", "--threads", type=int, default=None, help="'all threads' for the speed columns")
    p.add_argument("--pp", type=int, default=512, help="prompt length timed for pp ms/token (default 512)")
    p.add_argument("--tg", type=int, default=64, help="decode steps timed for tg ms/token (default 64)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.add_argument("--no-keep", action="store_true", help="delete the quantized GGUFs at the end")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _sweep(a) -> int:
    from .sweep import sweep
    r = sweep(a.model, a.types.split(","), a.text, a.out, n_ctx=a.ctx, chunks=a.chunks, threads=a.threads,
              pp_tokens=a.pp, tg_tokens=a.tg, plot=not a.no_plot, keep=not a.no_keep, quiet=a.quiet)
    print(r.markdown())
    print("wrote " + ", ".join(r.outputs.values()))
    if "png" not in r.outputs and not a.no_plot:
        print("(no plot: install matplotlib, e.g. pip install 'kquants[plot]')")
    return 0


SUBCOMMANDS = [
    ("generate", "generate text with a GGUF model", _generate_args, _generate),
    ("perplexity", "perplexity of a GGUF model on a text, as llama-perplexity", _ppl_args, _perplexity),
    ("kl-divergence", "KL divergence of a model from a reference model, as llama-perplexity --kl-divergence",
     _kld_args, _kld),
    ("sweep", "quantize to several types and tabulate size, bits/weight, perplexity, KLD and speed",
     _sweep_args, _sweep),
]
