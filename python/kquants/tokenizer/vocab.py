"""Vocabulary metadata as llama.cpp reads it (llama_vocab::impl::load).

Turns the ``tokenizer.ggml.*`` GGUF keys into token texts, attributes,
special-token ids and flags, with llama.cpp's defaults and its name-based
fix-ups; splits text around special tokens (tokenizer_st_partition); and
renders tokens back to bytes (token_to_piece, detokenize).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .bpe import UNICODE_TO_BYTE
from .pretokenize import pre_type

__all__ = ["Attr", "Vocab", "parse_vocab"]


class Attr:
    """llama_token_attr bits."""
    UNDEFINED = 0
    UNKNOWN = 1 << 0
    UNUSED = 1 << 1
    NORMAL = 1 << 2
    CONTROL = 1 << 3
    USER_DEFINED = 1 << 4
    BYTE = 1 << 5
    LSTRIP = 1 << 7
    RSTRIP = 1 << 8


# GGUF tokenizer.ggml.token_type values -> attribute (unknown values: UNDEFINED)
_TYPE_TO_ATTR = {0: Attr.UNDEFINED, 1: Attr.NORMAL, 2: Attr.UNKNOWN, 3: Attr.CONTROL,
                 4: Attr.USER_DEFINED, 5: Attr.UNUSED, 6: Attr.BYTE}

# tokenizer.ggml.model -> (kind, default special ids).  llama.cpp's defaults;
# an id outside the vocabulary is dropped.
_MODELS: dict[str, tuple[str, dict[str, int]]] = {
    "llama": ("spm", {"bos": 1, "eos": 2, "unk": 0}),
    "bert": ("wpm", {"bos": 101, "unk": 100, "sep": 102, "pad": 0, "mask": 103}),
    "gpt2": ("bpe", {"bos": 11, "eos": 11}),
}

# special id -> GGUF keys (later keys win, as llama.cpp reads them in this order)
_SPECIAL_KEYS: dict[str, tuple[str, ...]] = {
    "bos": ("bos_token_id",), "eos": ("eos_token_id",), "eot": ("eot_token_id",),
    "eom": ("eom_token_id",), "unk": ("unknown_token_id",), "sep": ("seperator_token_id",),
    "pad": ("padding_token_id",), "mask": ("mask_token_id",),
    "fim_pre": ("fim_pre_token_id", "prefix_token_id"),
    "fim_suf": ("fim_suf_token_id", "suffix_token_id"),
    "fim_mid": ("fim_mid_token_id", "middle_token_id"),
    "fim_pad": ("fim_pad_token_id",), "fim_rep": ("fim_rep_token_id",), "fim_sep": ("fim_sep_token_id",),
}

# Token texts llama.cpp recognises when an id is not given in the metadata;
# a recognised token is forced to CONTROL.
_AUTO_SPECIAL: dict[str, tuple[str, ...]] = {
    "eot": ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
            "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"),
    "eom": ("<|eom_id|>",),
    "fim_pre": ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                "<|code_prefix|>", "<|prefix|>"),
    "fim_suf": ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                "<|code_suffix|>", "<|suffix|>"),
    "fim_mid": ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                "<|code_middle|>", "<|middle|>"),
    "fim_pad": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"),
    "fim_rep": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "fim_sep": ("<|file_sep|>",),
}

# Token texts that end generation (besides eos/eot/eom and the fim pad/rep/sep ids).
_EOG_TEXTS = frozenset((
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
))

_KEY = "tokenizer.ggml."


@dataclass
class Vocab:
    """Everything the tokenizers need from the metadata."""
    kind: str                          # "spm" | "bpe" | "wpm"
    model: str                         # tokenizer.ggml.model
    pre: str | None                    # tokenizer.ggml.pre
    tokens: list[str]
    scores: list[float]
    attrs: list[int]
    token_to_id: dict[str, int]
    merges: list[str]
    special: dict[str, int | None]     # bos, eos, eot, unk, sep, pad, ...
    eog_ids: frozenset[int]
    add_bos: bool = False
    add_eos: bool = False
    add_sep: bool = False
    add_space_prefix: bool = False
    clean_spaces: bool = False
    ignore_merges: bool = False
    lowercase: bool = True             # WPM normalizer
    strip_accents: bool = True
    special_cache: list[int] = field(default_factory=list)   # partition order

    # --- special-token partition (tokenizer_st_partition) ---

    def partition(self, text: str, parse_special: bool) -> list[str | int]:
        """Split ``text`` into raw-text pieces (str) and special token ids (int).

        Special tokens are searched longest text first; control and unknown
        tokens only when ``parse_special``, user-defined tokens always.
        """
        frags: list[str | int] = [text] if text else []
        attrs, tokens = self.attrs, self.tokens
        for tid in self.special_cache:
            attr = attrs[tid]
            if not parse_special and attr & (Attr.CONTROL | Attr.UNKNOWN):
                continue
            tok = tokens[tid]
            if not any(isinstance(f, str) and tok in f for f in frags):
                continue
            out: list[str | int] = []
            for f in frags:
                if isinstance(f, int) or tok not in f:
                    out.append(f)
                    continue
                parts = f.split(tok)
                for k, part in enumerate(parts):
                    if k > 0:
                        out.append(tid)
                    if attr & Attr.LSTRIP and k + 1 < len(parts):
                        part = part.rstrip(" \t\n\v\f\r")
                    if attr & Attr.RSTRIP and k > 0:
                        part = part.lstrip(" \t\n\v\f\r")
                    if part:
                        out.append(part)
            frags = out
        return frags

    # --- detokenization ---

    def piece(self, tid: int, special: bool) -> bytes:
        """Bytes of one token (llama_token_to_piece with lstrip=0)."""
        attr = self.attrs[tid]
        text = self.tokens[tid]
        if attr & (Attr.UNKNOWN | Attr.CONTROL):
            return text.encode("utf-8") if special else b""
        if attr & Attr.USER_DEFINED:
            return text.encode("utf-8")
        if attr & Attr.NORMAL:
            if self.kind == "bpe":
                return _bpe_bytes(text)
            return text.replace("\u2581", " ").encode("utf-8")
        if attr & Attr.BYTE:
            return bytes([_hex_byte(text[3:5])])
        return b""                     # unused / undefined: rendered like control tokens

    def detokenize(self, pieces: list[bytes], remove_space: bool) -> bytes:
        """Join token pieces the way llama_detokenize does (after token selection)."""
        if remove_space and pieces and pieces[0][:1] == b" ":
            pieces = [pieces[0][1:]] + pieces[1:]
        out = b"".join(pieces)
        if self.clean_spaces:
            out = _clean_spaces(out)
        return out


def _hex_byte(s: str) -> int:
    """The byte of "<0xXX>" as strtol reads "XX": the longest hex prefix, 0 if none."""
    for k in (2, 1):
        try:
            return int(s[:k], 16) & 0xFF
        except ValueError:
            continue
    return 0


def _bpe_bytes(text: str) -> bytes:
    """Byte-level token text -> bytes; code points outside the byte alphabet as llama.cpp marks them."""
    try:
        return bytes(UNICODE_TO_BYTE[c] for c in text)
    except KeyError:
        out = bytearray()
        for c in text:
            b = UNICODE_TO_BYTE.get(c)
            if b is not None:
                out.append(b)
            else:
                out += b"[UNK_BYTE_0x" + c.encode("utf-8").hex().encode() + text.encode("utf-8") + b"]"
        return bytes(out)


# clean_up_tokenization_spaces, as llama_detokenize does it in three passes:
# drop the space before ? ! . , ; turn " ' " into "'"; drop the space before
# the contractions 's 'm 're 've (but not 't 'd 'll).
_CLEAN = (
    (re.compile(rb" ([?!.,])"), rb"\1"),
    (re.compile(rb" ' "), rb"'"),
    (re.compile(rb" '(?=[sm]|re|ve)"), rb"'"),
)


def _clean_spaces(text: bytes) -> bytes:
    for pat, rep in _CLEAN:
        text = pat.sub(rep, text)
    return text


def _to_str(x: Any) -> str:
    """A GGUF string as str (readers may hand out bytes; invalid UTF-8 becomes U+FFFD)."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).decode("utf-8", "replace")
    return str(x)


