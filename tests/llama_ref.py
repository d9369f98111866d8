"""NumPy reference forward pass of the Llama-family decoder (the oracle for
the native runtime) and a writer of tiny random GGUF models.

The reference follows the model definition directly, in float64, one token
position at a time for attention: embedding -> per layer [RMSNorm -> Q/K/V
(+bias) -> RoPE -> causal GQA softmax attention -> output proj -> residual ->
RMSNorm -> SwiGLU FFN -> residual] -> RMSNorm -> output (tied if absent).
"""
from __future__ import annotations

import numpy as np


def _rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def _rope(x, pos, n_rot, base, freq_scale, factors, neox):
    """x: [n, heads, hd]; rotates the first n_rot dims of each head."""
    half = n_rot // 2
    inv = base ** (-2.0 * np.arange(half) / n_rot)
    if factors is not None:
        inv = inv / factors
    ang = (pos[:, None] * freq_scale) * inv[None, :]          # [n, half]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x = x.copy()
    if neox:
        a, b = x[..., :half].copy(), x[..., half:n_rot].copy()
        x[..., :half], x[..., half:n_rot] = a * c - b * s, a * s + b * c
    else:
        a, b = x[..., 0:n_rot:2].copy(), x[..., 1:n_rot:2].copy()
        x[..., 0:n_rot:2], x[..., 1:n_rot:2] = a * c - b * s, a * s + b * c
    return x


def q8_roundtrip(x: np.ndarray) -> np.ndarray:
    """x quantized to 8-bit blocks of 32 (ggml's Q8_0/Q8_1 activations: d =
    max|x|/127 in fp16, q = round(x/d)) and back; what a quantized matmul
    multiplies the weights with."""
    shp = x.shape
    b = np.asarray(x, np.float32).reshape(-1, 32)
    d = np.abs(b).max(-1, keepdims=True) / np.float32(127)
    inv = np.where(d > 0, 1 / np.where(d > 0, d, 1), 0).astype(np.float32)
    v = b * inv
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return (q * d.astype(np.float16).astype(np.float32)).reshape(shp).astype(np.float64)


def f16_roundtrip(x: np.ndarray) -> np.ndarray:
    """x rounded to fp16: the activations a matmul with F16 weights multiplies."""
    return np.asarray(x, np.float32).astype(np.float16).astype(np.float64)


def forward(w: dict, hp: dict, ids, act=None) -> np.ndarray:
    """Logits [n, vocab] (float64) for token ids from an empty context.

    w: name -> float array in NumPy (row-major, GGUF ne reversed) layout.
    hp: n_layer, n_head, n_head_kv, head_dim, n_rot, eps, base, freq_scale, neox.
    act: optional dict weight name -> function applied to that matmul's input
    (e.g. q8_roundtrip for weights whose matmul quantizes activations).
    """
    act = act or {}

    def mm(x, name):
        f = act.get(name)
        return (f(x) if f else x) @ f64[name].T

    ids = np.asarray(ids)
    n = len(ids)
    H, HKV, D = hp["n_head"], hp["n_head_kv"], hp["head_dim"]
    f64 = {k: np.asarray(v, dtype=np.float64) for k, v in w.items()}
    x = f64["token_embd.weight"][ids]
    pos = np.arange(n, dtype=np.float64)
    factors = f64.get("rope_freqs.weight")
    for i in range(hp["n_layer"]):
        p = f"blk.{i}."
        h = _rms(x, f64[p + "attn_norm.weight"], hp["eps"])
        q = mm(h, p + "attn_q.weight") + f64.get(p + "attn_q.bias", 0)
        k = mm(h, p + "attn_k.weight") + f64.get(p + "attn_k.bias", 0)
        v = mm(h, p + "attn_v.weight") + f64.get(p + "attn_v.bias", 0)
        rp = (hp["n_rot"], hp["base"], hp["freq_scale"], factors, hp["neox"])
        q = _rope(q.reshape(n, H, D), pos, *rp)
        k = _rope(k.reshape(n, HKV, D), pos, *rp)
        v = v.reshape(n, HKV, D)
        out = np.zeros((n, H, D))
        for hh in range(H):
            kv = hh // (H // HKV)
            s = q[:, hh] @ k[:, kv].T / np.sqrt(D)
            s = np.where(np.tril(np.ones((n, n), bool)), s, -np.inf)
            s = np.exp(s - s.max(-1, keepdims=True))
            out[:, hh] = (s / s.sum(-1, keepdims=True)) @ v[:, kv]
        x = x + mm(out.reshape(n, H * D), p + "attn_output.weight")
        h = _rms(x, f64[p + "ffn_norm.weight"], hp["eps"])
        g = mm(h, p + "ffn_gate.weight")
        u = mm(h, p + "ffn_up.weight")
        x = x + mm(g / (1 + np.exp(-g)) * u, p + "ffn_down.weight")
    x = _rms(x, f64["output_norm.weight"], hp["eps"])
    out = "output.weight" if "output.weight" in f64 else "token_embd.weight"
    return mm(x, out)


def weights_from_gguf(path) -> dict:
    """Dequantized float32 weights of a GGUF file, via gguf-py."""
    import gguf

    r = gguf.GGUFReader(str(path))
    return {t.name: gguf.quants.dequantize(t.data, t.tensor_type).reshape([int(s) for s in reversed(t.shape)])
            for t in r.tensors}


