"""Per-word memo shared by the BPE and WordPiece tokenizers.

Both split text into words whose ids depend on the word alone, and real text
repeats words heavily (Moby Dick: 277k words, 23k distinct), so each distinct
word is tokenized once.
"""
from __future__ import annotations

from typing import Callable, Iterable

__all__ = ["WordCache"]


class WordCache:
    """word -> token ids through ``word_ids``, remembered per distinct word."""

    # Dropped whole when it grows past this: 200k short words are a few tens of MB.
    LIMIT = 200_000

    def __init__(self, word_ids: Callable[[str], tuple[int, ...]]):
        self._word_ids = word_ids
        self._ids: dict[str, tuple[int, ...]] = {}

    def encode(self, words: Iterable[str]) -> list[int]:
        """The concatenated ids of ``words``."""
        out: list[int] = []
        memo, word_ids = self._ids, self._word_ids
        for word in words:
            ids = memo.get(word)
            if ids is None:
                ids = word_ids(word)
                if len(memo) >= self.LIMIT:
                    memo.clear()
                memo[word] = ids
            out.extend(ids)
        return out
