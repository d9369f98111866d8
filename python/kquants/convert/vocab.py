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
``SpecialVocab``, which is what llama.cpp's converter uses, with the changes of
the gguf-py that llama.cpp vendors (``SpecialVocab`` below): the tokenizer.json
normalizer's lowercase / strip_accents flags become metadata keys, and what the
post-processor says about adding BOS / EOS wins over tokenizer_config.json.

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


# pre name, model type, pre_tokenizer, normalizer (None: any), {id: token} that must match,
# adds_bos (when given: whether the post-processor must put a special token first)
KNOWN_PRE_TOKENIZERS = [
    dict(pre="smollm", model="BPE", ids={1: "<|im_start|>"},
         pre_tokenizer={"type": "Sequence", "pretokenizers": [
             {"type": "Digits", "individual_digits": True}, _BYTELEVEL]}),
    dict(pre="starcoder", model="BPE", ids={1: "<fim_prefix>"},
         pre_tokenizer={"type": "Sequence", "pretokenizers": [
             {"type": "Digits", "individual_digits": True}, _BYTELEVEL]}),
    # Llama 3's pre-tokenizer: llama.cpp's hash includes the BOS the post-processor adds; the same
    # tokenizer without it hashes as Smaug-Llama-3's ("smaug-bpe", another pre-tokenizer at run time).
    dict(pre="llama-bpe", model="BPE", adds_bos=True,
         pre_tokenizer={"type": "Sequence", "pretokenizers": [_split(_LLAMA3_RE), _BYTELEVEL_NOREGEX]}),
    dict(pre="smaug-bpe", model="BPE", adds_bos=False,
         pre_tokenizer={"type": "Sequence", "pretokenizers": [_split(_LLAMA3_RE), _BYTELEVEL_NOREGEX]}),
    dict(pre="qwen2", model="BPE", normalizer={"type": "NFC"},
         pre_tokenizer={"type": "Sequence", "pretokenizers": [_split(_QWEN2_RE), _BYTELEVEL_NOREGEX]}),
    dict(pre="gpt-2", model="BPE", pre_tokenizer=_BYTELEVEL),
    # BERT uncased WordPiece (bge-small, all-MiniLM, jina-v2-en): llama.cpp's hash table lists the
    # same hash for bge-small-en-v1.5 ("bert-bge") and jina-embeddings-v2-base-en; its later entry
    # wins, so its converter writes "jina-v2-en" (the same pre-tokenizer at run time).
    dict(pre="jina-v2-en", model="WordPiece", pre_tokenizer={"type": "BertPreTokenizer"},
         normalizer={"type": "BertNormalizer", "lowercase": True}),
]

# Pre names that name the same pre-tokenizer (pre_tokenizer_for: export-hf of older files).
PRE_ALIASES = {"bert-bge": "jina-v2-en"}


