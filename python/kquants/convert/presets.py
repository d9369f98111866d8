"""Quantization presets and llama.cpp's per-tensor type rules, as data.

A preset (``q4_k_m``...) names a llama.cpp file type (``LLAMA_FTYPE_*``, the
number stored in ``general.file_type``) and a default tensor type. The type of
each tensor then follows the rules of ``llama_tensor_get_type`` in llama.cpp's
``src/llama-quant.cpp`` (the copy vendored by llama-cpp-python 0.3.36):

1. only tensors that "allow quantization" change type (2-D and up, name ends
   in ``weight``, not a norm, not an excluded name: ``_NOT_QUANTIZED``);
2. user overrides (``--tensor-type PATTERN=TYPE``: first regex that matches
   anywhere in the name) replace the mix rules;
3. otherwise the mix rules: ``RULES[(category, preset)]`` is a list of
   ``(conditions, type)``; the first entry whose conditions all hold wins,
   no entry leaves the default type; then ``POST_RULES`` apply in order;
4. a type whose block does not divide the row length falls back
   (``FALLBACK``), and to F16 if even that does not fit.

Rules are only consulted when the preset's default type is quantized; the
float presets (f32/f16/bf16) give every quantizable tensor the default type.
Counters (which attn_v / ffn_down this is) advance in tensor order, which is
llama.cpp's order: non-layer tensors first, then by layer, by name within.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from .. import _core
from ..types import type_info


@dataclass(frozen=True)
class Preset:
    name: str        # our name, lower case
    ftype: int       # llama_ftype, written to general.file_type
    default: str     # default tensor type


# name, llama_ftype, default tensor type (llama_ftype_get_default_type)
PRESETS = {p.name: p for p in [
    Preset("f32",    0,  "F32"),
    Preset("f16",    1,  "F16"),
    Preset("q4_0",   2,  "Q4_0"),
    Preset("q4_1",   3,  "Q4_1"),
    Preset("q8_0",   7,  "Q8_0"),
    Preset("q5_0",   8,  "Q5_0"),
    Preset("q5_1",   9,  "Q5_1"),
    Preset("q2_k",   10, "Q2_K"),
    Preset("q3_k_s", 11, "Q3_K"),
    Preset("q3_k_m", 12, "Q3_K"),
    Preset("q3_k_l", 13, "Q3_K"),
    Preset("q4_k_s", 14, "Q4_K"),
    Preset("q4_k_m", 15, "Q4_K"),
    Preset("q5_k_s", 16, "Q5_K"),
    Preset("q5_k_m", 17, "Q5_K"),
    Preset("q6_k",   18, "Q6_K"),
    Preset("bf16",   32, "BF16"),
]}
# llama-quantize's aliases
ALIASES = {"q4_k": "q4_k_m", "q5_k": "q5_k_m", "q3_k": "q3_k_m"}


def get_preset(name) -> Preset:
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in PRESETS:
        raise _core.KQuantsError(
            f"unknown preset {name!r}; known presets: {', '.join(PRESETS)} (aliases: {', '.join(ALIASES)})")
    return PRESETS[key]


# ----------------------------------------------------------------- categories
# (category, how the name is matched, text) in llama.cpp's order of tests.
CATEGORIES = [
    ("output",     "equal",    "output.weight"),
    ("token_embd", "equal",    "token_embd.weight"),
    ("token_embd", "equal",    "per_layer_token_embd.weight"),
    ("attn_qkv",   "contains", "attn_qkv.weight"),
    ("attn_kv_b",  "contains", "attn_kv_b.weight"),
    ("attn_v",     "contains", "attn_v.weight"),
    ("attn_k",     "contains", "attn_k.weight"),
    ("attn_q",     "contains", "attn_q.weight"),
    ("attn_output", "contains", "attn_output.weight"),
    ("ffn_up",     "contains", "ffn_up"),
    ("ffn_gate",   "contains", "ffn_gate"),
    ("ffn_down",   "contains", "ffn_down"),
]
# attn_v-like tensors share the attn_v rules and counter (category_is_attn_v)
ATTN_V_LIKE = {"attn_v", "attn_qkv", "attn_kv_b"}


def tensor_category(name: str) -> str:
    for cat, how, text in CATEGORIES:
        if (name == text) if how == "equal" else (text in name):
            return cat
    return "other"


# Substrings that keep a tensor at its type (tensor_allows_quantization).
_NOT_QUANTIZED = (
    "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
    "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
    "indexer.q_proj.weight", "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight",
    "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
    "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
    "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.",
    "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
)
# Whole names kept (positional embeddings and token types of BERT-like models).
_NOT_QUANTIZED_NAMES = ("position_embd.weight", "token_types.weight")


def n_dims(ne) -> int:
    """ggml_n_dims: trailing dimensions of size 1 do not count."""
    n = 1
    for i, d in enumerate(ne):
        if d != 1:
            n = i + 1
    return n


def allows_quantization(name: str, ne, quantize_output: bool = True) -> bool:
    if n_dims(ne) < 2 or not name.endswith("weight"):
        return False
    if not quantize_output and name == "output.weight":
        return False
    if name in _NOT_QUANTIZED_NAMES:
        return False
    return not any(s in name for s in _NOT_QUANTIZED)


# ----------------------------------------------------------------- the rules

@dataclass
class ModelInfo:
    """What the rules need to know about the model (llama hparams)."""
    arch: str = "llama"
    n_layer: int = 0
    n_head: int = 0
    n_head_kv: int = 0
    n_expert: int = 0

    @property
    def n_gqa(self) -> int:
        return self.n_head // self.n_head_kv if self.n_head_kv else 0

    @property
    def is_70b(self) -> bool:
        # llama.cpp's LLM_TYPE_70B: an 80-layer llama with grouped-query attention
        return self.arch == "llama" and self.n_layer == 80 and self.n_head != self.n_head_kv


def use_more_bits(i: int, n: int) -> bool:
    """The first and last eighth of the layers, and every third one between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


