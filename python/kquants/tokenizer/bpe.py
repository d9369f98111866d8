"""Byte-level BPE (``tokenizer.ggml.model = "gpt2"``), as llama.cpp's llm_tokenizer_bpe.

Each pre-tokenized word is turned into the GPT-2 byte alphabet (every UTF-8
byte becomes one printable code point), split into code points, and merged
pair by pair: always the adjacent pair with the lowest merge rank, the
leftmost one on ties.  A final symbol that is not a token falls back to its
single-byte tokens where they exist (llama.cpp silently drops the others).
"""
from __future__ import annotations

from .pretokenize import PreTokenizer

__all__ = ["BYTE_TO_UNICODE", "UNICODE_TO_BYTE", "BPE"]


def _byte_to_unicode() -> list[str]:
    """GPT-2's byte -> printable code point map.

    Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves;
    the other 68 bytes (controls, space, DEL, NBSP, soft hyphen ...) map, in
    byte order, to U+0100, U+0101, ... so no byte becomes whitespace.
    """
    keep = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    out, extra = [], 0
    for b in range(256):
        if b in keep:
            out.append(chr(b))
        else:
            out.append(chr(256 + extra))
            extra += 1
    return out


BYTE_TO_UNICODE: list[str] = _byte_to_unicode()
UNICODE_TO_BYTE: dict[str, int] = {c: b for b, c in enumerate(BYTE_TO_UNICODE)}
# str.translate table from a latin-1 view of the UTF-8 bytes to the byte alphabet
_BYTE_TABLE = {b: c for b, c in enumerate(BYTE_TO_UNICODE)}

# Words cached per tokenizer; the cache is dropped when it grows past this
# (a word cache of 200k short strings is a few tens of MB).
_CACHE_LIMIT = 200_000


def parse_merges(merges: list[str]) -> dict[tuple[str, str], int]:
    """``"left right"`` strings -> {(left, right): rank}; the first wins on repeats.

    The split is at the first space after the first character, so a left part
    that is itself a space-like symbol is kept whole.
    """
    ranks: dict[tuple[str, str], int] = {}
    for rank, m in enumerate(merges):
        pos = m.find(" ", 1)
        pair = (m[:pos], m[pos + 1:]) if pos >= 0 else ("", "")
        ranks.setdefault(pair, rank)
    return ranks


class BPE:
    """Word -> token ids for a byte-level BPE vocabulary."""

    def __init__(self, token_to_id: dict[str, int], merges: list[str], pre: PreTokenizer,
                 ignore_merges: bool = False):
        self.token_to_id = token_to_id
        self.ranks = parse_merges(merges)
        self.pre = pre
        self.ignore_merges = ignore_merges
        self._cache: dict[str, tuple[int, ...]] = {}

    def encode(self, text: str) -> list[int]:
        """Token ids of a text fragment (no special-token handling here)."""
        out: list[int] = []
        cache = self._cache
        word_ids = self._word_ids
        for word in self.pre.split(text):
            ids = cache.get(word)
            if ids is None:
                ids = word_ids(word)
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[word] = ids
            out.extend(ids)
        return out

    def _word_ids(self, word: str) -> tuple[int, ...]:
        enc = word.encode("utf-8").decode("latin-1").translate(_BYTE_TABLE)
        vocab = self.token_to_id
        if self.ignore_merges:
            tid = vocab.get(enc)
            if tid is not None:
                return (tid,)
        syms = self._merge(list(enc))
        out: list[int] = []
        for s in syms:
            tid = vocab.get(s)
            if tid is not None:
                out.append(tid)
                continue
            # llama.cpp looks each UTF-8 byte of the symbol up as a one-byte
            # token text; only ASCII bytes can match (a lone byte >= 0x80 is
            # not a valid token string), the rest are dropped.
            for b in s.encode("utf-8"):
                t = vocab.get(chr(b)) if b < 0x80 else None
                if t is not None:
                    out.append(t)
        return tuple(out)

    def _merge(self, syms: list[str]) -> list[str]:
        """Merge the lowest-ranked adjacent pair (leftmost on ties) until none is left."""
        ranks = self.ranks
        while len(syms) > 1:
            best_rank = None
            best = -1
            prev = syms[0]
            for i in range(1, len(syms)):
                cur = syms[i]
                r = ranks.get((prev, cur))
                if r is not None and (best_rank is None or r < best_rank):
                    best_rank, best = r, i - 1
                prev = cur
            if best < 0:
                break
            syms[best:best + 2] = [syms[best] + syms[best + 1]]
        return syms
