"""Sensitive words: an Aho-Corasick automaton over the skeleton (see normalise.Normaliser.skeleton)."""

from __future__ import annotations

from typing import NamedTuple

import ahocorasick

from backend.engine.normalise import Skeleton, is_latin


class WordHit(NamedTuple):  # a tuple: a message can have many, and a frozen dataclass is slow to make
    start: int  # skeleton index of the first character
    end: int  # skeleton index after the last character
    category: str
    word: str


def build_automaton(keys: dict[str, list[tuple[str, str]]]) -> ahocorasick.Automaton | None:
    if not keys:
        return None
    automaton = ahocorasick.Automaton()
    for key, values in keys.items():
        automaton.add_word(key, (len(key), tuple(values)))
    automaton.make_automaton()
    return automaton


def bounded(skeleton: Skeleton, start: int, end: int) -> bool:
    """A match that begins or ends with a Latin letter must not sit inside a longer Latin word.

    A boundary is a non-Latin neighbour, the end of the text, or a separator in the original text
    between the match and its neighbour ("repay me" is not "pay me"; "p a y  m e" still is).
    """
    text = skeleton.text
    if is_latin(text[start]) and start > 0 and is_latin(text[start - 1]) and not skeleton.gap_before(start):
        return False
    if is_latin(text[end - 1]) and end < len(text) and is_latin(text[end]) and not skeleton.gap_before(end):
        return False
    return True


def find_words(automaton, skeleton: Skeleton) -> list[WordHit]:
    if automaton is None or not skeleton.text:
        return []
    hits = []
    for last, (length, values) in automaton.iter(skeleton.text):
        start, end = last - length + 1, last + 1
        if bounded(skeleton, start, end):
            for category, word in values:
                hits.append(WordHit(start, end, category, word))
    return hits
