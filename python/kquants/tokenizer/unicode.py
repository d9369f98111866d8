"""Unicode character classes the way llama.cpp's tokenizers see them.

llama.cpp classifies every code point by the first letter of its Unicode
general category (L letter, N number, P punctuation, S symbol, M mark,
Z separator, C other; unassigned ``Cn`` is "undefined"), plus a separate
*whitespace* set (the ``White_Space`` property).  Its lower-casing is the
simple one-code-point mapping and its "NFD" keeps only the first code point
of the canonical decomposition.  We derive all of this from Python's
``unicodedata`` (the Unicode version of the running Python; llama.cpp's tables
may be a newer version, which only matters for code points assigned since).

The regex character classes are built once, lazily (about 0.2 s), as
``re`` class bodies (``a-zA-Z...``) so the pre-tokenizers run as compiled
``re`` patterns.
"""
from __future__ import annotations

import functools
import unicodedata

__all__ = [
    "WHITESPACE", "category", "is_whitespace", "tolower", "nfd_first",
    "class_body", "WHITESPACE_BODY",
]

MAX_CODEPOINT = 0x110000

# The White_Space property (PropList.txt): TAB..CR, SPACE, NEL, NBSP, OGHAM
# SPACE MARK, EN QUAD..HAIR SPACE, LINE/PARAGRAPH SEPARATOR, NNBSP, MMSP,
# IDEOGRAPHIC SPACE.  llama.cpp's \s and is_whitespace use exactly this set.
WHITESPACE = frozenset(
    list(range(0x09, 0x0E)) + [0x20, 0x85, 0xA0, 0x1680]
    + list(range(0x2000, 0x200B)) + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
)


def is_whitespace(cp: int) -> bool:
    return cp in WHITESPACE


@functools.lru_cache(maxsize=None)
def category(cp: int) -> str:
    """Major category letter: 'L','N','P','S','M','Z','C', or 'U' (unassigned)."""
    if cp >= MAX_CODEPOINT:
        return "U"
    cat = unicodedata.category(chr(cp))
    return "U" if cat == "Cn" else cat[0]


@functools.lru_cache(maxsize=None)
def tolower(cp: int) -> int:
    """Simple (single code point) lower-case mapping."""
    low = chr(cp).lower()
    # str.lower() uses the full mapping; the only code point whose full
    # lower-case form has several code points is U+0130, whose simple mapping
    # is the first of them ('i').
    return ord(low[0])


@functools.lru_cache(maxsize=None)
def nfd_first(cp: int) -> int:
    """First code point of the canonical decomposition (llama.cpp's NFD)."""
    return ord(unicodedata.normalize("NFD", chr(cp))[0])


def _range_body(ranges: list[tuple[int, int]]) -> str:
    """re class body for inclusive ranges, every code point escaped."""
    out = []
    for a, b in ranges:
        out.append(_esc(a) if a == b else f"{_esc(a)}-{_esc(b)}")
    return "".join(out)


def _esc(cp: int) -> str:
    # \x / \u / \U escapes are understood by re inside a class, whatever the code point.
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


@functools.lru_cache(maxsize=None)
def _category_ranges() -> dict[str, list[tuple[int, int]]]:
    """Inclusive code point ranges of each major category (one pass, ~0.2 s)."""
    cat = unicodedata.category
    ranges: dict[str, list[tuple[int, int]]] = {}
    prev = None
    start = 0
    for cp in range(MAX_CODEPOINT + 1):
        k = cat(chr(cp))[0] if cp < MAX_CODEPOINT else None
        if k != prev:
            if prev is not None:
                ranges.setdefault(prev, []).append((start, cp - 1))
            prev, start = k, cp
    return ranges


def _ws_ranges() -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in sorted(WHITESPACE):
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


WHITESPACE_BODY = _range_body(_ws_ranges())


# llama.cpp runs the regexes that are not hand-coded on a "collapsed" text in
# which ASCII stays itself and \p{S} becomes a fixed ASCII list that lacks '~'
# (U+007E, a math symbol).  Removing it here keeps \p{S} the same as there.
_CLASS_EXCLUDE = {"S": (0x7E,)}


@functools.lru_cache(maxsize=None)
def class_body(cat: str) -> str:
    """re class body matching the major category ``cat`` ('L', 'N', 'P', 'S', 'M')."""
    ranges = _category_ranges().get(cat, [])
    for cp in _CLASS_EXCLUDE.get(cat, ()):
        out = []
        for a, b in ranges:
            if a <= cp <= b:
                out += [r for r in ((a, cp - 1), (cp + 1, b)) if r[0] <= r[1]]
            else:
                out.append((a, b))
        ranges = out
    return _range_body(ranges)
