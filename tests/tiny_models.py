"""Tiny generated Hugging Face checkpoints for the convert / quantize tests.

Deterministic (seeded) weights; a small byte-level BPE tokenizer.json in the
SmolLM style, or a WordPiece one for BERT. Row lengths are multiples of 256
unless asked otherwise, so every K-quant applies.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from kquants.convert.hf import save_safetensors


def det_normal(shape, seed: int) -> np.ndarray:
    """Deterministic, platform-independent pseudo-normal float32 values: an
    integer hash (exact uint64 arithmetic) -> four uniforms in [-0.5, 0.5)
    (exact in float32) -> their sum (Irwin-Hall, roughly normal), plus a few
    heavier columns so the quantizers' search paths get exercised."""
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    i = np.arange(n, dtype=np.uint64)
    acc = np.zeros(n, dtype=np.float32)
    for k in range(4):
        h = (i * np.uint64(6364136223846793005) + np.uint64(1442695040888963407 + 7919 * seed + 104729 * k))
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
        acc += ((h >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / (1 << 24)) - np.float32(0.5))
    x = acc.reshape(shape)
    if len(shape) >= 2:
        cols = shape[-1]
        scale = np.ones(cols, dtype=np.float32)
        scale[::37] = np.float32(4.0)
        x = x * scale
    return x


def _bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def bpe_tokenizer(vocab_size: int, specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>")):
    """tokenizer.json of a byte-level BPE: specials, the 256 byte tokens, merged pairs."""
    b2u = _bytes_to_unicode()
    vocab = {s: i for i, s in enumerate(specials)}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    merges = []
    letters = [b2u[c] for c in b"etaoinshrdlu "]
    for x in letters:
        for y in letters:
            if len(vocab) >= vocab_size:
                break
            vocab[x + y] = len(vocab)
            merges.append(f"{x} {y}")
    return {
        "version": "1.0",
        "added_tokens": [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in enumerate(specials)],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": merges},
    }


def make_llama(d, *, n_layer=4, hidden=256, n_head=4, n_kv=2, ff=512, vocab=320, dtype="f16", seed=0,
               tie=False, sharded=False, arch="LlamaForCausalLM", extra_cfg=None):
    """A tiny Llama (or Qwen2 with arch="Qwen2ForCausalLM") checkpoint folder."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    hd = hidden // n_head
    cfg = {"architectures": [arch], "model_type": "qwen2" if "Qwen2" in arch else "llama",
           "hidden_size": hidden, "intermediate_size": ff, "num_attention_heads": n_head,
           "num_hidden_layers": n_layer, "num_key_value_heads": n_kv, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "max_position_embeddings": 2048, "vocab_size": vocab,
           "tie_word_embeddings": tie, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float16"}
    cfg.update(extra_cfg or {})
    (d / "config.json").write_text(json.dumps(cfg, indent=1))
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    if not tie:
        shapes["lm_head.weight"] = (vocab, hidden)
    for i in range(n_layer):
        p = f"model.layers.{i}."
        shapes.update({
            p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,),
            p + "self_attn.q_proj.weight": (n_head * hd, hidden), p + "self_attn.k_proj.weight": (n_kv * hd, hidden),
            p + "self_attn.v_proj.weight": (n_kv * hd, hidden), p + "self_attn.o_proj.weight": (hidden, n_head * hd),
            p + "mlp.gate_proj.weight": (ff, hidden), p + "mlp.up_proj.weight": (ff, hidden),
            p + "mlp.down_proj.weight": (hidden, ff)})
        if "Qwen2" in arch:
            shapes.update({p + "self_attn.q_proj.bias": (n_head * hd,), p + "self_attn.k_proj.bias": (n_kv * hd,),
                           p + "self_attn.v_proj.bias": (n_kv * hd,)})
    tensors = {}
    for k, (name, shape) in enumerate(shapes.items()):
        if "norm" in name:
            x = np.float32(1.0) + np.float32(0.1) * det_normal(shape, seed * 1000 + k)
        else:
            x = det_normal(shape, seed * 1000 + k) * np.float32(0.05)
        if dtype == "f16":
            x = x.astype(np.float16)
        elif dtype == "bf16":
            x = (x.view(np.uint32) >> 16).astype(np.uint16)
        tensors[name] = x
    if sharded:
        names = list(tensors)
        half = len(names) // 2
        parts = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
        wm = {}
        for f, ns in parts.items():
            save_safetensors(d / f, {n: tensors[n] for n in ns})
            wm.update({n: f for n in ns})
        (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wm}))
    else:
        save_safetensors(d / "model.safetensors", tensors)
    (d / "tokenizer.json").write_text(json.dumps(bpe_tokenizer(vocab)))
    (d / "tokenizer_config.json").write_text(json.dumps({
        "add_prefix_space": False, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
        "unk_token": "<|endoftext|>", "model_max_length": 2048}))
    return d, tensors


def make_bert(d, *, n_layer=2, hidden=256, n_head=4, ff=512, seed=0):
    """A tiny BertModel + sentence-transformers pooling (mean), WordPiece vocab."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]"] + [f"[unused{i}]" for i in range(3)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + \
        list("abcdefghijklmnopqrstuvwxyz") + ["the", "##s", "##ing", "hello", "world"]
    vocab = len(words)
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    cfg = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": hidden, "intermediate_size": ff,
           "num_attention_heads": n_head, "num_hidden_layers": n_layer, "layer_norm_eps": 1e-12,
           "max_position_embeddings": 64, "vocab_size": vocab, "type_vocab_size": 2, "pad_token_id": 0}
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (d / "1_Pooling").mkdir(exist_ok=True)
    (d / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": hidden,
                                                             "pooling_mode_mean_tokens": True}))
    (d / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "unk_token": "[UNK]",
                                                         "sep_token": "[SEP]", "pad_token": "[PAD]",
                                                         "cls_token": "[CLS]", "mask_token": "[MASK]"}))
    shapes = {"embeddings.word_embeddings.weight": (vocab, hidden), "embeddings.position_embeddings.weight": (64, hidden),
              "embeddings.token_type_embeddings.weight": (2, hidden), "embeddings.LayerNorm.weight": (hidden,),
              "embeddings.LayerNorm.bias": (hidden,), "embeddings.position_ids": None}
    for i in range(n_layer):
        p = f"encoder.layer.{i}."
        for n, s in (("attention.self.query", (hidden, hidden)), ("attention.self.key", (hidden, hidden)),
                     ("attention.self.value", (hidden, hidden)), ("attention.output.dense", (hidden, hidden)),
                     ("intermediate.dense", (ff, hidden)), ("output.dense", (hidden, ff))):
            shapes[p + n + ".weight"] = s
            shapes[p + n + ".bias"] = (s[0],)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + n + ".weight"] = (hidden,)
            shapes[p + n + ".bias"] = (hidden,)
    shapes["pooler.dense.weight"] = (hidden, hidden)
    shapes["pooler.dense.bias"] = (hidden,)
    tensors = {}
    for k, (name, shape) in enumerate(shapes.items()):
        if shape is None:
            tensors[name] = np.arange(64, dtype=np.int64).reshape(1, 64)
            continue
        tensors[name] = det_normal(shape, seed * 1000 + k) * np.float32(0.05)
    save_safetensors(d / "model.safetensors", tensors)
    return d, tensors


