"""Architecture registry: Hugging Face architecture -> GGUF, as data.

Each ``ArchSpec`` row says which GGUF architecture a HF ``architectures[0]``
becomes, how its tensor names are cleaned before gguf-py's ``TensorNameMap``
maps them, whether Q/K rows are permuted (llama), which vocabulary reader
applies and which extra hyperparameters llama.cpp's converter writes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import gguf
import numpy as np

from .. import _core


@dataclass(frozen=True)
class ArchSpec:
    gguf_arch: gguf.MODEL_ARCH
    vocab: str                       # key of vocab.VOCAB_KINDS
    permute_qk: bool = False         # llama: undo HF's rotary permutation of q/k rows
    name_prefix: str = ""            # prepended to every HF name (LlamaModel/Qwen2Model bare checkpoints)
    strip_prefixes: tuple = ()       # removed from the start of names
    renames: tuple = ()              # (suffix, replacement)
    skip: tuple = ()                 # names dropped
    skip_prefixes: tuple = ()
    llama_params: bool = False       # vocab_size + rope dimension count
    bert_params: bool = False        # non-causal
    pooling: bool = False            # sentence-transformers pooling type from modules.json
    rope_freqs: bool = False         # llama3 rope scaling -> rope_freqs tensor


_LLAMA = ArchSpec(gguf.MODEL_ARCH.LLAMA, "llama", permute_qk=True, llama_params=True, rope_freqs=True)
_QWEN2 = ArchSpec(gguf.MODEL_ARCH.QWEN2, "bpe", pooling=True)
_BERT = ArchSpec(gguf.MODEL_ARCH.BERT, "wordpiece", strip_prefixes=("bert.",),
                 renames=((".gamma", ".weight"), (".beta", ".bias")),
                 skip=("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"),
                 skip_prefixes=("cls.predictions", "cls.seq_relationship"),
                 bert_params=True, pooling=True)

ARCHITECTURES = {
    "LlamaForCausalLM": _LLAMA,
    "LLaMAForCausalLM": _LLAMA,
    "MistralForCausalLM": _LLAMA,
    "LlamaModel": ArchSpec(**{**_LLAMA.__dict__, "name_prefix": "model."}),
    "Qwen2ForCausalLM": _QWEN2,
    "Qwen2Model": ArchSpec(**{**_QWEN2.__dict__, "name_prefix": "model."}),
    "BertModel": _BERT,
    "BertForMaskedLM": _BERT,
}

# Names llama.cpp's converter drops everywhere.
DROP_SUFFIXES = (".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq")

# GGUF tensors kept in F32 whatever the output type (besides 1-D tensors and norms).
F32_TENSORS = (gguf.MODEL_TENSOR.POS_EMBD, gguf.MODEL_TENSOR.TOKEN_TYPES, gguf.MODEL_TENSOR.FFN_GATE_INP)


def get_arch(cfg: dict, where: str = "config.json") -> tuple[str, ArchSpec]:
    archs = cfg.get("architectures") or []
    name = archs[0] if archs else None
    if name not in ARCHITECTURES:
        raise _core.KQuantsError(
            f"{where}: unsupported architecture {name!r}; supported: {', '.join(sorted(ARCHITECTURES))}")
    return name, ARCHITECTURES[name]


def find(cfg: dict, keys, default=None):
    for k in keys:
        if k in cfg:
            return cfg[k]
    return default


N_LAYER_KEYS = ("n_layers", "num_hidden_layers", "n_layer", "num_layers")

# (HF keys, GGUFWriter method), written in this order when present (TextModel.set_gguf_parameters).
HPARAMS = [
    (("max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length",
      "model_max_length"), "add_context_length"),
    (("hidden_size", "n_embd", "dim"), "add_embedding_length"),
    (("prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner",
      "hidden_dim"), "add_feed_forward_length"),
    (("num_attention_heads", "n_head", "n_heads"), "add_head_count"),
    (("num_key_value_heads", "n_kv_heads"), "add_head_count_kv"),
]
EPS_PARAMS = [
    (("rms_norm_eps", "norm_eps"), "add_layer_norm_rms_eps"),
    (("layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"), "add_layer_norm_eps"),
    (("num_local_experts", "num_experts", "n_routed_experts"), "add_expert_count"),
    (("num_experts_per_tok", "num_experts_per_token", "top_k_experts"), "add_expert_used_count"),
]


def rope_parameters(cfg: dict) -> dict:
    rp = dict(cfg.get("rope_parameters", cfg.get("rope_scaling")) or {})
    theta = find(cfg, ("global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta",
                       "rotary_emb_base"))
    if "full_attention" not in rp and "sliding_attention" not in rp:
        if "rope_theta" not in rp and theta is not None:
            rp["rope_theta"] = theta
        if "rope_type" not in rp and rp.get("type") is not None:
            rp["rope_type"] = rp["type"]
        orig = cfg.get("original_max_position_embeddings")
        if "original_max_position_embeddings" not in rp and orig is not None:
            rp["original_max_position_embeddings"] = orig
    return rp


# rope_type -> how it is written (the rest are ignored, as llama.cpp does)
def _rope_linear(w, rp):
    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    w.add_rope_scaling_factor(rp["factor"])


def _rope_yarn(w, rp):
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(rp["factor"])
    w.add_rope_scaling_orig_ctx_len(rp["original_max_position_embeddings"])
    for key, meth in (("extrapolation_factor", "add_rope_scaling_yarn_ext_factor"),
                      ("attention_factor", "add_rope_scaling_yarn_attn_factor"),
                      ("beta_fast", "add_rope_scaling_yarn_beta_fast"),
                      ("beta_slow", "add_rope_scaling_yarn_beta_slow")):
        v = rp.get(key, rp.get("attn_factor") if key == "attention_factor" else None)
        if v is not None:
            getattr(w, meth)(v)


ROPE_TYPES = {
    "linear": (True, _rope_linear),
    "yarn": (True, _rope_yarn),
    "su": (False, lambda w, rp: w.add_rope_scaling_type(gguf.RopeScalingType.LONGROPE)),
    "longrope": (False, lambda w, rp: w.add_rope_scaling_type(gguf.RopeScalingType.LONGROPE)),
}


def pooling_type(model_dir) -> Optional[int]:
    """sentence-transformers pooling from modules.json + <path>/config.json."""
    import json
    p = model_dir / "modules.json"
    if not p.is_file():
        return None
    path = next((m["path"] for m in json.loads(p.read_text()) if m.get("type", "").endswith("Pooling")), None)
    if path is None:
        return None
    cfg = json.loads((model_dir / path / "config.json").read_text())
    for key, t in (("pooling_mode_mean_tokens", gguf.PoolingType.MEAN), ("pooling_mode_cls_token", gguf.PoolingType.CLS),
                   ("pooling_mode_lasttoken", gguf.PoolingType.LAST)):
        if cfg.get(key):
            return t
    modes = {"mean": gguf.PoolingType.MEAN, "cls": gguf.PoolingType.CLS, "lasttoken": gguf.PoolingType.LAST}
    if cfg.get("pooling_mode") in modes:
        return modes[cfg["pooling_mode"]]
    raise _core.KQuantsError(f"{model_dir / path / 'config.json'}: only MEAN, CLS and LAST pooling are supported")


def set_hparams(w: gguf.GGUFWriter, spec: ArchSpec, cfg: dict, model_dir, file_type: int) -> None:
    """The hyperparameter keys of llama.cpp's converter, in its order."""
    w.add_block_count(find(cfg, N_LAYER_KEYS))
    for keys, meth in HPARAMS:
        v = find(cfg, keys)
        if v is not None:
            getattr(w, meth)(v)
    if cfg.get("is_causal") is False:
        w.add_causal_attention(False)
    rp = rope_parameters(cfg)
    rp_full = rp.get("full_attention", rp)
    rt = rp_full.get("rope_type")
    if rt is not None and rt in ROPE_TYPES:
        needs_factor, fn = ROPE_TYPES[rt]
        if not needs_factor or rp_full.get("factor") is not None:
            fn(w, rp_full)
    if rp_full.get("rope_theta") is not None:
        w.add_rope_freq_base(rp_full["rope_theta"])
    for keys, meth in EPS_PARAMS:
        v = find(cfg, keys)
        if v is not None:
            getattr(w, meth)(v)
    if cfg.get("head_dim") is not None:
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
    w.add_file_type(file_type)
    if spec.llama_params:
        w.add_vocab_size(cfg["vocab_size"])
        w.add_rope_dimension_count(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])
    if spec.bert_params:
        w.add_causal_attention(False)
    if spec.pooling:
        pt = pooling_type(model_dir)
        if pt is not None:
            w.add_pooling_type(pt)


