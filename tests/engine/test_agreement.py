"""The Python and JavaScript engines answer every input identically, byte for byte.

Both run behind the same command (`veil check|mask --engine python|js`), so this compares what a caller
sees: findings, offsets, masked text, error lines and exit status. Inputs: the dev corpus, the shared
vectors, hostile lines, seeded random lines, and every Unicode code point through the normaliser.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
VECTORS = ROOT / "shared_rules" / "vectors"
VEIL = Path(sys.executable).with_name("veil")

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(not VEIL.exists(), reason=f"{VEIL} is not installed (pip install -e .)"),
]


def run_veil(mode: str, engine: str, data: bytes, rules: Path | None = None) -> tuple[int, list[str]]:
    command = [str(VEIL), mode, "--engine", engine] + (["--rules", str(rules)] if rules else [])
    done = subprocess.run(command, input=data, capture_output=True, check=False, timeout=300)
    assert not done.stderr, done.stderr.decode("utf-8", "replace")
    return done.returncode, done.stdout.decode("utf-8").splitlines()


def assert_agree(mode: str, data: bytes, rules: Path | None = None) -> list[str]:
    python_status, python_lines = run_veil(mode, "python", data, rules)
    js_status, js_lines = run_veil(mode, "js", data, rules)
    inputs = [line for line in data.split(b"\n") if line.strip()]
    for number, (expected, actual) in enumerate(zip(python_lines, js_lines, strict=False)):
        shown = inputs[number][:300] if number < len(inputs) else b"?"
        assert actual == expected, f"{mode}, answer {number + 1} differs; input {shown!r}"
    assert len(js_lines) == len(python_lines)
    assert js_status == python_status
    return python_lines


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


# ---- the corpus and the vectors -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not (CORPUS / "outgoing.jsonl").exists():
        pytest.skip(f"no dev corpus at {CORPUS}")
    return CORPUS


def test_corpus_check(corpus):
    answers = assert_agree("check", (corpus / "outgoing.jsonl").read_bytes())
    assert any('"findings": []' not in line for line in answers)


def test_corpus_mask(corpus):
    assert_agree("mask", (corpus / "incoming.jsonl").read_bytes())


def test_corpus_rules(corpus):
    if not (corpus / "rules").is_dir():
        pytest.skip("the corpus has no rules folder")
    assert_agree("check", (corpus / "outgoing.jsonl").read_bytes(), rules=corpus / "rules")


@pytest.mark.parametrize("op", ["check", "mask"])
def test_vectors(op):
    lines = []
    for path in sorted(VECTORS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            if row.get("op") == op:
                # Each file is its own sequence: its conversations are its own.
                if "conversation" in row:
                    row["conversation"] = f"{path.stem}/{row['conversation']}"
                lines.append({k: row[k] for k in ("id", "text", "conversation", "direction", "at") if k in row})
    if not lines:
        pytest.skip(f"no {op} vectors in {VECTORS}")
    assert_agree(op, jsonl(lines))


# ---- hostile input --------------------------------------------------------------------------------------

NASTY_TEXTS = [
    "",
    " ",
    "👋😀 私下交易 13812345678 👨‍👩‍👧‍👦",
    "𠀀𠀁𠀂 1 3 8 1 2 3 4 5 6 7 8",
    "𝟏𝟑𝟖𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖 and 🄱🄻🄾🄲🄺",
    "e\u0301 pay\u0301 me\u0308 dire\u0300ctly",
    "\u05e9\u05dc\u05d5\u05dd 13812345678 \u0645\u0631\u062d\u0628\u0627 \u202e13812345678\u202c",
    "\u0661\u0663\u0668\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",
    "Ｗｅｃｈａｔ：ａｂｃ＿１２３ ＷＸ　ｊａｎｅ＿ｄｏｅ",
    "jane dot doe at proton dot me / JANE.DOE@PROTON.ME\n\tx",
    "ǅ ǈ ǋ ß ẞ İ ı Σ ς ﬁ ﬃ ㏒ ½ ⅷ ⑳ ㉑",
    "\x00\x01\x02\x1f\x7f \u2028\u2029 \ufeff\u200b\u200d",
    "\U0001ccf1\U0001ccf3\U0001ccf8 \U00031350\U0002ebf0 \u0870\u0897",  # newer than Python's Unicode
    "t.me/veil_shop wa.me/8613812345678 0x52908400098527886E0F7030069857D2E4169EE7",
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
    "私私私私私下下下下交交交易易易 s i x i a j i a o y i",
]


def nasty_rows() -> list[dict]:
    rows = [{"id": i, "text": text, "conversation": "c1"} for i, text in enumerate(NASTY_TEXTS)]
    rows += [{"id": f"in{i}", "text": text, "direction": "in"} for i, text in enumerate(NASTY_TEXTS)]
    # 200 KB of ordinary text with a few findings (a text full of them is a benchmark, not a test)
    long_text = ("这是一段很长的普通文字，没有联系方式。Just ordinary words, 👋 nothing else. " * 4000)[:200_000]
    long_text = long_text[:100_000] + " 13812345678 jane@proton.me 私下交易 " + long_text[100_000:]
    # long runs that once took a backtracking pattern quadratic time (a whole 64K message of digits took
    # minutes): here they must simply finish, alike in both engines
    runs = [{"id": f"run{i}", "text": text} for i, text in enumerate(["1" * 60_000, "1," * 30_000, "1 %" * 20_000])]
    return rows + [{"id": "long", "text": long_text}] + runs


MALFORMED = [
    b"not json", b"{", b"[1, 2]", b'"text"', b"{'text': 'x'}", b'{"text": 5}', b'{"text": "a",}',
    b'{"text": "a" "id": 1}', b'{"text" "a"}', b'{"text": "a\\x"}', b'{"text": "\\u12"}',
    b'{"text": "a\tb"}', b'{"text": "a"} x', b'{"text": "a", "direction": "up"}', b'{"text": "a", "direction": null}',
    b'{"text": "a", "conversation": 1.5}', b'{"text": "a", "conversation": [1]}',
    b'{"text": "a", "conversation": true}',
    b"\xef\xbb\xbf{\"text\": \"bom\"}", b"\xff\xfe{}", b'{"text": "\xe4\xb8"}', b'{"text": "\xed\xa0\x80"}',
    b'{"text": "\xc0\xaf"}', b'{"text": "\xf4\x90\x80\x80"}', b'{"text": "caf\xc3\xa9"}', b"   ", b"\x0b\x0c",
    b'{"id": 1e400, "text": "a"}', b'{"id": -0.0, "text": "a"}', b'{"id": 1e16, "text": "a"}',
    b'{"id": 0.00001, "text": "a"}',
    b'{"id": 123456789012345678901234567890, "text": "a"}', b'{"id": NaN, "text": "a"}',
    b'{"id": {"b": 1, "2": [], "b": 3}, "text": "a"}',
    b'{"id": "\\u00e9\\ud83d\\ude00\\n\\"", "text": "\\/\\b\\f\\r\\t"}', b'{"text": "a"}\r', b'{"text": "a\rb"}\r\r',
    # nesting: at the limit, over it, far over it, brackets inside strings, a broken string
    b'{"text": "a", "id": ' + b"[" * 99 + b"]" * 99 + b"}", b'{"text": "a", "id": ' + b"[" * 100 + b"]" * 100 + b"}",
    b"[" * 5000 + b"]" * 5000, b'{"text": "' + b"[" * 500 + b'", "id": "\\"{{{"}', b'{"text": "\\' + b"[" * 200,
]


def malformed_lines() -> bytes:
    too_long = b'{"text": "' + b"a" * (1024 * 1024) + b'"}'
    return b"\n".join([*MALFORMED, too_long, b'{"text": "after the long line"}']) + b"\n"


# ---- seeded random lines --------------------------------------------------------------------------------

PIECES = [
    *"0123456789 -.+()*#:：号是oliOIxX一二三壹两〇零八九@_=/\\'`|~•·、。～—\t\"", "**", "one", "two", "zero", "seven",
    " at ", " dot ", "(at)", "[dot]", "点", "艾特", "gmail", ".com", "qq", "wx", "vx", "微信", "whatsapp", "telegram",
    "line", "tg", "+v", "id", "me", "is", "的", "账号", "号码", "t.me/", "wa.me/", "https://", "0x", "bc1",
    "私下", "交易",
    "私私", "pay me", "repay", "idiot", "1d1ot", "傻子", "gundan", "sixia", "😀", "𠀀", "𝟏", "①", "１", "Ｏ",
    "＠", "ﬁ",
    "é", "а", "о", "\u200b", "\ufeff", "\u0301", "\u05d0", "ß", "İ", "Σ", "¥", "%", "2026-12-15", "12:30",
    "1,234", "3.14",
    "订单", "单号", "order", "电话", "call", "½", "臺灣", "138", "13812345678", "4111111111111111",
    "330106196002269159",
    "11010519491231002x", "400", "800", "+86", "0086", "jane", "doe", "proton", "\U0001ccf1", "\U00031350",
]


def random_rows(seed: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        row = {"id": i, "text": "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 24)))}
        if rng.random() < 0.5:
            row["conversation"] = f"c{rng.randint(0, 4)}"
        if rng.random() < 0.2:
            row["direction"] = "in"
        rows.append(row)
    return rows


@pytest.mark.parametrize("mode", ["check", "mask"])
def test_hostile_and_random_lines(mode):
    """Emoji, astral and combining characters, RTL, control characters, a 200 KB text, malformed JSON,
    invalid UTF-8, an over-long line, odd numbers as ids, then seeded random texts; the last line has no
    newline. (Lone surrogates cannot be written in UTF-8, and Python cannot print them back.)"""
    data = jsonl(nasty_rows()) + malformed_lines() + jsonl(random_rows(1, 3000))[:-1]
    answers = assert_agree(mode, data)
    assert any('"error": "not UTF-8 (byte' in line for line in answers)
    assert any('"error": "line longer than 1048576 bytes"' in line for line in answers)
    assert any('"error": "not JSON: ' in line for line in answers)


# ---- every code point through the normaliser -----------------------------------------------------------

JS_NORMALISE_ALL = """
import { readFileSync } from 'node:fs';
import { Tables, baseChars, isWordChar } from './extension/engine/normalise.js';
const payload = JSON.parse(readFileSync(0, 'utf8'));
const tables = new Tables(payload.tables, payload.unicode);
const out = [];
for (let cp = 0; cp < 0x110000; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  const base = baseChars(String.fromCodePoint(cp), tables);
  const points = Array.from(base);
  const hex = points.map((c) => c.codePointAt(0).toString(16)).join(' ');
  out.push(hex + '|' + points.map((c) => isWordChar(c, tables) ? 1 : 0).join(''));
}
process.stdout.write(out.join('\\n') + '\\n');
"""


def test_every_code_point_normalises_alike():
    from backend.engine.normalise import Tables, base_chars, is_word_char
    from backend.engine.rules import compile_rules, load_rules_folder

    payload = compile_rules(load_rules_folder(ROOT / "shared_rules" / "default"))
    tables = Tables(**payload["tables"])
    done = subprocess.run(["node", "--input-type=module", "-e", JS_NORMALISE_ALL], cwd=ROOT, check=True,
                          input=json.dumps(payload).encode(), capture_output=True, timeout=300)
    js_lines = done.stdout.decode().splitlines()
    mismatches = []
    index = 0
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        base = base_chars(chr(cp), tables)
        flags = "".join("1" if is_word_char(c) else "0" for c in base)
        expected = " ".join(f"{ord(c):x}" for c in base) + "|" + flags
        if js_lines[index] != expected:
            mismatches.append(f"U+{cp:04X}: python {expected!r}, js {js_lines[index]!r}")
        index += 1
    assert not mismatches, f"{len(mismatches)} code points differ, e.g. {mismatches[:5]}"


def test_payload_carries_this_pythons_unicode_table():
    """The JavaScript engine learns from the payload which code points the Python side does not know
    (tests/js/engine_normalise.test.js shows it obeys the table), so the two agree whatever Unicode the
    browser has, and a Python upgrade reaches extensions with the next payload."""
    from backend.engine.rules import compile_rules, load_rules_folder

    def unassigned(cp: int) -> bool:
        return 0 <= cp < 0x110000 and unicodedata.category(chr(cp)) == "Cn"

    table = compile_rules(load_rules_folder(ROOT / "shared_rules" / "default"))["unicode"]
    assert table["version"] == unicodedata.unidata_version
    last, listed = 0, 0
    for pair in table["unassigned"].split(","):  # "gap+length" in hex, the gap from the range before
        gap, length = (int(part, 16) for part in pair.split("+"))
        start, last = last + gap, last + gap + length
        # each range is whole: unassigned at both ends, assigned just outside them
        assert unassigned(start) and unassigned(last), hex(start)
        assert not unassigned(start - 1) and not unassigned(last + 1), hex(start)
        listed += length + 1
    assert listed == sum(map(unassigned, range(0x110000)))
