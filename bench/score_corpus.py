"""Score the checker and the masker on a labelled corpus (default: ../shared/corpus).

    python bench/score_corpus.py [--corpus DIR] [--rules DIR]

Prints recall per family for outgoing messages, the false-block rate on benign ones, and for incoming
messages how many identifiers stayed readable and how many "keep" strings were damaged.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backend.engine import Engine, compile_rules, load_rules_folder  # noqa: E402


def readable(identifier: str, masked: str) -> bool:
    """An identifier is still readable if it, or its digits beyond the last four, survive masking."""
    if identifier in masked:
        return True
    if "@" in identifier:
        local = identifier.split("@")[0]
        return len(local) >= 3 and local in masked
    digits = re.sub(r"\D", "", identifier)
    masked_digits = re.sub(r"[^0-9*]", "", masked)
    return len(digits) > 4 and digits[:-4] in re.sub(r"\D", "", masked_digits)


def score(corpus: Path, rules: Path, show: int) -> dict:
    engine = Engine(compile_rules(load_rules_folder(rules)))
    totals, hits = Counter(), Counter()
    misses: list[str] = []
    for line in (corpus / "outgoing.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        result = engine.check(row["text"], conversation=row.get("conversation"))
        blocked = result.action == "block"
        totals[row["family"]] += 1
        if blocked == (row["expect"] == "block"):
            hits[row["family"]] += 1
        elif len(misses) < show:
            misses.append(f"  {row['family']:<20} expect={row['expect']:<5} {row['text']!r} -> {result.action}")
    report = {"families": {}}
    block_total = sum(v for k, v in totals.items() if k != "benign")
    block_hits = sum(v for k, v in hits.items() if k != "benign")
    for family in sorted(totals):
        report["families"][family] = {"n": totals[family], "correct": hits[family] / totals[family]}
    report["recall"] = block_hits / block_total if block_total else 1.0
    report["false_block_rate"] = 1 - hits["benign"] / totals["benign"] if totals["benign"] else 0.0

    leaked = damaged = identifiers = keeps = 0
    for line in (corpus / "incoming.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        masked = engine.mask(row["text"]).text
        for identifier in row["identifiers"]:
            identifiers += 1
            if readable(identifier, masked):
                leaked += 1
                if len(misses) < show:
                    misses.append(f"  leaked {identifier!r} in {masked!r}")
        for keep in row["keep"]:
            keeps += 1
            if keep not in masked:
                damaged += 1
                if len(misses) < show:
                    misses.append(f"  damaged {keep!r} in {masked!r}")
    report["identifiers_masked"] = 1 - leaked / identifiers if identifiers else 1.0
    report["keep_intact"] = 1 - damaged / keeps if keeps else 1.0
    report["misses"] = misses
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--rules", type=Path, default=None, help="default: the corpus's own rules/")
    parser.add_argument("--show", type=int, default=30, help="how many misses to list")
    args = parser.parse_args()
    report = score(args.corpus, args.rules or args.corpus / "rules", args.show)
    print(f"{'family':<22}{'n':>5}  correct")
    for family, row in report["families"].items():
        print(f"{family:<22}{row['n']:>5}  {row['correct']:.3f}")
    print(f"\nrecall (block families): {report['recall']:.4f}")
    print(f"false blocks (benign):   {report['false_block_rate']:.4f}")
    print(f"identifiers masked:      {report['identifiers_masked']:.4f}")
    print(f"keep strings intact:     {report['keep_intact']:.4f}")
    if report["misses"]:
        print("\nmisses:")
        print("\n".join(report["misses"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