def llama3_rope_freqs(cfg: dict) -> Optional[np.ndarray]:
    """Llama 3.1 rope scaling factors (the rope_freqs tensor), or None."""
    rp = rope_parameters(cfg)
    rp = rp.get("full_attention", rp)
    if str(rp.get("rope_type", "")).lower() != "llama3":
        return None
    base = rp.get("rope_theta", 10000.0)
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor = rp.get("factor", 8.0)
    lo, hi = rp.get("low_freq_factor", 1.0), rp.get("high_freq_factor", 4.0)
    old = rp.get("original_max_position_embeddings", 8192)
    lo_wl, hi_wl = old / lo, old / hi
    out = []
    for f in freqs:
        wl = 2 * math.pi / f
        if wl < hi_wl:
            out.append(1)
        elif wl > lo_wl:
            out.append(factor)
        else:
            s = (old / wl - lo) / (hi - lo)
            out.append(1 / ((1 - s) / factor + s))
    return np.array(out, dtype=np.float32)


def permute_rows(n_rows: int, n_head: int) -> np.ndarray:
    """Row order of llama.cpp's LlamaModel.permute: out[i] = w[idx[i]].
    Rows form n_head groups of [2, half]; each group becomes [half, 2] (the two
    rotary halves interleaved)."""
    half = n_rows // n_head // 2
    return np.arange(n_rows).reshape(n_head, 2, half).swapaxes(1, 2).reshape(-1)


