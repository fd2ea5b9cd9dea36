"""Every conformance vector in shared_rules/vectors/ passes on the Python engine.

Each file is one sequence: a fresh engine per file, lines in order (the window vectors depend on it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from backend.engine import Engine, compile_rules, load_rules_folder
from backend.engine.rules import SHARED_RULES

VECTORS = sorted((SHARED_RULES / "vectors").glob("*.jsonl"))


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def payload():
    return compile_rules(load_rules_folder(SHARED_RULES / "default"))


def project(result) -> dict:
    return {"action": result.action,
            "findings": [{"type": f.type, "category": f.category, "start": f.start, "end": f.end}
                         for f in result.findings]}


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vectors(payload, path):
    engine = Engine(payload)
    for vector in load(path):
        if vector["op"] == "check":
            got = project(engine.check(vector["text"], conversation=vector.get("conversation"),
                                       direction=vector.get("direction", "out"), at=vector.get("at")))
        else:
            masked = engine.mask(vector["text"])
            got = {"text": masked.text, "spans": masked.spans}
        assert got == vector["expect"], vector["id"]


def test_vector_files_are_sound():
    assert len(VECTORS) >= 5
    ids = []
    for path in VECTORS:
        for vector in load(path):
            ids.append(vector["id"])
            assert set(vector) <= {"id", "op", "text", "conversation", "direction", "at", "expect",
                                   "note"}, vector["id"]
            assert vector["op"] in ("check", "mask")
            assert re.fullmatch(rf"{path.stem}-\d{{3}}", vector["id"]), vector["id"]
            if vector["op"] == "check":
                for finding in vector["expect"]["findings"]:
                    assert 0 <= finding["start"] < finding["end"] <= len(vector["text"])
    assert len(ids) == len(set(ids)), "vector ids are unique"


def test_shipped_rules_are_sorted_free_of_duplicates_and_compile():
    default = SHARED_RULES / "default"
    for path in [*sorted((default / "sensitive").glob("*.txt")), default / "allow.txt"]:
        words = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith("#")]
        assert len(words) == len(set(words)), f"duplicate entries in {path.name}"
    payload = compile_rules(load_rules_folder(default))
    assert payload["settings"]["actions"]["abuse"] == "warn"
