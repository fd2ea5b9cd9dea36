"""Python engine against bare pyahocorasick and flashtext, on 1k, 10k and 100k-word dictionaries.

    python bench/bench_python.py [--sizes 1000,10000,100000] [--messages 2000]

For each size: automaton build time, check time per 1 KB message (p50, p99) and throughput, and recall on
the disguised-word families of the development corpus (the peers see the words as written). Needs
`pip install flashtext` (a benchmark-only peer; not a dependency of Veil).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import ahocorasick  # noqa: E402

from backend.engine import Engine, compile_rules, load_rules_folder  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"
CJK = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
LATIN = "abcdefghijklmnopqrstuvwxyz"


def make_words(n: int, rng: random.Random, base: list[str]) -> list[str]:
    words = list(base)
    while len(words) < n:
        if rng.random() < 0.5:
            words.append("".join(rng.choice(CJK) for _ in range(rng.randint(2, 5))))
        else:
            words.append("".join(rng.choice(LATIN) for _ in range(rng.randint(5, 10))))
    return words[:n]


def make_messages(count: int, rng: random.Random) -> list[str]:
    lines = [json.loads(x)["text"] for x in (CORPUS / "outgoing.jsonl").read_text(encoding="utf-8").splitlines()]
    messages = []
    for _ in range(count):
        parts, size = [], 0
        while size < 1024:
            part = rng.choice(lines)
            parts.append(part)
            size += len(part.encode("utf-8")) + 1
        messages.append(" ".join(parts)[:1024])
    return messages


def timed(fn, items):
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float], total_bytes: int) -> dict:
    ordered = sorted(times)
    return {"p50_ms": statistics.median(ordered) * 1e3, "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1e3,
            "mb_per_s": total_bytes / sum(times) / 1e6}


def recall_rows(corpus_rules: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(x) for x in (CORPUS / "outgoing.jsonl").read_text(encoding="utf-8").splitlines()]
    words_rows = [r["text"] for r in rows if r["family"].startswith("word_")]
    rules = load_rules_folder(corpus_rules)
    return words_rows, [w for ws in rules["categories"].values() for w in ws]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    try:
        from flashtext import KeywordProcessor
    except ImportError:
        print("flashtext is not installed: pip install flashtext", file=sys.stderr)
        return 2
    rng = random.Random(20261123)
    messages = make_messages(args.messages, rng)
    total_bytes = sum(len(m.encode("utf-8")) for m in messages)
    disguised, corpus_words = recall_rows(CORPUS / "rules")
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"{len(messages)} messages of ~1 KB")
    print("veil words: normalise + sensitive words; veil check: also every contact detector.")
    print(f"{'words':>7} {'engine':<14} {'build s':>8} {'p50 ms':>8} {'p99 ms':>8} {'MB/s':>7} {'recall':>7}")
    for size in [int(s) for s in args.sizes.split(",")]:
        words = make_words(size, rng, corpus_words)
        rules = {"categories": {"bench": words}, "allow": [], "settings": {}}
        start = time.perf_counter()
        payload = compile_rules(rules)
        print(f"{size:>7} (compiling the payload, pinyin included: {time.perf_counter() - start:.2f} s)")
        start = time.perf_counter()
        engine = Engine(payload)
        build_s = time.perf_counter() - start
        veil_times = timed(engine.check, messages)
        veil_recall = sum(engine.check(t).action != "allow" for t in disguised) / len(disguised)
        words_times = timed(engine.word_findings, messages)
        words_recall = sum(bool(engine.word_findings(t)) for t in disguised) / len(disguised)

        start = time.perf_counter()
        automaton = ahocorasick.Automaton()
        for word in words:
            automaton.add_word(word.lower(), word)
        automaton.make_automaton()
        aho_build = time.perf_counter() - start
        aho_times = timed(lambda m, a=automaton: list(a.iter(m.lower())), messages)
        aho_recall = sum(bool(list(automaton.iter(t.lower()))) for t in disguised) / len(disguised)

        start = time.perf_counter()
        flash = KeywordProcessor()
        for word in words:
            flash.add_keyword(word)
        flash_build = time.perf_counter() - start
        flash_times = timed(flash.extract_keywords, messages)
        flash_recall = sum(bool(flash.extract_keywords(t)) for t in disguised) / len(disguised)

        for name, build, times, recall in (
            ("veil words", build_s, words_times, words_recall),
            ("veil check", build_s, veil_times, veil_recall),
            ("pyahocorasick", aho_build, aho_times, aho_recall),
            ("flashtext", flash_build, flash_times, flash_recall),
        ):
            row = summary(times, total_bytes)
            print(f"{size:>7} {name:<14} {build:>8.3f} {row['p50_ms']:>8.3f} {row['p99_ms']:>8.3f} "
                  f"{row['mb_per_s']:>7.2f} {recall:>7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
