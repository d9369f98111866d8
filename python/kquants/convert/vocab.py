"""Tokenizer -> GGUF metadata, the keys and values llama.cpp's converter writes.

Three kinds, read without transformers:

* SentencePiece (``tokenizer.model``): ``tokenizer.ggml.model = "llama"``,
  ``pre = "default"``, tokens / scores / token types from the model proto,
  then ``added_tokens.json`` and ``tokenizer_config.json``'s
  ``added_tokens_decoder``;
* byte-level BPE (``tokenizer.json``, model BPE): ``model = "gpt2"``, the
  ``pre`` name from ``KNOWN_PRE_TOKENIZERS`` (below), merges;
* WordPiece (BERT: ``tokenizer.json`` model WordPiece, or ``vocab.txt``):
  ``model = "bert"``, tokens in "phantom space" form (``##x`` -> ``x``,
  others get a leading U+2581, control tokens unchanged).

Special token ids, add_bos/add_eos and the chat template come from gguf-py's
``SpecialVocab``, which is what llama.cpp's converter uses.

The ``tokenizer.ggml.pre`` name: llama.cpp's converter encodes a fixed text
with the HF tokenizer and looks up the sha256 of the ids. Without the HF
tokenizer library we match the tokenizer.json description instead: each row
of ``KNOWN_PRE_TOKENIZERS`` gives a pre name, the model type, the
pre_tokenizer (and normalizer) JSON that must be contained in the file, and
optionally tokens that must sit at given ids (to tell apart vocabularies that
share a pre-tokenizer, e.g. smollm vs starcoder). First match wins. The
documented fallback, when no row matches, is ``"default"`` with a warning:
llama.cpp then uses its default (GPT-2 style) pre-tokenizer.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import gguf

from .. import _core

log = logging.getLogger("kquants.convert")

_LLAMA3_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
              "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
_QWEN2_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
             "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
_BYTELEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
_BYTELEVEL_NOREGEX = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}


def _split(regex):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


# pre name, model type, pre_tokenizer, normalizer (None: any), {id: token} that must match
KNOWN_PRE_TOKENIZERS = [
    dict(pre="smollm", model="BPE", ids={1: "<|im_start|>"},
         pre_tokenizer={"type": "Sequence", "pretokenizers": [
             {"type": "Digits", "individual_digits": True}, _BYTELEVEL]}),
    dict(pre="starcoder", model="BPE", ids={1: "<fim_prefix>"},
         pre_tokenizer={"type": "Sequence", "pretokenizers": [
             {"type": "Digits", "individual_digits": True}, _BYTELEVEL]}),
    dict(pre="llama-bpe", model="BPE",
         pre_tokenizer={"type": "Sequence", "pretokenizers": [_split(_LLAMA3_RE), _BYTELEVEL_NOREGEX]}),
    dict(pre="qwen2", model="BPE", normalizer={"type": "NFC"},
         pre_tokenizer={"type": "Sequence", "pretokenizers": [_split(_QWEN2_RE), _BYTELEVEL_NOREGEX]}),
    dict(pre="gpt-2", model="BPE", pre_tokenizer=_BYTELEVEL),
    dict(pre="bert-bge", model="WordPiece", pre_tokenizer={"type": "BertPreTokenizer"},
         normalizer={"type": "BertNormalizer", "lowercase": True}),
]


def _contains(have, want) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _contains(have[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(map(_contains, have, want))
    return have == want


def detect_pre(tok_json: dict) -> str:
    """The tokenizer.ggml.pre name for a parsed tokenizer.json (see module doc)."""
    model = tok_json.get("model") or {}
    vocab = model.get("vocab") or {}
    by_id = {}
    if isinstance(vocab, dict):
        by_id = {i: t for t, i in vocab.items()}
    for a in tok_json.get("added_tokens") or []:
        by_id[a["id"]] = a["content"]
    for row in KNOWN_PRE_TOKENIZERS:
        if model.get("type") != row["model"]:
            continue
        if not _contains(tok_json.get("pre_tokenizer"), row["pre_tokenizer"]):
            continue
        if row.get("normalizer") is not None and not _contains(tok_json.get("normalizer"), row["normalizer"]):
            continue
        if any(by_id.get(i) != t for i, t in row.get("ids", {}).items()):
            continue
        return row["pre"]
    log.warning("BPE pre-tokenizer not recognized; writing tokenizer.ggml.pre = 'default' "
                "(llama.cpp's default pre-tokenizer; tokenization may differ from the original)")
    return "default"


def pre_tokenizer_for(pre: str):
    """(pre_tokenizer, normalizer) JSON for a known pre name (used by export-hf)."""
    for row in KNOWN_PRE_TOKENIZERS:
        if row["pre"] == pre:
            return row["pre_tokenizer"], row.get("normalizer")
    return _BYTELEVEL, None


def _looks_special(tok: str) -> bool:
    # llama.cpp's does_token_look_special
    return (tok in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (tok.startswith("<|") and tok.endswith("|>"))
            or (tok.startswith("<\uff5c") and tok.endswith("\uff5c>"))
            or (tok.startswith("<unused") and tok.endswith(">")))


def _read_json(p: Path):
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise _core.KQuantsError(f"{p}: invalid JSON: {e}") from None


def _tokens_from_json(d: Path, hparams: dict):
    """tokens, toktypes of tokenizer.json (llama.cpp's get_vocab_base)."""
    tj = _read_json(d / "tokenizer.json")
    model = tj.get("model") or {}
    vocab = dict(model.get("vocab") or {})
    added = {a["content"]: a for a in tj.get("added_tokens") or []}
    for a in added.values():
        vocab[a["content"]] = a["id"]
    n = int(hparams.get("vocab_size", len(vocab)))
    if vocab and max(vocab.values()) >= n:
        raise _core.KQuantsError(
            f"{d / 'tokenizer.json'}: token id {max(vocab.values())} is not below vocab_size {n} of config.json")
    rev = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(n):
        if i not in rev:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        t = rev[i]
        if t in added:
            if added[t].get("special") or _looks_special(t):
                types.append(gguf.TokenType.CONTROL)
            else:
                t = t.replace("\u2581", " ")
                types.append(gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(t)
    return tj, tokens, types


def set_vocab_bpe(w: gguf.GGUFWriter, d: Path, hparams: dict) -> None:
    tj, tokens, types = _tokens_from_json(d, hparams)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(detect_pre(tj))
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(d, load_merges=True).add_to_gguf(w, quiet=True)


def set_vocab_spm(w: gguf.GGUFWriter, d: Path, hparams: dict) -> None:
    from sentencepiece import SentencePieceProcessor
    sp = SentencePieceProcessor()
    sp.LoadFromFile(str(d / "tokenizer.model"))
    n = int(hparams.get("vocab_size") or sp.vocab_size())
    UNK, CONTROL, UNUSED, BYTE, USER = (gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL,
                                        gguf.TokenType.UNUSED, gguf.TokenType.BYTE, gguf.TokenType.USER_DEFINED)
    tokens = [f"[PAD{i}]".encode() for i in range(n)]
    scores = [-10000.0] * n
    types = [UNUSED] * n
    for i in range(min(n, sp.vocab_size())):
        t = gguf.TokenType.NORMAL
        if sp.IsUnknown(i):
            t = UNK
        elif sp.IsControl(i):
            t = CONTROL
        elif sp.IsUnused(i):
            t = UNUSED
        elif sp.IsByte(i):
            t = BYTE
        tokens[i], scores[i], types[i] = sp.IdToPiece(i).encode("utf-8"), sp.GetScore(i), t
    if (d / "added_tokens.json").is_file():
        for key, i in _read_json(d / "added_tokens.json").items():
            if i < n:
                tokens[i], scores[i], types[i] = key.encode("utf-8"), -1000.0, USER
    if (d / "tokenizer_config.json").is_file():
        for i, data in (_read_json(d / "tokenizer_config.json").get("added_tokens_decoder") or {}).items():
            i = int(i)
            if i >= n:
                continue
            tok = data["content"]
            if data.get("special") or _looks_special(tok):
                types[i] = CONTROL
            else:
                tok = tok.replace("\u2581", " ")
                types[i] = USER
            scores[i], tokens[i] = -1000.0, tok.encode("utf-8")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    gguf.SpecialVocab(d, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)


def set_vocab_wordpiece(w: gguf.GGUFWriter, d: Path, hparams: dict) -> None:
    if (d / "tokenizer.json").is_file():
        tj, tokens, types = _tokens_from_json(d, hparams)
        pre = detect_pre(tj)
    elif (d / "vocab.txt").is_file():
        words = (d / "vocab.txt").read_text(encoding="utf-8").split("\n")
        if words and words[-1] == "":
            words.pop()
        specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
        n = int(hparams.get("vocab_size", len(words)))
        tokens = [words[i] if i < len(words) else f"[PAD{i}]" for i in range(n)]
        types = [gguf.TokenType.CONTROL if t in specials else
                 (gguf.TokenType.NORMAL if i < len(words) else gguf.TokenType.UNUSED) for i, t in enumerate(tokens)]
        pre = "bert-bge" if hparams.get("model_type") == "bert" else "default"
    else:
        raise _core.KQuantsIOError(f"{d}: no tokenizer.json or vocab.txt for the WordPiece vocabulary")
    w.add_token_type_count(hparams.get("type_vocab_size", 1))
    tokens = [t if ty == gguf.TokenType.CONTROL else (t[2:] if t.startswith("##") else "\u2581" + t)
              for t, ty in zip(tokens, types)]
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(d, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)


def set_vocab_llama(w: gguf.GGUFWriter, d: Path, hparams: dict) -> None:
    """LlamaModel.set_vocab: SentencePiece if tokenizer.model, else BPE."""
    tc = d / "tokenizer_config.json"
    if tc.is_file():
        aps = _read_json(tc).get("add_prefix_space")
        if aps is not None:
            w.add_add_space_prefix(aps)
    if (d / "tokenizer.model").is_file():
        set_vocab_spm(w, d, hparams)
    elif (d / "tokenizer.json").is_file():
        set_vocab_bpe(w, d, hparams)
    else:
        raise _core.KQuantsIOError(f"{d}: no tokenizer.model or tokenizer.json")
    # llama.cpp: "granite small models" (vocab 49152, which includes SmolLM) do not add BOS
    if hparams.get("vocab_size", 32000) == 49152:
        w.add_add_bos_token(False)


def set_vocab_gpt2_or_spm(w: gguf.GGUFWriter, d: Path, hparams: dict) -> None:
    """Qwen2Model.set_vocab: SentencePiece if present, else BPE."""
    if (d / "tokenizer.model").is_file():
        set_vocab_spm(w, d, hparams)
    elif (d / "tokenizer.json").is_file():
        set_vocab_bpe(w, d, hparams)
    else:
        raise _core.KQuantsIOError(f"{d}: no tokenizer.model or tokenizer.json")


VOCAB_KINDS = {"llama": set_vocab_llama, "bpe": set_vocab_gpt2_or_spm, "wordpiece": set_vocab_wordpiece}
