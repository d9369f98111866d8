"""llama-cpp-python helpers shared by the comparison benchmarks.

llama.cpp's CPU backend puts Q4_0/Q4_1/Q8_0 weights into an AMX "extra"
buffer on CPUs that report AMX; in sandboxes where the kernel does not grant
AMX tile state that path segfaults. On such CPUs (amx_tile in /proc/cpuinfo)
the extra buffer types (AMX, and the repacking of Q4_0/Q4_K/... into
interleaved rows) are switched off, which leaves the ordinary ggml-cpu
kernels (the same arithmetic); elsewhere llama.cpp runs with its defaults,
repacking included. KQ_LLAMA_EXTRA_BUFTS=1 / 0 forces either choice.
"""
from __future__ import annotations

import os


def extra_bufts_enabled() -> bool:
    """Whether llama.cpp keeps its extra buffer types (see the module doc)."""
    env = os.environ.get("KQ_LLAMA_EXTRA_BUFTS")
    if env in ("0", "1"):
        return env == "1"
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_tile" not in f.read()
    except OSError:
        return True


def llama_cpp():
    import llama_cpp as lc
    import llama_cpp.llama_cpp as raw

    if not extra_bufts_enabled() and not getattr(raw, "_kq_patched", False):
        orig = raw.llama_model_default_params

        def params():
            p = orig()
            p.use_extra_bufts = False
            return p

        raw.llama_model_default_params = params
        raw._kq_patched = True
    return lc


def open_llama(path: str, n_ctx: int = 512, threads: int = 2, logits_all: bool = True):
    lc = llama_cpp()
    return lc.Llama(path, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, logits_all=logits_all, n_threads=threads,
                    n_threads_batch=threads, verbose=False)
