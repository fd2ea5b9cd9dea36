"""The vault's cost per stored message: `vault.protect` as ingest calls it, one transaction per batch.

    .venv/bin/python bench/bench_protect.py [--words 100000] [--messages 300] [--batch 50]

A throwaway SQLite database with one organisation whose rules hold --words extra sensitive words (the
size of the rule set is what made looking it up per message expensive); every message carries a new
phone number, so each one also encrypts and stores an identifier. Prints milliseconds per message, with
and without an identifier, per batch transaction. No peer: this is Veil's own hot path, compared with
itself before a change (docs/performance.md).
"""

from __future__ import annotations

import argparse
import random
import string
import tempfile
import time

from flask_migrate import upgrade

from backend import create_app
from backend.config import TestConfig
from backend.extensions import db
from backend.models import RuleSetVersion
from backend.services import rule_sets, vault
from backend.services.tenants import create_tenant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--batch", type=int, default=50, help="messages per transaction, like an ingest batch")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="veil-bench-protect-")
    app = create_app({"INSTANCE_PATH": folder, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.db",
                      "VEIL_SOCKETIO_QUEUE": None}, config_class=TestConfig)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        tenant = create_tenant("Bench")
        rng = random.Random(1)
        content = rule_sets.default_rules()
        content["categories"]["bench"] = ["".join(rng.choice(string.ascii_lowercase) for _ in range(8))
                                          for _ in range(args.words)]
        db.session.add(RuleSetVersion(tenant_id=tenant.id, version=1, content=content, note="bench",
                                      sha256=rule_sets.content_hash(content)))
        db.session.commit()
        vault.protect(tenant.id, "warm-up 13800138000")  # compiles the rules once, as a server does
        db.session.commit()
        cases = (("with a new identifier", "您好，我的电话是 138 0013 {i:04d}，订单号 2026{i:06d} 请尽快发货"),
                 ("without identifiers", "您好，订单号 2026{i:06d} 已经发货，请注意查收，谢谢"))
        for label, text in cases:
            started = time.perf_counter()
            for i in range(args.messages):
                vault.protect(tenant.id, text.format(i=i))
                if (i + 1) % args.batch == 0:
                    db.session.commit()
            db.session.commit()
            per_message = (time.perf_counter() - started) / args.messages * 1000
            print(f"{args.words} words, {label}: {per_message:.2f} ms per message ({args.batch} per transaction)")


if __name__ == "__main__":
    main()