# Conditions, evaluated on a context: i = index of this tensor among its kind
# (attn_v counter, or layer for ffn_down), n = count of that kind.
CONDITIONS: dict[str, Callable] = {
    "gqa>=4":      lambda c: c.model.n_gqa >= 4,
    "first2":      lambda c: c.i < 2,
    "first4":      lambda c: c.i < 4,
    "i<n/8":       lambda c: c.i < c.n // 8,
    "i<n/16":      lambda c: c.i < c.n // 16,
    "more_bits":   lambda c: use_more_bits(c.i, c.n),
    "falcon":      lambda c: c.model.arch == "falcon",
    "not_falcon":  lambda c: c.model.arch != "falcon",
    "imatrix":     lambda c: c.has_imatrix,
    "experts8":    lambda c: c.model.n_expert == 8,
    "not_experts8": lambda c: c.model.n_expert != 8,
    "70b":         lambda c: c.model.is_70b,
    "type_q3k_q4k": lambda c: c.type in ("Q3_K", "Q4_K"),
}

_K_MIX_E8 = ("q2_k", "q3_k_s", "q3_k_m", "q4_k_s", "q4_k_m")

# (category, preset) -> [(conditions, type)]: first match wins.
RULES: dict[tuple, list] = {
    ("attn_v", "q2_k"):   [(("gqa>=4",), "Q4_K"), ((), "Q3_K")],
    ("attn_v", "q3_k_m"): [(("first2",), "Q5_K"), ((), "Q4_K")],
    ("attn_v", "q3_k_l"): [((), "Q5_K")],
    ("attn_v", "q4_k_m"): [(("more_bits",), "Q6_K")],
    ("attn_v", "q5_k_m"): [(("more_bits",), "Q6_K")],
    ("attn_v", "q4_k_s"): [(("first4",), "Q5_K")],

    ("ffn_down", "q2_k"):   [((), "Q3_K")],
    ("ffn_down", "q3_k_m"): [(("i<n/16",), "Q5_K"), (("not_falcon",), "Q4_K"), (("more_bits",), "Q4_K"),
                             ((), "Q3_K")],
    ("ffn_down", "q3_k_l"): [(("falcon",), "Q4_K"), ((), "Q5_K")],
    ("ffn_down", "q4_k_m"): [(("falcon", "i<n/16"), "Q6_K"), (("falcon", "more_bits"), "Q5_K"),
                             (("falcon",), "Q4_K"), (("more_bits",), "Q6_K")],
    ("ffn_down", "q5_k_m"): [(("more_bits",), "Q6_K")],
    ("ffn_down", "q4_k_s"): [(("not_falcon", "i<n/8"), "Q5_K")],
    ("ffn_down", "q4_0"):   [(("imatrix", "i<n/8"), "Q4_1")],
    ("ffn_down", "q5_0"):   [(("imatrix", "i<n/8"), "Q5_1")],

    **{("attn_output", p): [(("not_falcon", "experts8"), "Q5_K")] for p in _K_MIX_E8},
    ("attn_output", "q2_k"):   [(("not_falcon", "experts8"), "Q5_K"), (("not_falcon",), "Q3_K")],
    ("attn_output", "q3_k_m"): [(("not_falcon", "experts8"), "Q5_K"), (("not_falcon",), "Q4_K")],
    ("attn_output", "q3_k_l"): [(("not_falcon", "not_experts8"), "Q5_K"), (("falcon",), "Q4_K")],

    # (llama.cpp also lists attn_qkv rules, but attn_qkv is attn_v-like and its
    # attn_v branch comes first, so they never apply; attn_qkv uses "attn_v".)
}
# Applied after RULES for a category, in order (any preset).
POST_RULES: dict[str, list] = {
    "attn_v": [(("70b", "type_q3k_q4k"), "Q5_K"), (("experts8",), "Q8_0")],
    "attn_k": [(("experts8",), "Q8_0")],
}
# Block-size fallback when the row length is not a multiple of the block.
FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}