def write_tiny_gguf(path, *, arch="llama", n_vocab=96, n_embd=64, n_layer=2, n_head=4, n_head_kv=2,
                    n_ff=96, n_ctx=128, head_dim=None, n_rot=None, base=10000.0, eps=1e-5, tied=True,
                    qkv_bias=None, wtype="F32", embd_type=None, rope_scaling=None, rope_factors=False,
                    seed=0, extra_kv=None, drop_keys=()) -> dict:
    """A tiny random model as GGUF; returns its float weights (as stored, i.e.
    after quantization round-trip) for the reference."""
    import gguf

    rng = np.random.default_rng(seed)
    head_dim = head_dim or n_embd // n_head
    n_rot = n_rot or head_dim
    qkv_bias = (arch == "qwen2") if qkv_bias is None else qkv_bias
    W: dict[str, np.ndarray] = {}

    def mat(rows, cols, scale=None):
        return (rng.standard_normal((rows, cols)) * (scale or cols ** -0.5)).astype(np.float32)

    W["token_embd.weight"] = mat(n_vocab, n_embd, 1.0)
    if not tied:
        W["output.weight"] = mat(n_vocab, n_embd)
    W["output_norm.weight"] = (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32)
    if rope_factors:
        W["rope_freqs.weight"] = np.linspace(1, 8, n_rot // 2).astype(np.float32)
    for i in range(n_layer):
        p = f"blk.{i}."
        W[p + "attn_norm.weight"] = (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32)
        W[p + "ffn_norm.weight"] = (1 + 0.1 * rng.standard_normal(n_embd)).astype(np.float32)
        W[p + "attn_q.weight"] = mat(n_head * head_dim, n_embd)
        W[p + "attn_k.weight"] = mat(n_head_kv * head_dim, n_embd)
        W[p + "attn_v.weight"] = mat(n_head_kv * head_dim, n_embd)
        W[p + "attn_output.weight"] = mat(n_embd, n_head * head_dim)
        if qkv_bias:
            W[p + "attn_q.bias"] = (0.1 * rng.standard_normal(n_head * head_dim)).astype(np.float32)
            W[p + "attn_k.bias"] = (0.1 * rng.standard_normal(n_head_kv * head_dim)).astype(np.float32)
            W[p + "attn_v.bias"] = (0.1 * rng.standard_normal(n_head_kv * head_dim)).astype(np.float32)
        W[p + "ffn_gate.weight"] = mat(n_ff, n_embd)
        W[p + "ffn_up.weight"] = mat(n_ff, n_embd)
        W[p + "ffn_down.weight"] = mat(n_embd, n_ff)

    wr = gguf.GGUFWriter(str(path), arch)
    kv = {
        f"{arch}.context_length": (wr.add_uint32, n_ctx),
        f"{arch}.embedding_length": (wr.add_uint32, n_embd),
        f"{arch}.block_count": (wr.add_uint32, n_layer),
        f"{arch}.feed_forward_length": (wr.add_uint32, n_ff),
        f"{arch}.attention.head_count": (wr.add_uint32, n_head),
        f"{arch}.attention.head_count_kv": (wr.add_uint32, n_head_kv),
        f"{arch}.attention.layer_norm_rms_epsilon": (wr.add_float32, eps),
        f"{arch}.rope.freq_base": (wr.add_float32, base),
        f"{arch}.rope.dimension_count": (wr.add_uint32, n_rot),
    }
    if head_dim != n_embd // n_head:
        kv[f"{arch}.attention.key_length"] = (wr.add_uint32, head_dim)
        kv[f"{arch}.attention.value_length"] = (wr.add_uint32, head_dim)
    if rope_scaling:
        kv[f"{arch}.rope.scaling.type"] = (wr.add_string, rope_scaling[0])
        kv[f"{arch}.rope.scaling.factor"] = (wr.add_float32, rope_scaling[1])
    for k, v in (extra_kv or {}).items():  # plain values: int -> uint32, float -> float32, str
        kv[k] = (wr.add_uint32 if isinstance(v, int) else wr.add_float32 if isinstance(v, float)
                 else wr.add_string, v)
    for k, (fn, val) in kv.items():
        if k not in drop_keys:
            fn(k, val)
    # A byte-level stand-in vocabulary so the file is self-contained.
    wr.add_tokenizer_model("gpt2")
    wr.add_token_list([f"<t{i}>" for i in range(n_vocab)])
    wr.add_bos_token_id(1)
    wr.add_eos_token_id(2)

    stored = {}
    for name, a in W.items():
        t = embd_type if (name == "token_embd.weight" and embd_type) else wtype
        if a.ndim == 1 or t == "F32":
            wr.add_tensor(name, a)
            stored[name] = a
            continue
        qt = gguf.GGMLQuantizationType[t]
        if t == "F16":
            wr.add_tensor(name, a.astype(np.float16))
            stored[name] = a.astype(np.float16).astype(np.float32)
            continue
        q = gguf.quants.quantize(a, qt)
        wr.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qt)
        stored[name] = gguf.quants.dequantize(q, qt).reshape(a.shape)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    hp = dict(n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim, n_rot=n_rot, eps=eps,
              base=base, freq_scale=1.0 / rope_scaling[1] if rope_scaling and rope_scaling[0] == "linear" else 1.0,
              neox=(arch == "qwen2"))
    return {"weights": stored, "hp": hp}
