"""Byte-level BPE (``tokenizer.ggml.model = "gpt2"``), as llama.cpp's llm_tokenizer_bpe.

Each pre-tokenized word is turned into the GPT-2 byte alphabet (every UTF-8
byte becomes one printable code point), split into code points, and merged
pair by pair: always the adjacent pair with the lowest merge rank, the
leftmost one on ties.  A final symbol that is not a token falls back to its
single-byte tokens where they exist (llama.cpp silently drops the others).
"""
from __future__ import annotations

import heapq

from .pretokenize import PreTokenizer
from .wordcache import WordCache

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

# Words longer than this (in symbols) merge through a heap, O(n log n), like
# llama.cpp; shorter ones through a plain scan, which is faster there.
_HEAP_MIN = 48


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
        self._words = WordCache(self._word_ids)

    def encode(self, text: str) -> list[int]:
        """Token ids of a text fragment (no special-token handling here)."""
        return self._words.encode(self.pre.split(text))

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
        if len(syms) > _HEAP_MIN:
            return self._merge_heap(syms)
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

    def _merge_heap(self, syms: list[str]) -> list[str]:
        """Same merges as :meth:`_merge`, with llama.cpp's priority queue over a linked list.

        Queue entries are (rank, left index, left text, right text); popping the
        smallest gives the lowest rank, then the leftmost pair.  An entry whose
        symbols have changed since it was queued is skipped.
        """
        ranks = self.ranks
        text: list[str | None] = list(syms)
        n = len(text)
        nxt = list(range(1, n)) + [-1]
        prv = list(range(-1, n - 1))
        heap = []
        for i in range(n - 1):
            r = ranks.get((text[i], text[i + 1]))
            if r is not None:
                heap.append((r, i, text[i], text[i + 1]))
        heapq.heapify(heap)
        push = heapq.heappush
        while heap:
            _, left, lt, rt = heapq.heappop(heap)
            right = nxt[left]
            if right < 0 or text[left] != lt or text[right] != rt:
                continue
            text[left] = merged = lt + rt
            text[right] = None
            nxt[left] = after = nxt[right]
            if after >= 0:
                prv[after] = left
            before = prv[left]
            if before >= 0:
                r = ranks.get((text[before], merged))
                if r is not None:
                    push(heap, (r, before, text[before], merged))
            if after >= 0:
                r = ranks.get((merged, text[after]))
                if r is not None:
                    push(heap, (r, left, merged, text[after]))
        out = []
        i = 0
        while i >= 0:
            out.append(text[i])
            i = nxt[i]
        return out