def _get(md: dict[str, Any], name: str, default: Any = None) -> Any:
    return md.get(_KEY + name, default)


def parse_vocab(md: dict[str, Any]) -> Vocab:
    """Build a :class:`Vocab` from GGUF metadata (``tokenizer.ggml.*`` keys).

    Raises ValueError naming the key on missing or malformed data.
    """
    model = _get(md, "model")
    pre = _get(md, "pre")
    model = None if model is None else _to_str(model)
    pre = None if pre is None else _to_str(pre)
    if model is None:
        raise ValueError("metadata has no tokenizer.ggml.model")
    if model not in _MODELS:
        raise ValueError(f"unsupported tokenizer.ggml.model={model!r} (supported: llama, gpt2, bert)")
    kind, defaults = _MODELS[model]

    tokens = _get(md, "tokens")
    if tokens is None or isinstance(tokens, (str, bytes)):
        raise ValueError("metadata has no tokenizer.ggml.tokens array")
    tokens = [t if t else f"[EMPTY_{i}]" for i, t in enumerate(map(_to_str, tokens))]
    n = len(tokens)
    token_to_id: dict[str, int] = {}
    for i, t in enumerate(tokens):
        if token_to_id.setdefault(t, i) != i:
            raise ValueError(f"duplicate token in tokenizer.ggml.tokens: {t!r} has ids {token_to_id[t]} and {i}")

    scores = _array(md, "scores", n, float, 0.0)
    attrs = [_TYPE_TO_ATTR.get(int(t), Attr.UNDEFINED) for t in _array(md, "token_type", n, int, 1)]

    v = Vocab(kind=kind, model=model, pre=pre, tokens=tokens, scores=scores, attrs=attrs,
              token_to_id=token_to_id, merges=[], special={}, eog_ids=frozenset())
    special: dict[str, int | None] = {k: None for k in _SPECIAL_KEYS}
    special.update(defaults)

    if kind == "bpe":
        merges = _get(md, "merges")
        if merges is None:
            raise ValueError("BPE vocabulary without tokenizer.ggml.merges")
        v.merges = [_to_str(m) for m in merges]
        pt = pre_type(pre)
        v.clean_spaces, v.ignore_merges, v.add_bos, v.add_sep = (
            pt.clean_spaces, pt.ignore_merges, pt.add_bos, pt.add_sep)
        if pt.no_bos:
            special["bos"] = None
    elif kind == "spm":
        v.add_space_prefix, v.add_bos = True, True
    else:  # wpm
        v.clean_spaces, v.add_bos, v.add_sep = True, True, True
    v.add_space_prefix = bool(_get(md, "add_space_prefix", v.add_space_prefix))

    for name, keys in _SPECIAL_KEYS.items():
        sid = special[name]
        if sid is not None and not 0 <= sid < n:
            special[name] = None
        for key in keys:
            val = _get(md, key)
            if val is not None and 0 <= int(val) < n:
                special[name] = int(val)
    v.add_bos = bool(_get(md, "add_bos_token", v.add_bos))
    v.add_eos = bool(_get(md, "add_eos_token", v.add_eos))
    v.add_sep = bool(_get(md, "add_sep_token", v.add_sep))
    v.lowercase = bool(_get(md, "normalizer.lowercase", True))
    v.strip_accents = bool(_get(md, "normalizer.strip_accents", v.lowercase))

    _auto_special(v, special)
    v.special = special
    v.special_cache = sorted((i for i, a in enumerate(attrs)
                              if a & (Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN)),
                             key=lambda i: -len(tokens[i].encode("utf-8")))
    _strip_rules(v, md)
    return v


