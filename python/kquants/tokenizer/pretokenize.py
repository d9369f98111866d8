"""BPE pre-tokenizers: split text into words with the regexes llama.cpp uses.

llama.cpp picks a list of regexes from ``tokenizer.ggml.pre`` and applies them
one after the other: each regex splits every piece left by the previous one
into its matches and the text between them.  The regexes are written with
Unicode classes (``\\p{L}``, ``\\p{N}``, ``\\s`` ...) that Python's ``re`` lacks;
:func:`translate` rewrites them into explicit ``re`` classes built from
:mod:`.unicode`, keeping llama.cpp's meaning of each class (``\\s`` is the
White_Space set, ``\\p{Lu}`` and the other letter sub-classes mean any letter,
``\\d`` is ASCII).  ``re`` and llama.cpp's engines agree on ordered alternation,
greedy quantifiers and look-ahead, which is all these patterns use.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from .unicode import WHITESPACE_BODY, class_body

__all__ = ["PreTokenizer", "PRE_TYPES", "pre_type", "translate"]

# llama.cpp maps every letter sub-class to "letter" (it only keeps the major category).
_PROPS = {"L": "L", "N": "N", "P": "P", "S": "S", "M": "M",
          "Lu": "L", "Ll": "L", "Lt": "L", "Lm": "L", "Lo": "L"}


def translate(expr: str) -> str:
    """Rewrite one llama.cpp pre-tokenizer regex into Python ``re`` syntax."""
    out: list[str] = []
    inside = False
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c == "\\" and i + 1 < n:
            e = expr[i + 1]
            if e == "p" and i + 2 < n and expr[i + 2] == "{":
                j = expr.index("}", i + 3)
                name = expr[i + 3:j]
                if name not in _PROPS:
                    raise ValueError(f"unsupported Unicode class \\p{{{name}}} in pre-tokenizer regex {expr!r}")
                body = class_body(_PROPS[name])
                out.append(body if inside else f"[{body}]")
                i = j + 1
                continue
            if e == "s":
                out.append(WHITESPACE_BODY if inside else f"[{WHITESPACE_BODY}]")
            elif e == "S" and not inside:
                out.append(f"[^{WHITESPACE_BODY}]")
            elif e == "d":  # ECMAScript \d is ASCII
                out.append("0-9" if inside else "[0-9]")
            elif e in "SDwWbB" and inside:
                raise ValueError(f"unsupported escape \\{e} inside a class in {expr!r}")
            else:
                out.append(expr[i:i + 2])
            i += 2
            continue
        if c == "(" and not inside and expr[i + 1:i + 2] != "?":
            c = "(?:"           # no capturing groups: findall() then returns whole matches
        elif c == "[" and not inside:
            inside = True
        elif c == "]" and inside:
            inside = False
        elif c == "$" and not inside:  # ECMAScript '$': end of input only
            c = r"\Z"
        out.append(c)
        i += 1
    return "".join(out)


# --- regex lists, in llama.cpp's syntax (the models' own pre-tokenizer patterns) ---

_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
          r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_SEED_CODER = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}"
               r"| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+")
_TEKKEN = (r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+"
           r"|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*"
           r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_CONTRACTION = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?"
_GPT4O = (r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+" + _CONTRACTION
          + r"|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*" + _CONTRACTION
          + r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

REGEXES: dict[str, tuple[str, ...]] = {
    "default": (r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"),
    "llama3": (_LLAMA3,),
    "gpt2": (_GPT2,),
    "qwen2": (_QWEN2,),
    "starcoder": (r"\p{N}", _GPT2),
    "falcon": (r"[\p{P}\$\+<=>\^~\|`]+", _GPT2, r"[0-9][0-9][0-9]"),
    "deepseek-coder": (r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", r"\p{N}"),
    "poro": (r" ?[^(\s|.,!?…。，、।۔،)]+",),
    "seed-coder": (_SEED_CODER,),
    "tekken": (_TEKKEN,),
    "gpt4o": (_GPT4O,),
}


@dataclass(frozen=True)
class PreType:
    """How llama.cpp treats a ``tokenizer.ggml.pre`` value."""
    regexes: str                 # key into REGEXES
    clean_spaces: bool = True    # detokenizer removes " ," " ." ... (clean_up_tokenization_spaces)
    ignore_merges: bool = False  # a word that is a whole token skips the merges
    add_bos: bool = False        # default of tokenizer.ggml.add_bos_token
    add_sep: bool = False        # default of tokenizer.ggml.add_sep_token
    no_bos: bool = False         # the model has no BOS token (default id dropped)


_L3 = PreType("llama3", ignore_merges=True, add_bos=True)
_G2 = PreType("gpt2")
_Q2 = PreType("qwen2", clean_spaces=False)
_SC = PreType("starcoder")

# tokenizer.ggml.pre -> treatment (llama.cpp's llama_vocab::impl::load).
# Verified against llama.cpp's token ids: gpt-2, llama-bpe, qwen2; smollm is
# checked for consistency.  The rest follow the same table but are untested.
PRE_TYPES: dict[str, PreType] = {
    "default": PreType("default"),
    **dict.fromkeys(["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                     "midm-2.0", "lfm2", "dbrx", "smaug-bpe"], _L3),
    **dict.fromkeys(["gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
                     "a.x-4.0", "mellum", "modern-bert", "mpt", "olmo", "jais", "exaone4"], _G2),
    **dict.fromkeys(["jina-v1-en", "jina-v2-code", "roberta-bpe"], PreType("gpt2", add_sep=True)),
    **dict.fromkeys(["trillion", "granite-docling"], PreType("gpt2", clean_spaces=False)),
    **dict.fromkeys(["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2"], _Q2),
    **dict.fromkeys(["stablelm2", "megrez"], PreType("qwen2")),
    **dict.fromkeys(["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], _SC),
    **dict.fromkeys(["smollm", "command-r"], PreType("starcoder", clean_spaces=False)),
    "falcon": PreType("falcon"),
    "deepseek-coder": PreType("deepseek-coder", clean_spaces=False),
    "poro-chat": PreType("poro", clean_spaces=False),
    **dict.fromkeys(["bloom", "gpt3-finnish"], PreType("poro")),
    **dict.fromkeys(["glm4", "chatglm-bpe"], PreType("llama3", no_bos=True)),
    "seed-coder": PreType("seed-coder", clean_spaces=False),
    "tekken": PreType("tekken", clean_spaces=False, ignore_merges=True, add_bos=True),
    **dict.fromkeys(["gpt-4o", "llama4", "kanana2", "talkie"], PreType("gpt4o", clean_spaces=False)),
}


def pre_type(name: str | None) -> PreType:
    """The treatment of a ``tokenizer.ggml.pre`` value (missing -> 'default')."""
    key = name or "default"
    try:
        return PRE_TYPES[key]
    except KeyError:
        raise ValueError(f"unsupported pre-tokenizer tokenizer.ggml.pre={name!r} "
                         f"(supported: {', '.join(sorted(PRE_TYPES))})") from None


@functools.lru_cache(maxsize=None)
def _compiled(key: str) -> tuple[re.Pattern, ...]:
    return tuple(re.compile(translate(e), re.ASCII) for e in REGEXES[key])


class PreTokenizer:
    """Splits text into words with one of the regex lists of :data:`REGEXES`."""

    def __init__(self, regexes: str):
        self.name = regexes
        self.patterns = _compiled(regexes)

    def split(self, text: str) -> list[str]:
        """The words of ``text``, in order; their concatenation is ``text``."""
        pieces = [text] if text else []
        for pat in self.patterns:
            out: list[str] = []
            for piece in pieces:
                words = pat.findall(piece)
                if sum(map(len, words)) == len(piece):
                    out += words        # the matches tile the piece (the usual case)
                else:
                    out += _split_gaps(pat, piece)
            pieces = out
        return pieces


def _split_gaps(pat: re.Pattern, text: str) -> list[str]:
    """Matches of ``pat`` and, as words of their own, the stretches no match covers."""
    out: list[str] = []
    pos = 0
    for m in pat.finditer(text):
        s, e = m.span()
        if s > pos:
            out.append(text[pos:s])
        if e > s:
            out.append(text[s:e])
        pos = e
    if pos < len(text):
        out.append(text[pos:])
    return out