ALL_PRESETS = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_s", "q3_k_m",
               "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k"]

# The byte-exactness cases (tests/data/convert_expected.json).
CASES = {
    # 8 layers (use_more_bits and the n/8, n/16 layer rules vary), GQA 4, untied output, bf16 checkpoint
    "gqa4": dict(model=dict(n_layer=8, hidden=256, n_head=4, n_kv=1, ff=512, vocab=320, dtype="bf16"),
                 presets=ALL_PRESETS),
    # rows of 320 (not a multiple of 256: the K-quant fallbacks), tied embeddings, no GQA, f16 checkpoint
    "tied320": dict(model=dict(n_layer=4, hidden=320, n_head=5, n_kv=5, ff=640, vocab=320, dtype="f16", tie=True),
                    presets=ALL_PRESETS),
    "gqa4_imatrix": dict(model=dict(n_layer=8, hidden=256, n_head=4, n_kv=1, ff=512, vocab=320, dtype="bf16"),
                         presets=["q4_0", "q4_k_m", "q2_k", "q5_1"], imatrix=True),
    "gqa4_overrides": dict(model=dict(n_layer=8, hidden=256, n_head=4, n_kv=1, ff=512, vocab=320, dtype="bf16"),
                           presets=["q4_k_m"], overrides={"attn_q": "q8_0", "ffn_up": "q5_0", "blk\\.1\\.": "q4_1"}),
}


def make_case(case: str, tmp) -> Path:
    """Generates the case's checkpoint under tmp and converts it to F16 GGUF; returns its path."""
    import kquants
    tmp = Path(tmp)
    hf, _ = make_llama(tmp / f"{case}-hf", **CASES[case]["model"])
    f16 = tmp / f"{case}-input-f16.gguf"
    kquants.convert(hf, f16, "f16", quiet=True)
    return f16


def tensor_bytes(path) -> dict:
    """{name: bytes} of a GGUF file's tensors, in file order."""
    import kquants
    with kquants.GGUFFile(path) as f:
        return {t.name: f.tensor_data(t.name).tobytes() for t in f.tensors}


def tensor_digests(path) -> dict:
    """{name: "TYPE:<first 20 hex digits of sha256>"} in file order, as
    tests/data/convert_expected.json stores them."""
    import kquants
    with kquants.GGUFFile(path) as f:
        return {t.name: f"{t.type.name}:{hashlib.sha256(f.tensor_data(t.name)).hexdigest()[:20]}"
                for t in f.tensors}


def case_imatrix(f16_path) -> dict:
    """A deterministic importance matrix for every 2-D weight of a model."""
    import kquants
    with kquants.GGUFFile(f16_path) as g:
        tensors = g.tensors
    out = {}
    for i, t in enumerate(tensors):
        if len(t.ne) == 2:
            j = np.arange(t.ne[0], dtype=np.float32)
            out[t.name] = (np.float32(0.1) + ((j * np.float32(i + 3)) % np.float32(17)) / np.float32(8)).astype(np.float32)
    return out
