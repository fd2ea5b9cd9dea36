"""Normalisation: the original text becomes streams the matchers read, each position mapped back.

Every step works per code point and keeps, for each output character, the original code point it came
from, so findings are reported in code-point offsets of the original text. shared_rules/README.md,
"Normalisation", gives the steps in order; extension/engine/normalise.js implements the same steps.

Speed: the per-character work is cached in translation tables, so a message is normalised with
`str.translate` and a few regular expressions, at C speed; Python loops run only over the rare messages
whose characters change length (zero-width characters, ligatures).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass

ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u2061", "\u2062", "\u2063"}
SEPARATOR = "\x00"  # in the skeleton's working string: a character that is not a letter or digit
COLLAPSED = "\x01"  # a repeated character folded into the one before it (not a separator)
REPEATS = re.compile(r"([^\x00\x01a-z0-9])((?:[\x00\x01]*\1)+)")
KEPT_SEGMENTS = re.compile(r"[^\x00\x01]+")


@dataclass
class Tables:
    """Per-character tables from the payload: look-alikes, traditional→simplified and the word fold."""

    confusables: dict[str, str]
    t2s: dict[str, str]
    fold: dict[str, str]


def is_word_char(ch: str) -> bool:
    """Letters and digits of any script are kept; everything else separates (spaces, symbols, marks)."""
    return unicodedata.category(ch)[0] in ("L", "N")


def is_latin(ch: str) -> bool:
    return "a" <= ch <= "z"


def base_chars(ch: str, tables: Tables) -> str:
    """NFKC, lower case, diacritics off (Latin, Greek, Cyrillic only), look-alikes and traditional mapped."""
    if ch in ZERO_WIDTH:
        return ""
    out = []
    for c in unicodedata.normalize("NFKC", ch).lower():
        if c in tables.confusables:
            c = tables.confusables[c]
        elif 0x00C0 <= ord(c) < 0x0530:
            c = "".join(d for d in unicodedata.normalize("NFD", c) if unicodedata.category(d) != "Mn") or c
        out.append(tables.t2s.get(c, c))
    return "".join(out)


class _PlainTable(dict):
    """ord → normalised string, filled on first sight of each character (for str.translate)."""

    def __init__(self, tables: Tables):
        super().__init__()
        self.tables = tables
        self.irregular: set[str] = set()  # characters that do not map to exactly one character

    def __missing__(self, key: int) -> str:
        value = base_chars(chr(key), self.tables)
        if len(value) != 1:
            self.irregular.add(chr(key))
        self[key] = value
        return value


class _SkeletonTable(dict):
    """ord of a plain character → its folded form, or SEPARATOR."""

    def __init__(self, tables: Tables):
        super().__init__()
        self.fold = tables.fold

    def __missing__(self, key: int) -> str:
        ch = chr(key)
        value = self.fold.get(ch, ch) if is_word_char(ch) else SEPARATOR
        self[key] = value
        return value


@dataclass
class Stream:
    """Normalised text and the way back to the original code points.

    Most characters map to exactly one; the few that do not (zero-width characters vanish, a ligature
    becomes two letters) are listed as (plain start, plain length, original index), in order.
    """

    text: str
    irregular_plain: list[int]
    irregular_length: list[int]
    irregular_origin: list[int]

    def orig(self, index: int) -> int:
        k = bisect_right(self.irregular_plain, index) - 1
        if k < 0:
            return index
        start, length = self.irregular_plain[k], self.irregular_length[k]
        if index < start + length:
            return self.irregular_origin[k]
        return self.irregular_origin[k] + 1 + index - start - length


@dataclass
class Skeleton:
    """The word matcher's string, with the way back to the plain stream and the separators it dropped."""

    text: str
    work: str  # the plain stream translated: folded characters, SEPARATOR, COLLAPSED
    seg_skeleton: list[int]  # skeleton index where each kept segment starts
    seg_plain: list[int]  # plain index where it starts

    def plain_index(self, index: int) -> int:
        k = bisect_right(self.seg_skeleton, index) - 1
        return self.seg_plain[k] + index - self.seg_skeleton[k]

    def gap_before(self, index: int) -> bool:
        """Whether a separator stood between skeleton characters index-1 and index."""
        if index == 0:
            return True
        return SEPARATOR in self.work[self.plain_index(index - 1) + 1:self.plain_index(index)]


class Normaliser:
    def __init__(self, tables: Tables):
        self.tables = tables
        self._plain = _PlainTable(tables)
        self._skeleton = _SkeletonTable(tables)
        self._irregular_key = -1
        self._irregular_re: re.Pattern | None = None

    def plain(self, text: str) -> Stream:
        """Every character normalised, separators kept: what the contact detectors read."""
        out = text.translate(self._plain)
        starts: list[int] = []
        lengths: list[int] = []
        origins: list[int] = []
        if not self._plain.irregular.isdisjoint(text):
            shift = 0
            for match in self._irregular_pattern().finditer(text):
                length = len(self._plain[ord(match.group(0))])
                starts.append(match.start() + shift)
                lengths.append(length)
                origins.append(match.start())
                shift += length - 1
        return Stream(out, starts, lengths, origins)

    def _irregular_pattern(self) -> re.Pattern:
        chars = self._plain.irregular
        if self._irregular_key != len(chars):
            self._irregular_re = re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]")
            self._irregular_key = len(chars)
        return self._irregular_re

    def skeleton(self, plain: Stream) -> Skeleton:
        """Separators dropped, the fold applied, repeated non-Latin characters collapsed ("私私下下" → "私下";
        English doubles letters, so Latin ones stay)."""
        work = plain.text.translate(self._skeleton)
        if REPEATS.search(work):
            work = REPEATS.sub(lambda m: m.group(1) + m.group(2).replace(m.group(1), COLLAPSED), work)
        seg_skeleton: list[int] = []
        seg_plain: list[int] = []
        parts: list[str] = []
        length = 0
        for match in KEPT_SEGMENTS.finditer(work):
            seg_skeleton.append(length)
            seg_plain.append(match.start())
            parts.append(match.group(0))
            length += match.end() - match.start()
        return Skeleton("".join(parts), work, seg_skeleton, seg_plain)

    def fold_word(self, word: str) -> str:
        """A dictionary word as the skeleton would read it."""
        return self.skeleton(self.plain(word)).text


def fold_word(word: str, tables: Tables) -> str:
    return Normaliser(tables).fold_word(word)