@dataclass
class _Ctx:
    model: ModelInfo
    has_imatrix: bool
    i: int = 0
    n: int = 0
    type: str = ""


def _apply(rules, ctx) -> Optional[str]:
    for conds, t in rules:
        if all(CONDITIONS[c](ctx) for c in conds):
            return t
    return None


@dataclass
class Override:
    pattern: str
    type: str
    regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self):
        try:
            self.regex = re.compile(self.pattern)
        except re.error as e:
            raise _core.KQuantsError(f"override pattern {self.pattern!r} is not a valid regex: {e}") from None
        self.type = type_info(self.type).name


def parse_overrides(overrides) -> list:
    """``{"attn_v": "q8_0"}``, ``["attn_v=q8_0", ...]`` or ``[(pattern, type)]`` -> [Override].
    Patterns are lower-cased, as llama-quantize does."""
    if not overrides:
        return []
    items = overrides.items() if isinstance(overrides, dict) else overrides
    out = []
    for it in items:
        if isinstance(it, str):
            if "=" not in it:
                raise _core.KQuantsError(f"override {it!r} must be PATTERN=TYPE, e.g. attn_v=q8_0")
            pat, typ = it.split("=", 1)
        else:
            pat, typ = it
        if not pat or not typ:
            raise _core.KQuantsError(f"override {it!r} must be PATTERN=TYPE with both parts")
        out.append(Override(pat.lower(), typ))
    return out


