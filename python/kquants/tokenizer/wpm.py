"""WordPiece vocabularies (``tokenizer.ggml.model = "bert"``), as llama.cpp's llm_tokenizer_wpm.

llama.cpp's BERT vocabularies store word-initial pieces with a '▁' prefix and
continuation pieces bare (the converter turns "##ing" into "ing" and "the"
into "▁the").  Text is normalized code point by code point:

* with strip_accents, each code point is replaced by the first code point of
  its canonical decomposition, and marks (category M) are dropped;
* whitespace ends a word; NUL, U+FFFD and category C (controls, format,
  private use) are dropped;
* with lowercase, the simple lower-case mapping applies;
* punctuation (P), ASCII symbols (S below U+007F) and CJK ideographs are
  words of their own.

Each word, prefixed with '▁', is cut greedily into the longest vocabulary
pieces from the left; a word with any uncovered position becomes [UNK].
"""
from __future__ import annotations

from .unicode import WHITESPACE, category, nfd_first, tolower
from .wordcache import WordCache

__all__ = ["WPM", "is_chinese_char"]

# CJK blocks BERT treats as single-character words (inclusive ranges, as in
# BERT's _is_chinese_char; Extension E starts at 0x2B920 there, not 0x2B820).
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def is_chinese_char(cp: int) -> bool:
    return any(a <= cp <= b for a, b in _CJK_RANGES)


class WPM:
    """Fragment -> token ids for a WordPiece vocabulary."""

    def __init__(self, token_to_id: dict[str, int], unk_id: int | None,
                 lowercase: bool = True, strip_accents: bool = True):
        self.token_to_id = token_to_id
        self.unk_id = unk_id
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.max_len = max((len(t) for t in token_to_id), default=1)
        self._words = WordCache(self._word_ids)
        self._char_cache: dict[str, tuple[int, str]] = {}

    def _char(self, ch: str) -> tuple[int, str]:
        """(kind, text) of one input code point: kind 0 drop, 1 space, 2 word char, 3 single."""
        cp = ord(ch)
        if self.strip_accents:
            cp = nfd_first(cp)
        if cp in WHITESPACE:
            return 1, ""
        cat = category(cp)
        if cp == 0 or cp == 0xFFFD or cat == "C" or (self.strip_accents and cat == "M"):
            return 0, ""
        s = chr(tolower(cp) if self.lowercase else cp)
        if cat == "P" or (cp < 0x7F and cat == "S") or is_chinese_char(cp):
            return 3, s
        return 2, s

    def words(self, text: str) -> list[str]:
        """The normalized words of ``text``."""
        cache = self._char_cache
        words: list[str] = []
        cur: list[str] = []
        for ch in text:
            kind_s = cache.get(ch)
            if kind_s is None:
                kind_s = cache[ch] = self._char(ch)
            kind, s = kind_s
            if kind == 2:
                cur.append(s)
            elif kind == 0:
                continue
            else:
                if cur:
                    words.append("".join(cur))
                    cur = []
                if kind == 3:
                    words.append(s)
        if cur:
            words.append("".join(cur))
        return words

    def encode(self, text: str) -> list[int]:
        return self._words.encode(self.words(text))

    def _word_ids(self, word: str) -> tuple[int, ...]:
        vocab = self.token_to_id
        w = "\u2581" + word
        n = len(w)
        out: list[int] = []
        i = 0
        while i < n:
            for j in range(min(n, i + self.max_len), i, -1):
                tid = vocab.get(w[i:j])
                if tid is not None:
                    out.append(tid)
                    i = j
                    break
            else:               # some position has no piece: the whole word is unknown
                out = []
                break
        if not out:
            return () if self.unk_id is None else (self.unk_id,)
        return tuple(out)