def _strip_rules(v: Vocab, md: dict[str, Any]) -> None:
    """llama.cpp's per-model LSTRIP/RSTRIP attributes (by pre-tokenizer, architecture or name)."""
    name = str(md.get("general.name", "")).lower()
    arch = str(md.get("general.architecture", ""))
    pre = v.pre or ""
    attrs, t2i = v.attrs, v.token_to_id

    def set_attr(text: str, bit: int, on: bool) -> None:
        tid = t2i.get(text)
        if tid is not None:
            attrs[tid] = attrs[tid] | bit if on else attrs[tid] & ~bit

    if any(s in pre for s in ("jina-v2-de", "jina-v2-es", "jina-v2-code")) or \
            any(s in arch for s in ("nomic-bert-moe", "jina-bert-v3")):
        set_attr("<mask>", Attr.LSTRIP, True)
    elif "phi-3" in name or "phi3" in name:
        for tid in v.special_cache:
            attrs[tid] |= Attr.RSTRIP
        set_attr("</s>", Attr.RSTRIP, True)
        for t in ("<unk>", "<s>", "<|endoftext|>"):
            set_attr(t, Attr.RSTRIP, False)
    elif "modern-bert" in name:
        set_attr("[MASK]", Attr.LSTRIP, True)


def _array(md: dict[str, Any], name: str, n: int, typ: type, default: Any) -> list:
    arr = _get(md, name)
    if arr is None:
        return [default] * n
    arr = list(arr)
    if len(arr) < n:
        raise ValueError(f"tokenizer.ggml.{name} has {len(arr)} entries for {n} tokens")
    return [typ(x) for x in arr[:n]]


