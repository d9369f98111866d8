"""Run Llama-family GGUF models on the CPU: kquants.Model.

    m = kquants.Model("SmolLM2-135M.Q4_1.gguf", threads=2)
    ids = m.tokenize("The capital of France is")
    logits = m.logits(ids)                      # float32 [len(ids), n_vocab]
    for piece in m.generate("Once upon a time", max_tokens=32, stream=True):
        print(piece, end="")

Supported architectures are the rows of ``ARCHITECTURES``; the decoder itself
is native (csrc/runtime/), weights stay in the memory-mapped file.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from . import _core
from ._core import GGUFError, KQuantsError, KQuantsIOError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ArchSpec:
    """How an architecture differs from the Llama baseline."""
    rope_neox: bool   # RoPE pairs (i, i + d/2) instead of (2i, 2i+1)
    doc: str


# The supported architectures (GGUF general.architecture). q/k/v biases and
# an untied output are taken from the file whenever their tensors exist.
ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": ArchSpec(rope_neox=False, doc="Llama 1/2/3, SmolLM, TinyLlama, Mistral (no sliding window)"),
    "qwen2": ArchSpec(rope_neox=True, doc="Qwen2 / Qwen2.5 (attention q/k/v biases)"),
}

# Default KV-cache capacity when the caller gives no n_ctx: the model's
# training context, capped so that opening a 128k-context model does not
# reserve its full cache (the cache grows lazily anyway).
DEFAULT_MAX_CTX = 4096


# --------------------------------------------------------------------------
# GGUF access: the one place that reads files for the runtime.
# --------------------------------------------------------------------------

@dataclass
class _TensorRef:
    name: str
    data: np.ndarray   # uint8 view of the tensor bytes (memory-mapped)
    type_id: int
    ne0: int           # values per row
    ne1: int           # rows (product of the remaining dims)


def _read_gguf(path: str) -> tuple[dict[str, Any], dict[str, _TensorRef]]:
    """Metadata and tensor views of a GGUF file (kquants.GGUFFile: native,
    memory-mapped; the views keep the mapping alive)."""
    from .gguf import GGUFFile

    if not os.path.isfile(path):
        raise KQuantsIOError(f"{path}: no such file")
    with GGUFFile(path) as f:
        meta = dict(f.metadata)
        tensors = {}
        for t in f.tensors:
            ne = [int(x) for x in t.ne]
            ne1 = int(np.prod(ne[1:], dtype=np.int64)) if len(ne) > 1 else 1
            tensors[t.name] = _TensorRef(t.name, f.tensor_data(t.name), int(t.type), ne[0], ne1)
    return meta, tensors


def _llama3_rope_factors(n_rot: int, base: float, factor: float, low: float, high: float,
                         orig_ctx: int) -> np.ndarray:
    """Llama-3.1 frequency divisors (what converters store as rope_freqs.weight).

    Wavelengths shorter than orig_ctx/high keep their frequency, longer than
    orig_ctx/low are divided by `factor`, and in between blend smoothly.
    """
    out = np.empty(n_rot // 2, dtype=np.float32)
    low_wavelen, high_wavelen = orig_ctx / low, orig_ctx / high
    for i in range(n_rot // 2):
        freq = base ** (-2.0 * i / n_rot)
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out[i] = 1.0
        elif wavelen > low_wavelen:
            out[i] = factor
        else:
            smooth = (orig_ctx / wavelen - low) / (high - low)
            out[i] = 1.0 / ((1 - smooth) / factor + smooth)
    return out


def _hparams(path: str, meta: dict[str, Any], tensors: dict[str, _TensorRef],
             n_ctx: Optional[int]) -> tuple[dict[str, Any], list[_TensorRef]]:
    """The decoder config dict for _core.LlamaModel, plus synthetic tensors."""
    arch = meta.get("general.architecture")
    if arch is None:
        raise GGUFError(f"{path}: required key 'general.architecture' is missing")
    if arch not in ARCHITECTURES:
        raise KQuantsError(f"{path}: unsupported architecture {arch!r}; supported: "
                           + ", ".join(f"{a} ({s.doc})" for a, s in ARCHITECTURES.items()))
    spec = ARCHITECTURES[arch]

    def key(name: str, default: Any = KeyError) -> Any:
        full = f"{arch}.{name}"
        if full in meta:
            return meta[full]
        if default is KeyError:
            raise GGUFError(f"{path}: required key '{full}' is missing")
        return default

    n_embd = int(key("embedding_length"))
    n_head = int(key("attention.head_count"))
    n_layer = int(key("block_count"))
    n_ff = int(key("feed_forward_length"))
    n_ctx_train = int(key("context_length"))
    rms_eps = float(key("attention.layer_norm_rms_epsilon"))
    n_head_kv = int(key("attention.head_count_kv", n_head))
    head_dim = int(key("attention.key_length", n_embd // max(n_head, 1)))
    if int(key("attention.value_length", head_dim)) != head_dim:
        raise KQuantsError(f"{path}: attention.value_length differs from key_length; not supported")
    n_rot = int(key("rope.dimension_count", head_dim))
    freq_base = float(key("rope.freq_base", 10000.0))
    if "token_embd.weight" not in tensors:
        raise GGUFError(f"{path}: tensor 'token_embd.weight' is missing")
    n_vocab = int(key("vocab_size", tensors["token_embd.weight"].ne1))

    # RoPE scaling: linear divides positions by the factor; llama3 divides
    # frequencies by per-dimension factors (normally shipped as the tensor
    # rope_freqs.weight, which the native side reads directly).
    extra: list[_TensorRef] = []
    freq_scale = 1.0
    scaling = str(key("rope.scaling.type", "none"))
    factor = float(key("rope.scaling.factor", 0.0) or 0.0)
    if scaling == "none" and float(key("rope.scale_linear", 0.0) or 0.0) > 0:  # older files
        scaling, factor = "linear", float(key("rope.scale_linear"))
    if scaling == "linear":
        if factor > 0:
            freq_scale = 1.0 / factor
    elif scaling == "llama3":
        if "rope_freqs.weight" not in tensors:
            f = _llama3_rope_factors(
                n_rot, freq_base, factor or 8.0, float(key("rope.scaling.low_freq_factor", 1.0)),
                float(key("rope.scaling.high_freq_factor", 4.0)),
                int(key("rope.scaling.original_context_length", 8192)))
            extra.append(_TensorRef("rope_freqs.weight", f.view(np.uint8), 0, n_rot // 2, 1))
    elif scaling != "none":
        raise KQuantsError(f"{path}: rope scaling type {scaling!r} is not supported "
                           "(supported: none, linear, llama3)")

    if n_ctx is None:
        n_ctx = min(n_ctx_train, DEFAULT_MAX_CTX)
    n_ctx = int(n_ctx)
    if n_ctx <= 0:
        raise KQuantsError(f"n_ctx must be positive, got {n_ctx}")
    if n_ctx > n_ctx_train:
        raise KQuantsError(f"n_ctx={n_ctx} is longer than the model's context length {n_ctx_train} "
                           f"({arch}.context_length in {path})")
    cfg = dict(arch=arch, path=path, n_vocab=n_vocab, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
               n_head_kv=n_head_kv, head_dim=head_dim, n_ff=n_ff, n_ctx_train=n_ctx_train, n_ctx=n_ctx,
               rms_eps=rms_eps, n_rot=n_rot, rope_freq_base=freq_base, rope_freq_scale=freq_scale,
               rope_neox=spec.rope_neox)
    return cfg, extra


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------

def _sample(logits: np.ndarray, temperature: float, top_k: int, top_p: float,
            rng: np.random.Generator) -> int:
    """Greedy when temperature <= 0; else top-k, then top-p, then temperature."""
    if temperature <= 0:
        return int(np.argmax(logits))
    x = logits.astype(np.float64)
    k = len(x) if top_k <= 0 else min(top_k, len(x))
    idx = np.argpartition(-x, k - 1)[:k] if k < len(x) else np.arange(len(x))
    idx = idx[np.argsort(-x[idx], kind="stable")]
    z = x[idx] / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    if 0 < top_p < 1:
        keep = int(np.searchsorted(np.cumsum(p), top_p) + 1)
        idx, p = idx[:keep], p[:keep] / p[:keep].sum()
    return int(idx[rng.choice(len(idx), p=p)])


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

class Model:
    """A GGUF language model (architectures: see ``ARCHITECTURES``).

    ``threads``: worker threads (default: all cores / KQUANTS_THREADS).
    ``n_ctx``: KV-cache capacity in tokens (default: the model's context
    length, at most 4096); it may not exceed the model's context length.
    ``tokenizer``: an object with ``encode(text, add_bos=...)`` / ``decode(ids)``
    (default: kquants.Tokenizer from the file's tokenizer metadata).
    ``kv_cache``: "f16" (llama.cpp's default: K/V, Q and attention weights
    carry fp16 precision, so results track llama.cpp) or "f32".
    ``pack_weights``: copy weight matrices once into the matmul kernels'
    packed layout, so that each matmul skips packing them: "auto" (default)
    packs the matrices whose rows pack without padding (k a multiple of 16
    blocks, e.g. 4096; the copy is then the same size, and a 7B-shaped
    mat-vec measured 2x faster); True / "on" packs every matrix (rows such as
    SmolLM2's k=576 pad to 1.8x their bytes, and memory-bound decoding gets
    no faster); False / "off" packs nothing.
    """

    def __init__(self, path: PathLike, threads: Optional[int] = None, n_ctx: Optional[int] = None,
                 tokenizer: Any = None, kv_cache: str = "f16", pack_weights: Union[bool, str] = "auto"):
        self.path = os.fspath(path)
        if kv_cache not in ("f16", "f32"):
            raise KQuantsError(f"kv_cache must be 'f16' or 'f32', got {kv_cache!r}")
        if threads is not None and int(threads) < 0:
            raise KQuantsError(f"threads must be positive (or None for the default), got {threads}")
        meta, tensors = _read_gguf(self.path)
        cfg, extra = _hparams(self.path, meta, tensors, n_ctx)
        cfg["kv_f16"] = kv_cache == "f16"
        if isinstance(pack_weights, bool):
            pack_weights = "on" if pack_weights else "off"
        if pack_weights not in ("auto", "on", "off"):
            raise KQuantsError(f"pack_weights must be 'auto', 'on', 'off' or a bool, got {pack_weights!r}")
        cfg["pack_weights"] = pack_weights
        refs = list(tensors.values()) + extra
        self._native = _core.LlamaModel(cfg, [(t.name, t.data, t.type_id, t.ne0, t.ne1) for t in refs])
        self.config = cfg
        self.metadata = {k: v for k, v in meta.items() if not k.startswith("tokenizer.ggml.")}
        self.threads = int(threads or 0)
        self._tok_meta = {k: v for k, v in meta.items() if k.startswith("tokenizer.")}
        self._tokenizer = tokenizer
        if tokenizer is None and not self._tok_meta:
            self._tokenizer_error = f"{self.path}: the file has no tokenizer metadata (tokenizer.ggml.*)"
        else:
            self._tokenizer_error = None
        self.arch = cfg["arch"]
        self.n_vocab = cfg["n_vocab"]
        self.n_ctx = cfg["n_ctx"]
        self.n_ctx_train = cfg["n_ctx_train"]
        self.bos_id = meta.get("tokenizer.ggml.bos_token_id")
        self.eos_id = meta.get("tokenizer.ggml.eos_token_id")

    # --- tokenizer ---

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            if self._tokenizer_error:
                raise KQuantsError(self._tokenizer_error)
            from .tokenizer import Tokenizer
            self._tokenizer = Tokenizer.from_metadata(self._tok_meta, self.path)
        return self._tokenizer

    @property
    def add_bos(self) -> bool:
        """Whether llama.cpp prepends BOS to a prompt for this model."""
        tok = self.tokenizer
        return bool(getattr(tok, "add_bos", False)) and self.bos_id is not None

    def tokenize(self, text: str, add_bos: Optional[bool] = None) -> list[int]:
        """Token ids of text; add_bos None = the model's setting (tokenizer.ggml.add_bos_token)."""
        if add_bos is None:
            add_bos = self.add_bos
        return list(self.tokenizer.encode(text, add_bos=bool(add_bos)))

    def detokenize(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids])

    # --- evaluation ---

    def _ids(self, tokens: Sequence[int]) -> np.ndarray:
        ids = np.asarray(tokens)
        if ids.ndim != 1:
            raise KQuantsError(f"tokens must be a 1-D sequence of ids, got shape {ids.shape}")
        if ids.size == 0:
            raise KQuantsError("tokens is empty")
        if not np.issubdtype(ids.dtype, np.integer):
            raise KQuantsError(f"tokens must be integers, got dtype {ids.dtype}")
        bad = np.flatnonzero((ids < 0) | (ids >= self.n_vocab))
        if bad.size:
            i = int(bad[0])
            raise KQuantsError(f"token id {int(ids[i])} at index {i} is outside the vocabulary "
                               f"[0, {self.n_vocab})")
        return ids.astype(np.int32)

    def logits(self, tokens: Sequence[int]) -> np.ndarray:
        """Logits float32 [len(tokens), n_vocab] from an empty context (the whole
        sequence in one batched pass; the KV cache is reset first and holds
        the tokens afterwards)."""
        ids = self._ids(tokens)
        self._native.reset()
        return self._native.decode(ids, 0, self.threads)

    def eval(self, tokens: Sequence[int], all_logits: bool = False) -> np.ndarray:
        """Append tokens to the current context; logits of the last token
        ([n_vocab]) or of all new tokens ([n, n_vocab])."""
        ids = self._ids(tokens)
        out = self._native.decode(ids, 0 if all_logits else len(ids) - 1, self.threads)
        return out if all_logits else out[0]

    def reset(self) -> None:
        """Empty the KV cache."""
        self._native.reset()

    @property
    def n_past(self) -> int:
        """Tokens in the KV cache."""
        return self._native.n_past

    # --- generation ---

    def generate(self, prompt: Union[str, Sequence[int]], max_tokens: int = 128, temperature: float = 0.8,
                 top_k: int = 40, top_p: float = 0.95, seed: Optional[int] = None,
                 stream: bool = False) -> Union[str, Iterator[str]]:
        """Continue ``prompt`` (text, or token ids) from an empty context.

        Stops after max_tokens or at an end-of-generation token. Returns the
        generated text, or with ``stream=True`` an iterator of text pieces.
        temperature <= 0 is greedy decoding.
        """
        it = self._generate(prompt, max_tokens, temperature, top_k, top_p, seed)
        return it if stream else "".join(it)

    def _generate(self, prompt, max_tokens, temperature, top_k, top_p, seed) -> Iterator[str]:
        ids = self.tokenize(prompt) if isinstance(prompt, str) else [int(i) for i in prompt]
        if not ids:
            raise KQuantsError("generate: the prompt is empty (no tokens)")
        if len(ids) + max_tokens > self.n_ctx:
            raise KQuantsError(f"generate: prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) exceeds "
                               f"the context size n_ctx={self.n_ctx}")
        rng = np.random.default_rng(seed)
        tok = self.tokenizer
        eog = set(getattr(tok, "eog_ids", ()) or ()) | ({self.eos_id} if self.eos_id is not None else set())
        self.reset()
        logits = self.eval(ids)
        out: list[int] = []
        emitted = ""
        for _ in range(max_tokens):
            t = _sample(logits, temperature, top_k, top_p, rng)
            if t in eog:
                break
            out.append(t)
            text = self.detokenize(out)
            # Hold back an incomplete UTF-8 sequence (decoded as U+FFFD) until
            # the token that completes it arrives.
            if not text.endswith("\ufffd") and len(text) > len(emitted):
                yield text[len(emitted):]
                emitted = text
            logits = self.eval([t])
        text = self.detokenize(out)
        if len(text) > len(emitted):
            yield text[len(emitted):]

    def __repr__(self) -> str:
        c = self.config
        return (f"Model({self.path!r}, arch={c['arch']!r}, n_layer={c['n_layer']}, n_embd={c['n_embd']}, "
                f"n_vocab={c['n_vocab']}, n_ctx={c['n_ctx']})")
