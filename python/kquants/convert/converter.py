"""Hugging Face checkpoint -> GGUF-shaped ModelSource (llama.cpp's converter rules).

Per tensor, as ``convert_hf_to_gguf.py`` does: clean and map the name
(``arch.NameMapper``), permute llama's q/k rows, widen to float32 when the
stored dtype is neither F16 nor F32, then pick the GGUF type: F32 for 1-D
tensors, norms, position / token-type embeddings and anything not ending in
``.weight``; otherwise the output type (f32 / f16 / bf16 / q8_0, Q8_0
falling back to F16 when a row is not a multiple of 32). Data is converted
lazily in row chunks when the pipeline asks for it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import gguf
import numpy as np

from .. import _core
from ..quant import quantize_array
from ..gguf import GGUFValueType
from . import arch as archmod, vocab as vocabmod
from .hf import bf16_to_f32, load_checkpoint, load_config
from .source import FLOAT_STORAGE, ModelSource, SrcTensor, ValueMetadata, check_finite

log = logging.getLogger("kquants.convert")

# outtype -> (llama file type, GGUF tensor type)
OUTTYPES = {"f32": (0, "F32"), "f16": (1, "F16"), "bf16": (32, "BF16"), "q8_0": (7, "Q8_0")}

_CHUNK_ELEMS = 1 << 22   # rows converted at a time: ~16 MB of float32


def _entries_from_writer(w: gguf.GGUFWriter) -> list:
    """gguf-py's collected keys as [(key, value, type, element type)], the types
    as gguf-py would write them (an untyped array's from its first element)."""
    out = []
    for key, v in w.kv_data[0].items():
        vtype, sub = GGUFValueType(int(v.type)), None
        if vtype == GGUFValueType.ARRAY:
            if v.sub_type is not None:
                sub = GGUFValueType(int(v.sub_type))
            elif isinstance(v.value, (bytes, bytearray)):
                sub = GGUFValueType.UINT8
            else:
                sub = GGUFValueType(int(gguf.GGUFValueType.get_type(v.value[0])))
        out.append((key, v.value, vtype, sub))
    return out


def _target_type(mapper, new_name: str, shape: tuple, outtype: str) -> str:
    if len(shape) <= 1 or new_name.endswith("_norm.weight"):
        return "F32"
    if mapper.is_f32_tensor(new_name) or new_name[-7:] not in (".weight", ".lora_a", ".lora_b"):
        return "F32"
    t = OUTTYPES[outtype][1]
    if t == "Q8_0" and shape[-1] % 32:
        log.warning("%s: row length %d is not a multiple of 32, falling back to F16", new_name, shape[-1])
        return "F16"
    return t


def _loader(raw_fn, src_kind: str, shape2d, target: str, perm, name: str, origin: str, threads):
    """Returns load(): the tensor converted to `target`, in row chunks.
    raw_fn() gives the stored data (BF16 as uint16 bits); perm reorders rows."""
    rows, cols = shape2d

    def load():
        raw = raw_fn().reshape(rows, cols)
        if target in FLOAT_STORAGE:
            out = np.empty((rows, cols), dtype=FLOAT_STORAGE[target])
        else:
            out = np.empty((rows, cols // 32 * 34), dtype=np.uint8)  # Q8_0: 34 bytes per 32 values
        step = max(1, _CHUNK_ELEMS // max(1, cols))
        for r0 in range(0, rows, step):
            r1 = min(rows, r0 + step)
            blk = raw[perm[r0:r1]] if perm is not None else raw[r0:r1]
            if src_kind == target and target in ("F16", "F32") and perm is None:
                check_finite(blk, name, origin)
                out[r0:r1] = blk
                continue
            f = bf16_to_f32(blk) if src_kind == "BF16" else np.asarray(blk, dtype=np.float32)
            check_finite(f, name, origin)
            if target == "F32":
                out[r0:r1] = f
            elif target == "F16":
                out[r0:r1] = f.astype(np.float16)
            else:
                out[r0:r1] = quantize_array(np.ascontiguousarray(f), target, threads=threads).view(out.dtype)
        return out
    return load


def hf_source(model_dir, outtype: str = "f16", threads=None) -> ModelSource:
    """A HF checkpoint folder as a ModelSource of GGUF type `outtype` (f32/f16/bf16/q8_0)."""
    d = Path(model_dir)
    outtype = outtype.lower()
    if outtype not in OUTTYPES:
        raise _core.KQuantsError(f"outtype {outtype!r} is not one of {', '.join(OUTTYPES)}")
    cfg = load_config(d)
    hf_arch, spec = archmod.get_arch(cfg, str(d / "config.json"))
    n_layer = archmod.find(cfg, archmod.N_LAYER_KEYS)
    if n_layer is None:
        raise _core.KQuantsError(f"{d / 'config.json'}: no layer count (num_hidden_layers)")
    ckpt = load_checkpoint(d)
    mapper = archmod.NameMapper(spec, int(n_layer))
    expect = archmod.expected_shapes(cfg)
    n_head = archmod.find(cfg, ("n_heads", "num_attention_heads"))
    n_kv = archmod.find(cfg, ("n_kv_heads", "num_key_value_heads"), n_head)

    tensors: list = []
    if spec.rope_freqs:
        rf = archmod.llama3_rope_freqs(cfg)
        if rf is not None:
            tensors.append(SrcTensor("rope_freqs.weight", (rf.size,), "F32", lambda rf=rf: rf, origin=str(d)))
    seen = set()
    for name, hft in ckpt.items():
        clean = mapper.clean(name)
        if clean is None:
            continue
        origin = str(hft.file.path) if hft.file is not None else str(d)
        new = mapper.gguf_name(clean, origin)
        if new in seen:
            raise _core.KQuantsError(f"{origin}: tensor {name!r} maps to {new!r}, which another tensor already uses")
        seen.add(new)
        shape = hft.shape
        base = new.split(".", 2)[2] if new.startswith("blk.") else new
        if base in expect and tuple(shape) != expect[base]:
            raise _core.KQuantsError(
                f"{origin}: tensor {name!r} has shape {list(shape)} but config.json implies "
                f"{list(expect[base])} for {new}")
        perm, heads = None, None
        if spec.permute_qk and clean.endswith(("q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias")):
            heads = n_head if "q_proj" in clean else (n_kv if n_kv != n_head else n_head)
            if shape[0] % (2 * heads):
                raise _core.KQuantsError(f"{origin}: tensor {name!r}: {shape[0]} rows cannot be split "
                                         f"into {heads} heads of two rotary halves")
            perm = archmod.permute_rows(shape[0], heads)
        target = _target_type(mapper, new, shape, outtype)
        cols = shape[-1] if shape else 1
        rows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
        if perm is not None and len(shape) == 1:   # bias: permute its elements
            raw_fn, perm_rows = (lambda h=hft, p=perm: h.raw()[p]), None
        else:
            raw_fn, perm_rows = hft.raw, perm
        ne = tuple(reversed(shape)) if shape else (1,)
        load = _loader(raw_fn, hft.dtype, (rows, cols), target, perm_rows, new, origin, threads)
        tensors.append(SrcTensor(new, ne, target, load,
                                 hft.release, hf_name=name, permute_heads=heads, origin=origin))
    if not any(t.hf_name for t in tensors):
        raise _core.KQuantsError(f"{d}: the checkpoint has no tensors")

    meta = ValueMetadata(_metadata(d, spec, cfg, OUTTYPES[outtype][0], tensors))
    return ModelSource(d, "hf", meta, tensors, hf_config=cfg)


def _metadata(d: Path, spec, cfg: dict, file_type: int, tensors) -> list:
    """Metadata entries in llama.cpp's converter order: architecture, general.* model
    card metadata, hyperparameters, quantization version, tokenizer."""
    w = gguf.GGUFWriter(path=None, arch=gguf.MODEL_ARCH_NAMES[spec.gguf_arch])
    total = sum(int(np.prod(t.ne, dtype=np.int64)) for t in tensors)
    prev = logging.getLogger("gguf").level
    logging.getLogger("gguf").setLevel(logging.ERROR)
    try:
        meta = gguf.Metadata.load(None, d, None, total)
        if meta.name is None:
            meta.name = d.name
        if meta.size_label is None and total > 0:
            meta.size_label = gguf.size_label(total, total, 0, 0)
        w.add_type(gguf.GGUFType.MODEL)
        meta.set_gguf_meta_model(w)
        archmod.set_hparams(w, spec, cfg, d, file_type)
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        vocabmod.VOCAB_KINDS[spec.vocab](w, d, cfg)
    finally:
        logging.getLogger("gguf").setLevel(prev)
    return _entries_from_writer(w)
