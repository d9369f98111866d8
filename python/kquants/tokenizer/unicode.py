"""Unicode character classes the way llama.cpp's tokenizers see them.

llama.cpp classifies every code point by the first letter of its Unicode
general category (L letter, N number, P punctuation, S symbol, M mark,
Z separator, C other; unassigned ``Cn`` is "undefined", U here), plus a
separate *whitespace* set (the ``White_Space`` property).  Its lower-casing is
the simple one-code-point mapping and its "NFD" keeps only the first code
point of the canonical decomposition.  Its tables are built from Unicode 15.1,
so ours come from the generated :mod:`.unicode_data` (Unicode 15.1) rather
than from the running Python's ``unicodedata``, whose version varies.

The regex character classes are ``re`` class bodies (``a-zA-Z...``) so the
pre-tokenizers run as compiled ``re`` patterns.
"""
from __future__ import annotations

import bisect
import functools

from . import unicode_data

__all__ = [
    "WHITESPACE", "WHITESPACE_BODY", "category", "is_whitespace", "tolower", "nfd_first",
    "class_body",
]

MAX_CODEPOINT = 0x110000
UNICODE_VERSION = unicode_data.VERSION

# The White_Space property (PropList.txt): TAB..CR, SPACE, NEL, NBSP, OGHAM
# SPACE MARK, EN QUAD..HAIR SPACE, LINE/PARAGRAPH SEPARATOR, NNBSP, MMSP,
# IDEOGRAPHIC SPACE.  llama.cpp's \s and is_whitespace use exactly this set.
WHITESPACE = frozenset(
    list(range(0x09, 0x0E)) + [0x20, 0x85, 0xA0, 0x1680]
    + list(range(0x2000, 0x200B)) + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
)


def _parse_runs() -> tuple[list[int], list[str]]:
    starts, cats = [], []
    for item in unicode_data.CATEGORY_RUNS.split():
        a, c = item.split(":")
        starts.append(int(a, 16))
        cats.append(c)
    return starts, cats


def _parse_nfd() -> tuple[list[int], list[int], list[int]]:
    firsts, lasts, tos = [], [], []
    for item in unicode_data.NFD_RANGES.split():
        rng, to = item.split(":")
        a, b = rng.split("-")
        firsts.append(int(a, 16))
        lasts.append(int(b, 16))
        tos.append(int(to, 16))
    return firsts, lasts, tos


_RUN_STARTS, _RUN_CATS = _parse_runs()
_NFD_FIRST, _NFD_LAST, _NFD_TO = _parse_nfd()
_LOWER = {int(a, 16): int(b, 16) for a, b in (it.split(":") for it in unicode_data.LOWER.split())}


def is_whitespace(cp: int) -> bool:
    return cp in WHITESPACE


def category(cp: int) -> str:
    """Major category letter: 'L','N','P','S','M','Z','C', or 'U' (unassigned)."""
    if not 0 <= cp < MAX_CODEPOINT:
        return "U"
    return _RUN_CATS[bisect.bisect_right(_RUN_STARTS, cp) - 1]


def tolower(cp: int) -> int:
    """Simple (single code point) lower-case mapping."""
    return _LOWER.get(cp, cp)


def nfd_first(cp: int) -> int:
    """First code point of the canonical decomposition (llama.cpp's NFD)."""
    i = bisect.bisect_right(_NFD_FIRST, cp) - 1
    if i >= 0 and cp <= _NFD_LAST[i]:
        return _NFD_TO[i]
    return cp


def _esc(cp: int) -> str:
    # \x / \u / \U escapes are understood by re inside a class, whatever the code point.
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _range_body(ranges: list[tuple[int, int]]) -> str:
    """re class body for inclusive ranges, every code point escaped."""
    return "".join(_esc(a) if a == b else f"{_esc(a)}-{_esc(b)}" for a, b in ranges)


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
    ends = _RUN_STARTS[1:] + [MAX_CODEPOINT]
    ranges = [(a, e - 1) for a, e, c in zip(_RUN_STARTS, ends, _RUN_CATS) if c == cat]
    for cp in _CLASS_EXCLUDE.get(cat, ()):
        out = []
        for a, b in ranges:
            if a <= cp <= b:
                out += [r for r in ((a, cp - 1), (cp + 1, b)) if r[0] <= r[1]]
            else:
                out.append((a, b))
        ranges = out
    return _range_body(ranges)