class TypePlanner:
    """Chooses each tensor's type; call ``plan`` once with every tensor."""

    def __init__(self, preset: Preset, model: ModelInfo, *, has_imatrix: bool = False,
                 overrides=None, pure: bool = False, quantize_output: bool = True,
                 output_type: Optional[str] = None, token_embedding_type: Optional[str] = None):
        self.preset = preset
        self.model = model
        self.has_imatrix = has_imatrix
        self.overrides = parse_overrides(overrides)
        self.pure = pure
        self.quantize_output = quantize_output
        self.output_type = type_info(output_type).name if output_type else None
        self.token_embedding_type = type_info(token_embedding_type).name if token_embedding_type else None
        self.fallbacks: list = []

    def plan(self, tensors) -> list:
        """tensors: [(name, ne, current type name)] in llama.cpp order -> [type name]."""
        cats = [tensor_category(n) for n, _, _ in tensors]
        self.tied = "output" not in cats
        self.counts = {"attn_v": sum(c in ATTN_V_LIKE for c in cats)}
        self.index = {"attn_v": 0, "ffn_down": 0, "ffn_gate": 0, "ffn_up": 0}
        return [self._one(n, tuple(ne), cur, cat) for (n, ne, cur), cat in zip(tensors, cats)]

    def _one(self, name, ne, cur, cat) -> str:
        if not allows_quantization(name, ne, self.quantize_output):
            return cur
        if self.token_embedding_type and cat == "token_embd":
            named = name == "per_layer_token_embd.weight" and any(o.regex.search(name) for o in self.overrides)
            if not named:
                return self.token_embedding_type
        if self.output_type and cat == "output":
            return self.output_type
        new = self.preset.default
        if not type_info(new).is_quantized:
            return new
        manual = False
        for o in self.overrides:
            if o.regex.search(name):
                new, manual = o.type, True
                break
        if not manual and not self.pure:
            new = self._mix(name, ne, new, cat)
        return self._fallback(name, ne, new)

    def _mix(self, name, ne, new, cat) -> str:
        p = self.preset.name
        if cat == "output" or (self.tied and cat == "token_embd"):
            if self.output_type:
                return self.output_type
            if self.model.arch == "falcon" or ne[0] % type_info(new).block_size:
                return "Q8_0"
            return new if new == "Q8_0" else "Q6_K"
        if cat == "token_embd":
            return new
        key = "attn_v" if cat in ATTN_V_LIKE else cat
        ctx = _Ctx(self.model, self.has_imatrix, type=new)
        if key == "attn_v":
            ctx.i, ctx.n = self.index["attn_v"], self.counts["attn_v"]
        elif key in ("ffn_down", "ffn_gate", "ffn_up"):
            ctx.i, ctx.n = self._layer(name, key)
        t = _apply(RULES.get((key, p), []), ctx)
        if t is not None:
            new = t
        ctx.type = new
        t = _apply(POST_RULES.get(key, []), ctx)
        if t is not None:
            new = t
        if key in self.index:
            self.index[key] += 1
        return new

    def _layer(self, name, key):
        n = self.model.n_layer
        if max(1, self.model.n_expert) > 1:
            m = re.match(r"blk\.(\d+)\.", name)
            if not m:
                raise _core.KQuantsError(f"failed to determine the layer of tensor {name!r}")
            i = int(m.group(1))
            if not 0 <= i < n:
                raise _core.KQuantsError(f"bad layer {i} for tensor {name!r}; the model has {n} layers")
            return i, n
        return self.index[key], n

    def _fallback(self, name, ne, new) -> str:
        bs = type_info(new).block_size
        if ne[0] % bs == 0:
            return new
        if new in FALLBACK:
            ret = FALLBACK[new]
        elif bs <= 32:
            ret = new
        else:
            raise _core.KQuantsError(f"tensor {name!r}: no fallback type is defined for {new}")
        if ne[0] % type_info(ret).block_size:
            ret = "F16"
        self.fallbacks.append((name, new, ret))
        return ret


def llama_order_key(name: str):
    """llama.cpp's weight order (llama_model_loader::weight_name_comparer):
    by layer number (non-layer tensors first), then by name."""
    m = re.match(r"blk\.(-?\d+)\.", name)
    return (int(m.group(1)) if m else -1, name)
