"""The normaliser's ways back to the original: worked out in C-speed strides, checked here character by
character against the plain definition on seeded random texts."""

from __future__ import annotations

import random

import pytest

from backend.engine.normalise import COLLAPSED, SEPARATOR, Normaliser, Tables, base_chars
from backend.engine.rules import SHARED_RULES, compile_rules, load_rules_folder

PIECES = [
    *"ab1 ,.-_私下交易", "私私", "下下下", "哈 哈", "ﬁ", "ﬃ", "\u200b", "\ufeff", "\u00ad", "ｐａｙ", "É", "臺灣",
    "😀", "𠀀", "  ", "p a y m e", "x\u200by",
]


@pytest.fixture(scope="module")
def normaliser() -> Normaliser:
    payload = compile_rules(load_rules_folder(SHARED_RULES / "default"))
    return Normaliser(Tables(**payload["tables"]))


def texts(count: int) -> list[str]:
    rng = random.Random(20261123)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30))) for _ in range(count)]


def test_skeleton_maps_back_to_the_plain_stream(normaliser):
    for text in texts(2000):
        skeleton = normaliser.skeleton(normaliser.plain(text))
        kept = [i for i, ch in enumerate(skeleton.work) if ch not in (SEPARATOR, COLLAPSED)]
        assert len(kept) == len(skeleton.text), repr(text)
        for index, plain_index in enumerate(kept):
            assert skeleton.plain_index(index) == plain_index, (text, index)
            gap = index == 0 or SEPARATOR in skeleton.work[kept[index - 1] + 1:plain_index]
            assert skeleton.gap_before(index) == gap, (text, index)


def test_plain_stream_maps_back_to_the_original(normaliser):
    for text in texts(2000):
        stream = normaliser.plain(text)
        origin = [index for index, ch in enumerate(text) for _ in base_chars(ch, normaliser.tables)]
        assert len(origin) == len(stream.text), repr(text)
        assert [stream.orig(k) for k in range(len(origin))] == origin, repr(text)