def _contains(have, want) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _contains(have[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(map(_contains, have, want))
    return have == want


def _post_processor_adds_bos(tok_json: dict) -> bool:
    """Whether tokenizer.json's post-processor puts a special token before the text."""
    pp = tok_json.get("post_processor") or {}
    for proc in pp.get("processors", [pp]):
        single = proc.get("single") or []
        if proc.get("type") == "TemplateProcessing" and len(single) > 1 and "SpecialToken" in single[0]:
            return True
    return False


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
        if "adds_bos" in row and _post_processor_adds_bos(tok_json) != row["adds_bos"]:
            continue
        return row["pre"]
    log.warning("BPE pre-tokenizer not recognized; writing tokenizer.ggml.pre = 'default' "
                "(llama.cpp's default pre-tokenizer; tokenization may differ from the original)")
    return "default"


def pre_tokenizer_for(pre: str):
    """(pre_tokenizer, normalizer) JSON for a known pre name (used by export-hf)."""
    pre = PRE_ALIASES.get(pre, pre)
    for row in KNOWN_PRE_TOKENIZERS:
        if row["pre"] == pre:
            return row["pre_tokenizer"], row.get("normalizer")
    return _BYTELEVEL, None


class SpecialVocab(gguf.SpecialVocab):
    """gguf-py's SpecialVocab as llama.cpp's vendored gguf-py (llama-cpp-python 0.3.36) behaves,
    where the PyPI gguf-py 0.19 lags:

    * tokenizer.json's normalizer (``Lowercase``, ``StripAccents``, ``BertNormalizer`` flags, nested
      in ``Sequence``) -> ``tokenizer.ggml.normalizer.lowercase`` / ``.strip_accents``, written last;
    * the post-processor decides add_bos / add_eos (/ add_sep): a ``ByteLevel`` processor means
      no BOS / EOS unless another processor says otherwise; tokenizer_config.json's add_*_token
      only fills in what no processor decided;
    * a ``TemplateProcessing`` whose leading special token is neither the configured BOS nor CLS
      makes it the BOS (and CLS) where tokenizer_config.json names none.
    """

    def __init__(self, *args, **kwargs):
        self.normalizer_flags: dict = {}
        super().__init__(*args, **kwargs)

    def _try_load_from_tokenizer_json(self, path: Path) -> bool:
        found = super()._try_load_from_tokenizer_json(path)
        tj_path, tc_path = path / "tokenizer.json", path / "tokenizer_config.json"
        if not tj_path.is_file():
            return found
        tj = _read_json(tj_path)
        tc = _read_json(tc_path) if tc_path.is_file() else None
        if tj.get("normalizer"):
            self._read_normalizer(tj["normalizer"])
        decided = self._post_processor_adds(tj, tc)
        if decided:
            rest = {k: v for k, v in self.add_special_token.items() if k not in decided}
            self.add_special_token = {**decided, **rest}
        return found

    def _read_normalizer(self, norm: dict) -> None:
        kind = norm.get("type")
        if kind == "Lowercase":
            self.normalizer_flags["lowercase"] = True
        elif kind == "StripAccents":
            self.normalizer_flags["strip_accents"] = True
        elif kind == "BertNormalizer":
            for key in ("lowercase", "strip_accents"):
                if key in norm:
                    self.normalizer_flags[key] = norm[key]
        elif kind == "Sequence":
            for sub in norm.get("normalizers") or []:
                self._read_normalizer(sub)

    def _post_processor_adds(self, tj: dict, tc) -> dict:
        """{bos/eos/sep: add?} that the post-processor fixes; may set BOS/CLS ids (see class doc)."""
        pp = tj.get("post_processor")
        if not pp:
            return {}
        cfg = tc or {}
        bos, cls = cfg.get("bos_token"), cfg.get("cls_token")
        bos = bos or cls            # a CLS-only config counts its CLS as BOS (as SpecialVocab does)
        out: dict = {}
        for proc in pp.get("processors", [pp]):
            kind = proc.get("type")
            if kind == "ByteLevel":
                out.setdefault("bos", False)
                out.setdefault("eos", False)
            elif kind == "RobertaProcessing":
                out.update(bos=True, eos=True, sep=True)
            elif kind == "TemplateProcessing":
                single = proc.get("single") or []
                if len(single) < 2:
                    continue
                first = single[0].get("SpecialToken", {}).get("id")
                if first:
                    if tc and first not in (bos, cls):
                        ids = {a["content"]: a["id"] for a in tj.get("added_tokens") or []}
                        for typ, have in (("bos", bos), ("cls", cls)):
                            if not have and first in ids:
                                self.special_token_ids[typ] = ids[first]
                        bos, cls = bos or first, cls or first
                    out["bos"] = not tc or first in (bos, cls)
                if single[-1].get("SpecialToken", {}).get("id"):
                    out["eos"] = True   # SpecialVocab makes a trailing special token the EOS
        return out

    def add_to_gguf(self, gw, quiet: bool = False) -> None:
        super().add_to_gguf(gw, quiet=quiet)
        for key in ("lowercase", "strip_accents"):
            if self.normalizer_flags.get(key) is not None:      # BertNormalizer's null: not written
                gw.add_bool(f"tokenizer.ggml.normalizer.{key}", bool(self.normalizer_flags[key]))


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
    SpecialVocab(d, load_merges=True).add_to_gguf(w, quiet=True)


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
    SpecialVocab(d, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)


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
        pre = "jina-v2-en" if hparams.get("model_type") == "bert" else "default"   # see KNOWN_PRE_TOKENIZERS
    else:
        raise _core.KQuantsIOError(f"{d}: no tokenizer.json or vocab.txt for the WordPiece vocabulary")
    w.add_token_type_count(hparams.get("type_vocab_size", 1))
    tokens = [t if ty == gguf.TokenType.CONTROL else (t[2:] if t.startswith("##") else "\u2581" + t)
              for t, ty in zip(tokens, types)]
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    SpecialVocab(d, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)


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