@dataclass
class NameMapper:
    spec: ArchSpec
    n_layer: int
    tmap: gguf.TensorNameMap = field(init=False)

    def __post_init__(self):
        self.tmap = gguf.get_tensor_name_map(self.spec.gguf_arch, self.n_layer)

    def clean(self, name: str) -> Optional[str]:
        """HF name after the architecture's filters; None = dropped."""
        if name.endswith(DROP_SUFFIXES):
            return None
        for p in self.spec.strip_prefixes:
            if name.startswith(p):
                name = name[len(p):]
        for suf, rep in self.spec.renames:
            if name.endswith(suf):
                name = name[:-len(suf)] + rep
        if name in self.spec.skip or name.startswith(self.spec.skip_prefixes or ("\0",)):
            return None
        name = name.replace("language_model.", "")
        return self.spec.name_prefix + name

    def gguf_name(self, name: str, where: str) -> str:
        new = self.tmap.get_name(key=name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise _core.KQuantsError(f"{where}: cannot map tensor {name!r} to a GGUF name "
                                     f"(unexpected for {self.spec.gguf_arch.name}, or a layer index >= {self.n_layer})")
        return new

    def is_f32_tensor(self, new_name: str) -> bool:
        arch = self.spec.gguf_arch
        for key in F32_TENSORS:
            if key in gguf.MODEL_TENSORS[arch]:
                base = gguf.TENSOR_NAMES[key]
                if "{bid}" in base:
                    if any(new_name == base.format(bid=b) + ".weight" for b in range(self.n_layer)):
                        return True
                elif new_name == base + ".weight":
                    return True
        return False


def expected_shapes(cfg: dict) -> dict:
    """GGUF base name (no blk.N. prefix) -> expected PyTorch shape, from config.json."""
    h = cfg.get("hidden_size")
    nh = cfg.get("num_attention_heads")
    if not h or not nh:
        return {}
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or h // nh
    ff = cfg.get("intermediate_size")
    v = cfg.get("vocab_size")
    out = {"attn_q.weight": (nh * hd, h), "attn_k.weight": (nkv * hd, h), "attn_v.weight": (nkv * hd, h),
           "attn_output.weight": (h, nh * hd), "attn_norm.weight": (h,), "ffn_norm.weight": (h,),
           "output_norm.weight": (h,)}
    if ff:
        out.update({"ffn_gate.weight": (ff, h), "ffn_up.weight": (ff, h), "ffn_down.weight": (h, ff)})
    if v:
        out.update({"token_embd.weight": (v, h), "output.weight": (v, h)})
    return out
