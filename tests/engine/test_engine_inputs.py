"""Bad input to the engine and its command line gets a clear error or is handled, never a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from backend.engine import Engine, RulesError, compile_rules, load_rules_folder
from backend.engine.rules import SHARED_RULES


def veil(*args: str, stdin: bytes) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], input=stdin, capture_output=True, env=env,
                          timeout=120)


def test_rules_folder_errors(tmp_path):
    with pytest.raises(RulesError, match="not a folder"):
        load_rules_folder(tmp_path / "missing")
    with pytest.raises(RulesError, match="not a rules folder"):
        load_rules_folder(tmp_path)
    (tmp_path / "sensitive").mkdir()
    (tmp_path / "sensitive" / "bad.txt").write_bytes(b"ok\n\xff\xfe broken\n")
    with pytest.raises(RulesError, match=r"bad\.txt: not UTF-8"):
        load_rules_folder(tmp_path)
    (tmp_path / "sensitive" / "bad.txt").write_bytes("\ufeff# words\r\n私下交易\r\n\r\npay me directly\r\n".encode())
    rules = load_rules_folder(tmp_path)
    assert rules["categories"] == {"bad": ["私下交易", "pay me directly"]}, "a BOM and CRLF are fine"
    (tmp_path / "settings.toml").write_text("[actions]\nbad = 'explode'\n", encoding="utf-8")
    with pytest.raises(RulesError, match="action for 'bad'"):
        compile_rules(load_rules_folder(tmp_path))
    (tmp_path / "settings.toml").write_text("[actions\n", encoding="utf-8")
    with pytest.raises(RulesError, match="settings.toml"):
        load_rules_folder(tmp_path)


def test_an_allow_only_folder_compiles_and_flags_only_contacts(tmp_path):
    (tmp_path / "allow.txt").write_text("400-800-1234\n", encoding="utf-8")
    engine = Engine(compile_rules(load_rules_folder(tmp_path)))
    assert engine.check("私下交易").action == "allow"
    assert engine.check("13812345678").action == "block"


def test_check_command_answers_every_line_in_order():
    lines = [
        json.dumps({"id": 1, "text": "私下交易"}, ensure_ascii=False).encode(),
        b"{not json",
        b'{"id": 2, "text": "\xff\xfe"}',
        json.dumps({"id": 3, "text": 42}).encode(),
        json.dumps({"id": 4, "text": "ok", "direction": "sideways"}).encode(),
        b"[1, 2]",
        b'{"id": 5, "text": "' + b"a" * (10 * 1024 * 1024) + b'"}',
        json.dumps({"id": 6, "text": "加我微信 wxid_abc123", "conversation": 7}, ensure_ascii=False).encode(),
        b'{"id": 7, "text": "\\ud800 lone"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": ' + b"9" * 5000 + b', "text": "ok"}',
    ]
    done = veil("check", stdin=b"\n".join(lines) + b"\n")
    assert done.returncode == 1, "malformed lines make the exit status 1"
    sys.set_int_max_str_digits(0)  # the answer echoes a 5,000-digit id
    answers = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert len(answers) == len(lines)
    assert answers[0]["id"] == 1 and answers[0]["action"] == "block"
    assert answers[1]["error"].startswith("not JSON")
    assert answers[2]["error"].startswith("not UTF-8")
    assert answers[3]["error"] == '"text" must be a string'
    assert answers[4]["error"] == '"direction" must be "in" or "out"'
    assert answers[5]["error"] == "each line must be a JSON object"
    assert answers[6]["error"].startswith("line longer than")
    assert answers[7]["id"] == 6 and answers[7]["findings"][0]["category"] == "handle"
    assert "lone surrogate" in answers[8]["error"]
    assert answers[9]["error"] == "not JSON: nested more than 100 levels deep"
    assert answers[10]["id"] == int("9" * 5000) and answers[10]["action"] == "allow"


def test_mask_command_and_rules_option(tmp_path):
    done = veil("mask", "--rules", str(SHARED_RULES / "default"),
                stdin='{"id":"a","text":"电话 13812345678"}\n'.encode())
    assert done.returncode == 0
    answer = json.loads(done.stdout)
    assert answer == {"id": "a", "text": "电话 *******5678", "spans": [{"start": 3, "end": 14, "type": "phone"}]}
    missing = veil("check", "--rules", str(tmp_path / "nope"), stdin=b"")
    assert missing.returncode == 2 and "not a folder" in missing.stderr.decode()


def test_masking_can_be_switched_off(tmp_path):
    (tmp_path / "settings.toml").write_text("[mask]\nincoming = false\n", encoding="utf-8")
    engine = Engine(compile_rules(load_rules_folder(tmp_path)))
    assert engine.mask("电话 13812345678").text == "电话 13812345678"
    assert engine.check("电话 13812345678", direction="in").findings, "identifiers are still reported"
