"""Normalisation: the original text becomes streams the matchers read, each position mapped back.

Every step works per code point and keeps, for each output character, the index of the original code
point it came from, so findings are reported in code-point offsets of the original text.
See shared_rules/README.md, "Normalisation", for the steps in order; extension/engine/normalise.js
implements the same steps.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u2061", "\u2062", "\u2063"}


@dataclass
class Tables:
    """Per-character tables from the payload: look-alikes, traditional→simplified and the word fold."""

    confusables: dict[str, str]
    t2s: dict[str, str]
    fold: dict[str, str]


def is_word_char(ch: str) -> bool:
    """Letters and digits of any script are kept; everything else separates (spaces, symbols, marks)."""
    return unicodedata.category(ch)[0] in ("L", "N")


def base_chars(ch: str, tables: Tables) -> str:
    """NFKC, lower case, diacritics off (Latin, Greek, Cyrillic only), look-alikes and traditional mapped."""
    if ch in ZERO_WIDTH:
        return ""
    out = []
    for c in unicodedata.normalize("NFKC", ch).lower():
        if c in tables.confusables:
            c = tables.confusables[c]
        elif ord(c) < 0x0530 and ord(c) >= 0x00C0:
            c = "".join(d for d in unicodedata.normalize("NFD", c) if unicodedata.category(d) != "Mn") or c
        out.append(tables.t2s.get(c, c))
    return "".join(out)


@dataclass
class Stream:
    """Normalised characters and, for each, the index of the original code point it came from."""

    chars: list[str]
    origin: list[int]

    @property
    def text(self) -> str:
        return "".join(self.chars)


def plain_stream(text: str, tables: Tables) -> Stream:
    """Every character normalised, separators kept: what the contact detectors read."""
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        for c in base_chars(ch, tables):
            chars.append(c)
            origin.append(index)
    return Stream(chars, origin)


def skeleton(text: str, tables: Tables) -> tuple[Stream, list[bool]]:
    """The word matcher's stream: separators dropped, the fold applied, repeated non-Latin characters collapsed.

    Returns the stream and, per kept character, whether a separator stood before it in the original
    (so English words can require a boundary even when letters are spread out).
    """
    chars: list[str] = []
    origin: list[int] = []
    gap_before: list[bool] = []
    gap = True
    for index, ch in enumerate(text):
        mapped = base_chars(ch, tables)
        if ch in ZERO_WIDTH:
            continue  # invisible: neither a character nor a separator
        for c in mapped:
            if not is_word_char(c):
                gap = True
                continue
            c = tables.fold.get(c, c)
            if chars and chars[-1] == c and not is_latin(c) and not ("0" <= c <= "9"):
                # "私私下下" reads as "私下" (the words get the same collapse). Latin letters are left alone:
                # English doubles its letters ("guaranteed"), and "hi idiot" must keep both i's.
                continue
            chars.append(c)
            origin.append(index)
            gap_before.append(gap)
            gap = False
        if not mapped:
            gap = True
    return Stream(chars, origin), gap_before


def fold_word(word: str, tables: Tables) -> str:
    """A dictionary word as the skeleton would read it."""
    return skeleton(word, tables)[0].text


def is_latin(ch: str) -> bool:
    return "a" <= ch <= "z"