def _auto_special(v: Vocab, special: dict[str, int | None]) -> None:
    """llama.cpp's text-based detection of EOT/FIM tokens, unused tokens and end-of-generation ids."""
    attrs, t2i = v.attrs, v.token_to_id
    for name, texts in _AUTO_SPECIAL.items():
        if special[name] is not None:
            continue
        # llama.cpp walks an unordered map, so with several candidates the
        # pick is arbitrary; we take the first listed text that exists.
        for t in texts:
            tid = t2i.get(t)
            if tid is not None:
                special[name] = tid
                attrs[tid] |= Attr.CONTROL
                break
    for t, tid in t2i.items():
        if attrs[tid] & Attr.CONTROL and "unused" in t:
            attrs[tid] |= Attr.UNUSED
    eog = {special[k] for k in ("fim_pad", "fim_rep", "fim_sep", "eos", "eot", "eom")}
    for t in _EOG_TEXTS:
        tid = t2i.get(t)
        if tid is not None:
            eog.add(tid)
            attrs[tid] |= Attr.CONTROL
    eog.discard(None)
    texts = {v.tokens[i]: i for i in eog}
    # o200k_harmony / solar-open: "<|end|>" is not an end of generation there
    has_call = "<|call|>" in texts or "<|calls|>" in texts
    if "<|end|>" in texts and has_call and ("<|return|>" in texts or "<|flush|>" in texts):
        end = texts["<|end|>"]
        eog.discard(end)
        attrs[end] = Attr.USER_DEFINED
    # gemma4 / paddleocr: "</s>" is an ordinary token there
    if "<|tool_response>" in texts and "</s>" in texts:
        s = texts["</s>"]
        eog.discard(s)
        attrs[s] = Attr.NORMAL
    for t in ("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"):
        if t in t2i:
            attrs[t2i[t]] = Attr.USER_DEFINED
    v.eog_ids = frozenset(eog)
