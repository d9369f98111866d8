"""Merging a PEFT LoRA adapter into the weights before quantization.

An adapter folder holds ``adapter_config.json`` (``r``, ``lora_alpha``,
``target_modules``, optional ``use_rslora``) and ``adapter_model.safetensors``
with, for each adapted module M (e.g. ``base_model.model.model.layers.0.
self_attn.q_proj``), ``M.lora_A.weight`` [r, in] and ``M.lora_B.weight``
[out, r]. The merged weight is ``W + s * B @ A`` with
``s = lora_alpha / r * lora_scale`` (``lora_alpha / sqrt(r)`` with rsLoRA),
computed in float32 and stored back in the tensor's own type. For llama the
q/k rows of the GGUF tensor are permuted (see ``arch.permute_rows``), so the
delta is permuted the same way.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import gguf
import numpy as np

from .. import _core
from ..quant import quantize_array
from . import arch as archmod
from .hf import load_checkpoint
from .source import ModelSource, to_float32

_PREFIXES = ("base_model.model.", "base_model.")


def read_adapter(lora_dir):
    """-> (config, {module name: (A float32 [r, in], B float32 [out, r])})."""
    d = Path(lora_dir)
    cfg_path = d / "adapter_config.json"
    if not cfg_path.is_file():
        raise _core.KQuantsIOError(f"{cfg_path}: missing adapter_config.json in the LoRA folder")
    cfg = json.loads(cfg_path.read_text())
    for k in ("r", "lora_alpha"):
        if k not in cfg:
            raise _core.KQuantsError(f"{cfg_path}: missing {k!r}")
    files = sorted(d.glob("adapter_model*.safetensors"))
    if not files and not (d / "adapter_model.bin").is_file():
        raise _core.KQuantsIOError(f"{d}: no adapter_model.safetensors")
    if files:
        from .hf import read_safetensors
        tensors = {}
        for f in files:
            tensors.update(read_safetensors(f))
    else:
        tensors = load_checkpoint(d)  # torch .bin through the checkpoint reader
    targets = cfg.get("target_modules")
    pairs = {}
    for name, t in tensors.items():
        m = re.match(r"(.*)\.lora_A(?:\.default)?\.weight$", name)
        if not m:
            continue
        mod = m.group(1)
        bname = next((n for n in (f"{mod}.lora_B.weight", f"{mod}.lora_B.default.weight") if n in tensors), None)
        if bname is None:
            raise _core.KQuantsError(f"{d}: {name!r} has no matching lora_B tensor")
        short = mod.rsplit(".", 1)[-1]
        if isinstance(targets, list) and short not in targets:
            continue
        if isinstance(targets, str) and not re.fullmatch(targets, mod) and short != targets:
            continue
        a, b = t.float32(), tensors[bname].float32()
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise _core.KQuantsError(f"{d}: LoRA pair {mod!r} has shapes A {list(a.shape)}, B {list(b.shape)}")
        for p in _PREFIXES:
            if mod.startswith(p):
                mod = mod[len(p):]
                break
        pairs[mod + ".weight"] = (np.array(a), np.array(b))
    if not pairs:
        raise _core.KQuantsError(f"{d}: the adapter has no lora_A/lora_B pairs for its target_modules")
    return cfg, pairs


def lora_scale_of(cfg: dict, lora_scale: float = 1.0) -> float:
    r, alpha = float(cfg["r"]), float(cfg["lora_alpha"])
    return (alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r) * float(lora_scale)


def _encode(x: np.ndarray, type_name: str):
    if type_name == "F32":
        return x
    if type_name == "F16":
        return x.astype(np.float16)
    return quantize_array(x, type_name)


def apply_lora(src: ModelSource, lora_dir, lora_scale: float = 1.0) -> ModelSource:
    cfg, pairs = read_adapter(lora_dir)
    s = lora_scale_of(cfg, lora_scale)
    by_hf = {t.hf_name: t for t in src.tensors if t.hf_name}
    gguf_names = {}
    heads = {}
    if src.kind == "gguf":
        arch_enum = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == src.arch), None)
        if arch_enum is None:
            raise _core.KQuantsError(f"{src.path}: unknown architecture {src.arch!r} for LoRA merging")
        n_layer = int(src.kv(f"{src.arch}.block_count", 0))
        tmap = gguf.get_tensor_name_map(arch_enum, n_layer)
        n_head = int(np.atleast_1d(src.kv(f"{src.arch}.attention.head_count", 0))[0])
        n_kv = int(np.atleast_1d(src.kv(f"{src.arch}.attention.head_count_kv", n_head))[0])
        for hf in pairs:
            g = tmap.get_name(key=hf, try_suffixes=(".weight", ".bias"))
            if g is not None:
                gguf_names[hf] = g
                if src.arch == "llama" and hf.endswith(("q_proj.weight", "k_proj.weight")):
                    heads[hf] = n_head if "q_proj" in hf else n_kv
    by_name = {t.name: t for t in src.tensors}
    merged = {}
    for hf, (a, b) in pairs.items():
        t = by_hf.get(hf) or by_name.get(gguf_names.get(hf, ""))
        if t is None:
            raise _core.KQuantsError(f"{lora_dir}: LoRA target {hf!r} is not a tensor of {src.path}")
        out_dim, in_dim = int(t.ne[1]) if len(t.ne) > 1 else 1, int(t.ne[0])
        if b.shape[0] != out_dim or a.shape[1] != in_dim:
            raise _core.KQuantsError(f"{lora_dir}: LoRA {hf!r} gives a [{b.shape[0]}, {a.shape[1]}] delta but "
                                     f"{t.name!r} is [{out_dim}, {in_dim}]")
        h = t.permute_heads if t.hf_name else heads.get(hf)
        perm = archmod.permute_rows(out_dim, h) if h else None

        def load(t=t, a=a, b=b, perm=perm):
            w = to_float32(t.load(), t.type, t.ne)
            delta = (b @ a).astype(np.float32) * np.float32(s)
            if perm is not None:
                delta = delta[perm]
            return _encode(np.ascontiguousarray(w + delta), t.type)
        merged[t.name] = replace(t, load=load)
    tensors = [merged.get(t.name, t) for t in src.tensors]
    return replace(src, tensors=tensors)
