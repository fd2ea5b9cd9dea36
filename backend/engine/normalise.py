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
from itertools import accumulate
from operator import add, sub

ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u2061", "\u2062", "\u2063"}
SEPARATOR = "\x00"  # in the skeleton's working string: a character that is not a letter or digit
COLLAPSED = "\x01"  # a repeated character folded into the one before it (not a separator)
REPEATS = re.compile(r"([^\x00\x01a-z0-9])((?:[\x00\x01]*\1)+)")


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


class _ComposedTable(dict):
    """ord of an original character → its skeleton working form (the plain table, then the skeleton's)."""

    def __init__(self, plain: _PlainTable, skeleton: _SkeletonTable):
        super().__init__()
        self.plain = plain
        self.skeleton = skeleton

    def __missing__(self, key: int) -> str:
        value = "".join(self.skeleton[ord(c)] for c in self.plain[key])
        self[key] = value
        return value


class Stream:
    """Normalised text and the way back to the original code points.

    Most characters map to exactly one; the few that do not (zero-width characters vanish, a ligature
    becomes two letters) are listed as (plain start, plain length, original index), in order. The text
    itself is made on first use: the word path reads the skeleton, which comes straight from the original.
    """

    __slots__ = ("original", "work", "_table", "_text", "irregular_plain", "irregular_length",
                 "irregular_origin")

    def __init__(self, original: str, work: str, table: dict, irregular_plain: list[int],
                 irregular_length: list[int], irregular_origin: list[int]):
        self.original = original
        self.work = work  # each plain character as the skeleton reads it (see Normaliser.skeleton)
        self._table = table
        self._text: str | None = None
        self.irregular_plain = irregular_plain
        self.irregular_length = irregular_length
        self.irregular_origin = irregular_origin

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.original.translate(self._table)
        return self._text

    def orig(self, index: int) -> int:
        k = bisect_right(self.irregular_plain, index) - 1
        if k < 0:
            return index
        start, length = self.irregular_plain[k], self.irregular_length[k]
        if index < start + length:
            return self.irregular_origin[k]
        return self.irregular_origin[k] + 1 + index - start - length


class Skeleton:
    """The word matcher's string, with the way back to the plain stream and the separators it dropped.

    The way back (where each kept segment starts) is worked out only when a match asks for it: most
    messages match nothing.
    """

    __slots__ = ("text", "work", "_starts", "_collapsed")

    def __init__(self, text: str, work: str):
        self.text = text
        self.work = work  # the plain stream translated: folded characters, SEPARATOR, COLLAPSED
        self._starts: list[int] | None = None  # skeleton index where each piece of `work` starts
        self._collapsed = COLLAPSED in work

    def _segments(self) -> None:
        # Every dropped character, a separator or a collapsed repeat, counts as a SEPARATOR here: cut at
        # each, `work` falls into pieces that are kept whole (some empty), one dropped character after each
        # but the last. str.split, len and accumulate all loop in C.
        work = self.work.replace(COLLAPSED, SEPARATOR) if self._collapsed else self.work
        self._starts = list(accumulate(map(len, work.split(SEPARATOR)), initial=0))

    def _piece(self, index: int) -> int:
        """How many pieces start at or before skeleton index `index`: one more than the number of the piece
        that holds it (empty pieces start where the next one does, so they come first)."""
        if self._starts is None:
            self._segments()
        return bisect_right(self._starts, index)

    def plain_index(self, index: int) -> int:
        # k pieces before the one that holds it: k dropped characters
        return index + self._piece(index) - 1

    def gap_before(self, index: int) -> bool:
        """Whether a separator stood between skeleton characters index-1 and index."""
        if index == 0:
            return True
        before, here = self._piece(index - 1), self._piece(index)
        if before == here:
            return False  # one piece: nothing was dropped between them
        if not self._collapsed:
            return True  # something was dropped, and only separators ever are
        return SEPARATOR in self.work[index + before - 1:index + here - 1]


def _collapse(match: re.Match) -> str:
    first, repeats = match.groups()
    return first + repeats.replace(first, COLLAPSED)


class Normaliser:
    def __init__(self, tables: Tables):
        self.tables = tables
        self._plain = _PlainTable(tables)
        self._skeleton = _SkeletonTable(tables)
        self._plain_skeleton = _ComposedTable(self._plain, self._skeleton)
        self._irregular_key = -1
        self._irregular_re: re.Pattern | None = None

    def plain(self, text: str) -> Stream:
        """Every character normalised, separators kept: what the contact detectors read."""
        # plain and skeleton tables composed: one pass that also meets every new character, so
        # `irregular` below is complete; the plain text itself is made only if a detector asks for it
        work = text.translate(self._plain_skeleton)
        irregular = self._irregular_pattern()
        origins = [match.start() for match in irregular.finditer(text)] if irregular is not None else []
        if not origins:
            return Stream(text, work, self._plain, [], [], [])
        # map and accumulate loop in C: a message full of zero-width characters stays cheap. Each irregular
        # character before the k-th moved it by its length less one: starts[k] = origin + lengths before - k.
        lengths = list(map(len, map(self._plain.__getitem__, map(ord, map(text.__getitem__, origins)))))
        starts = list(map(sub, map(add, origins, accumulate(lengths, initial=0)), range(len(origins))))
        return Stream(text, work, self._plain, starts, lengths, origins)

    def _irregular_pattern(self) -> re.Pattern | None:
        chars = self._plain.irregular
        if not chars:
            return None
        if self._irregular_key != len(chars):
            self._irregular_re = re.compile("[" + "".join(re.escape(c) for c in sorted(chars)) + "]")
            self._irregular_key = len(chars)
        return self._irregular_re

    def skeleton(self, plain: Stream) -> Skeleton:
        """Separators dropped, the fold applied, repeated non-Latin characters collapsed ("私私下下" → "私下";
        English doubles letters, so Latin ones stay)."""
        work = plain.work
        work = REPEATS.sub(_collapse, work)
        return Skeleton(work.replace(SEPARATOR, "").replace(COLLAPSED, ""), work)  # memchr speed

    def fold_word(self, word: str) -> str:
        """A dictionary word as the skeleton would read it."""
        return self.skeleton(self.plain(word)).text


def fold_word(word: str, tables: Tables) -> str:
    return Normaliser(tables).fold_word(word)
