"""GGUF -> Hugging Face folder: the inverse of the converter.

Writes ``model.safetensors`` (every tensor dequantized, F32 by default), with
llama's Q/K row permutation undone and GGUF names mapped back (``HF_NAMES``,
data), plus ``config.json`` from the hyperparameter keys and the tokenizer
(``tokenizer.json`` + ``tokenizer_config.json`` for byte-level BPE; a
WordPiece ``vocab.txt`` for BERT). A SentencePiece vocabulary cannot be
rebuilt as ``tokenizer.model`` from GGUF; it is reported and skipped.
Converting the folder back gives the dequantized tensors exactly (F32).
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

from .. import _core
from .arch import permute_rows
from .hf import save_safetensors
from .source import gguf_source, to_float32

log = logging.getLogger("kquants.convert")

_LLAMA_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
    "blk.{i}.attn_norm.weight": "model.layers.{i}.input_layernorm.weight",
    "blk.{i}.ffn_norm.weight": "model.layers.{i}.post_attention_layernorm.weight",
    "blk.{i}.attn_q.weight": "model.layers.{i}.self_attn.q_proj.weight",
    "blk.{i}.attn_k.weight": "model.layers.{i}.self_attn.k_proj.weight",
    "blk.{i}.attn_v.weight": "model.layers.{i}.self_attn.v_proj.weight",
    "blk.{i}.attn_q.bias": "model.layers.{i}.self_attn.q_proj.bias",
    "blk.{i}.attn_k.bias": "model.layers.{i}.self_attn.k_proj.bias",
    "blk.{i}.attn_v.bias": "model.layers.{i}.self_attn.v_proj.bias",
    "blk.{i}.attn_output.weight": "model.layers.{i}.self_attn.o_proj.weight",
    "blk.{i}.ffn_gate.weight": "model.layers.{i}.mlp.gate_proj.weight",
    "blk.{i}.ffn_up.weight": "model.layers.{i}.mlp.up_proj.weight",
    "blk.{i}.ffn_down.weight": "model.layers.{i}.mlp.down_proj.weight",
}
_BERT_NAMES = {
    "token_embd.weight": "embeddings.word_embeddings.weight",
    "position_embd.weight": "embeddings.position_embeddings.weight",
    "token_types.weight": "embeddings.token_type_embeddings.weight",
    "token_embd_norm.{w}": "embeddings.LayerNorm.{w}",
    "blk.{i}.attn_q.{w}": "encoder.layer.{i}.attention.self.query.{w}",
    "blk.{i}.attn_k.{w}": "encoder.layer.{i}.attention.self.key.{w}",
    "blk.{i}.attn_v.{w}": "encoder.layer.{i}.attention.self.value.{w}",
    "blk.{i}.attn_output.{w}": "encoder.layer.{i}.attention.output.dense.{w}",
    "blk.{i}.attn_output_norm.{w}": "encoder.layer.{i}.attention.output.LayerNorm.{w}",
    "blk.{i}.ffn_up.{w}": "encoder.layer.{i}.intermediate.dense.{w}",
    "blk.{i}.ffn_down.{w}": "encoder.layer.{i}.output.dense.{w}",
    "blk.{i}.layer_output_norm.{w}": "encoder.layer.{i}.output.LayerNorm.{w}",
}
# GGUF arch -> (HF architecture, model_type, name table, permute q/k)
ARCHS = {
    "llama": ("LlamaForCausalLM", "llama", _LLAMA_NAMES, True),
    "qwen2": ("Qwen2ForCausalLM", "qwen2", _LLAMA_NAMES, False),
    "bert": ("BertModel", "bert", _BERT_NAMES, False),
}
# config.json key <- GGUF key suffix (after "<arch>.")
CONFIG_KEYS = [
    ("hidden_size", "embedding_length"), ("intermediate_size", "feed_forward_length"),
    ("num_attention_heads", "attention.head_count"), ("num_key_value_heads", "attention.head_count_kv"),
    ("num_hidden_layers", "block_count"), ("max_position_embeddings", "context_length"),
    ("rms_norm_eps", "attention.layer_norm_rms_epsilon"), ("layer_norm_eps", "attention.layer_norm_epsilon"),
    ("rope_theta", "rope.freq_base"), ("head_dim", "attention.key_length"),
]
_DTYPES = {"f32": np.float32, "f16": np.float16}


def _hf_name(table: dict, name: str):
    for pat, hf in table.items():
        rx = "^" + re.escape(pat).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{w\}", r"(?P<w>weight|bias)") + "$"
        m = re.match(rx, name)
        if m:
            return hf.format(**m.groupdict())
    return None


def _f32_round(x):
    return float(np.float32(x)) if isinstance(x, float) else x


def export_hf(src, out_dir, *, dtype: str = "f32", threads=None, quiet: bool = False) -> Path:
    """Writes a Hugging Face folder (weights, config, tokenizer) for a GGUF model."""
    from tqdm import tqdm
    src = Path(src)
    out = Path(out_dir)
    if dtype not in _DTYPES:
        raise _core.KQuantsError(f"export_hf: dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    s = gguf_source(src)
    arch = s.arch
    if arch not in ARCHS:
        raise _core.KQuantsError(f"{src}: cannot export architecture {arch!r}; supported: {', '.join(ARCHS)}")
    hf_arch, model_type, table, permute = ARCHS[arch]
    kv = lambda k, d=None: s.kv(f"{arch}.{k}", d)  # noqa: E731
    first = lambda v: int(np.atleast_1d(v)[0]) if v is not None else None  # noqa: E731
    n_head, n_kv = first(kv("attention.head_count")), first(kv("attention.head_count_kv", kv("attention.head_count")))
    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for t in tqdm(s.tensors, desc="export", unit="tensor", disable=quiet):
        hf = _hf_name(table, t.name)
        if hf is None:
            if t.name == "rope_freqs.weight":
                continue
            raise _core.KQuantsError(f"{src}: no Hugging Face name for tensor {t.name!r} of a {arch} model")
        x = to_float32(t.load(), t.type, t.ne, threads)
        shape = tuple(reversed(t.ne))
        x = x.reshape(shape)
        if permute and t.name.endswith(("attn_q.weight", "attn_k.weight")):
            heads = n_head if "attn_q" in t.name else n_kv
            x = x[np.argsort(permute_rows(shape[0], heads))]
        tensors[hf] = np.ascontiguousarray(x.astype(_DTYPES[dtype]))
    save_safetensors(out / "model.safetensors", tensors, {"format": "pt"})

    cfg = {"architectures": [hf_arch], "model_type": model_type}
    for ck, gk in CONFIG_KEYS:
        v = kv(gk)
        if v is not None:
            cfg[ck] = _f32_round(first(v) if isinstance(v, (list, np.ndarray)) else v)
    tokens = s.kv("tokenizer.ggml.tokens", [])
    cfg["vocab_size"] = int(kv("vocab_size", len(tokens)) or len(tokens))
    if arch != "bert":
        cfg["tie_word_embeddings"] = "lm_head.weight" not in tensors
        cfg["hidden_act"] = "silu"
    if arch == "bert":
        cfg["type_vocab_size"] = int(s.kv("tokenizer.ggml.token_type_count", 2) or 2)
    for ck, gk in (("bos_token_id", "tokenizer.ggml.bos_token_id"), ("eos_token_id", "tokenizer.ggml.eos_token_id"),
                   ("pad_token_id", "tokenizer.ggml.padding_token_id")):
        if s.kv(gk) is not None:
            cfg[ck] = int(s.kv(gk))
    cfg["torch_dtype"] = {"f32": "float32", "f16": "float16"}[dtype]
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    _export_tokenizer(s, out, arch)
    return out


def _export_tokenizer(s, out: Path, arch: str) -> None:
    from .vocab import pre_tokenizer_for
    model = s.kv("tokenizer.ggml.model")
    tokens = list(s.kv("tokenizer.ggml.tokens", []))
    tt = s.kv("tokenizer.ggml.token_type")
    types = list(tt) if tt is not None else [1] * len(tokens)
    specials = {k: s.kv(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "unknown", "padding")}
    name_of = {k: tokens[v] for k, v in specials.items() if v is not None and 0 <= v < len(tokens)}
    tcfg = {}
    for key, gk in (("bos_token", "bos"), ("eos_token", "eos"), ("unk_token", "unknown"), ("pad_token", "padding")):
        if gk in name_of:
            tcfg[key] = name_of[gk]
    for key in ("add_bos_token", "add_eos_token"):
        if s.kv(f"tokenizer.ggml.{key}") is not None:
            tcfg[key] = bool(s.kv(f"tokenizer.ggml.{key}"))
    if s.kv("tokenizer.ggml.add_space_prefix") is not None:
        tcfg["add_prefix_space"] = bool(s.kv("tokenizer.ggml.add_space_prefix"))
    if s.kv("tokenizer.chat_template") is not None:
        tcfg["chat_template"] = s.kv("tokenizer.chat_template")
    if model == "gpt2":
        pre, norm = pre_tokenizer_for(s.kv("tokenizer.ggml.pre", "default"))
        added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": int(ty) != 3, "special": int(ty) == 3}
                 for i, (t, ty) in enumerate(zip(tokens, types)) if int(ty) in (3, 4)]
        merges = list(s.kv("tokenizer.ggml.merges", []))
        tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": norm,
              "pre_tokenizer": pre, "post_processor": None,
              "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
              "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                        "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                        "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges}}
        (out / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False))
        tcfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    elif model == "bert":
        words = [t if int(ty) == 3 else (t[1:] if t.startswith("\u2581") else "##" + t) for t, ty in zip(tokens, types)]
        (out / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
        tcfg.update({"tokenizer_class": "BertTokenizer", "do_lower_case": True})
        if "[CLS]" in words:
            tcfg["cls_token"] = "[CLS]"
        if "[SEP]" in words:
            tcfg["sep_token"] = "[SEP]"
        if "[MASK]" in words:
            tcfg["mask_token"] = "[MASK]"
    else:
        log.warning("%s: tokenizer model %r cannot be exported (only gpt2 BPE and bert WordPiece); "
                    "copy tokenizer.model from the original checkpoint", s.path, model)
    (out / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2, ensure_ascii=False))
