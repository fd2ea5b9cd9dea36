"""`veil check` and `veil mask`: JSON Lines in, one answer line per input line, in order.

A malformed line gets {"error": ...} in its place and the rest are still processed; the caller exits 1.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from itertools import accumulate

from backend.engine.checker import Engine

MAX_LINE_BYTES = 1024 * 1024  # a chat message is never this long; a 10 MB line is refused, not read in full
# A row is two levels deep. Deeper lines are refused before parsing, by the same count in both engines:
# Python's parser would otherwise give up at a depth that depends on its stack, JavaScript's never.
MAX_DEPTH = 100
JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
BRACKET = re.compile(r"[][{}]")
DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# "at": when the message was sent, in seconds since 1970, for the split-number window. Bounded so that
# both engines do the same exact arithmetic on it (JavaScript numbers are exact integers up to 2**53).
MAX_AT = 1e11
AT_ERROR = "\"at\" must be a time in seconds since 1970 (a number from 0 to 1e11)"


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting outside JSON strings (a rough count: it also runs on malformed text)."""
    brackets = BRACKET.findall(JSON_STRING.sub("", text))
    return max(accumulate(map(DEPTH_STEP.__getitem__, brackets)), default=0)


def parse_line(raw: bytes) -> tuple[dict | None, str | None]:
    if len(raw) > MAX_LINE_BYTES:
        return None, f"line longer than {MAX_LINE_BYTES} bytes"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start})"
    if nesting_depth(text) > MAX_DEPTH:
        return None, f"not JSON: nested more than {MAX_DEPTH} levels deep"
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(row, dict):
        return None, "each line must be a JSON object"
    if not isinstance(row.get("text"), str):
        return None, "\"text\" must be a string"
    if any("\ud800" <= ch <= "\udfff" for ch in row["text"]):
        return None, "\"text\" holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text"
    if row.get("direction", "out") not in ("in", "out"):
        return None, "\"direction\" must be \"in\" or \"out\""
    conversation = row.get("conversation")
    if conversation is not None and not isinstance(conversation, str | int):
        return None, "\"conversation\" must be a string or a number"
    at = row.get("at")
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float) or not 0 <= at <= MAX_AT):
        return None, AT_ERROR
    return row, None


def read_lines(stream) -> Iterator[bytes]:
    """Lines of a binary stream, each cut at MAX_LINE_BYTES + 1 so a huge line never sits in memory whole."""
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while True:  # skip the rest of the oversized line
                rest = stream.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
        stripped = raw.rstrip(b"\r\n")
        if stripped.strip():
            yield stripped


def run(engine: Engine, lines: Iterable[bytes], mode: str) -> Iterator[tuple[dict, bool]]:
    """(answer, ok) per input line."""
    sys.set_int_max_str_digits(0)  # an id may be any integer JSON allows, as in the JavaScript engine
    for raw in lines:
        row, error = parse_line(raw)
        if error:
            yield {"error": error}, False
            continue
        if mode == "check":
            conversation = row.get("conversation")
            result = engine.check(row["text"], direction=row.get("direction", "out"),
                                  conversation=None if conversation is None else str(conversation),
                                  at=row.get("at"))
            yield {"id": row.get("id"), **result.to_dict()}, True
        else:
            masked = engine.mask(row["text"])
            yield {"id": row.get("id"), "text": masked.text, "spans": masked.spans}, True
