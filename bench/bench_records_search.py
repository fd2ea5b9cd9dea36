"""Records search at one million messages, against the plain LIKE '%…%' scan a peer would write.

    python bench/bench_records_search.py [--messages 1000000] [--runs 30] [--sqlite PATH]
                                         [--postgres URL [--schema bench_records]] [--reuse]

Builds one tenant (100 agents in 5 departments, 200 chat accounts, 50,000 conversations) and
`--messages` messages over 180 days, drawn from the development corpus (Chinese and English chat lines,
two lines joined in a third of them); 3 % of the messages are edited and 0.5 % deleted. The data goes in
with the migrations' triggers and indexes in place on SQLite; on PostgreSQL it is COPYed with the
message indexes dropped and then rebuilt, as a bulk load would be. `--reuse` skips the build when the
database already holds the data.

Then each search runs `--runs` times after one warm-up, through `backend.services.records` as the panel
calls it (first page of 50, newest first), and the peer's query on the same data: a join of message and
conversation with `text LIKE '%…%'` (ILIKE on PostgreSQL, with bitmap scans off so the trigram indexes
stay unused), ORDER BY sent_at DESC LIMIT 50, and OFFSET for deep pages. Then the conversation list with
the same kinds of filters (no peer). Times in ms, p50 and p99.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402

from backend import create_app  # noqa: E402
from backend.config import TestConfig, normalise_db_url  # noqa: E402
from backend.extensions import db  # noqa: E402
from backend.models import Role, User  # noqa: E402
from backend.services import records  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus"
FALLBACK_LINES = ["您好，请问这个价格可以再便宜一点吗", "我们明天发货，请留意短信", "can you send the invoice please",
                  "我们可以私下交易吗", "the parcel arrived damaged", "好的，谢谢您的耐心等待"]
START = datetime(2026, 5, 27, tzinfo=UTC)
SPAN = timedelta(days=180)
DEPARTMENTS, AGENTS_PER_DEPARTMENT, ACCOUNTS_PER_AGENT, CONVERSATIONS = 5, 20, 2, 50_000
RARE_CODE, RARE_COUNT = "XK29退款码", 20
BATCH = 20_000


def corpus_lines() -> list[str]:
    lines = []
    for name in ("incoming.jsonl", "outgoing.jsonl"):
        path = CORPUS / name
        if path.exists():
            lines += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return lines or FALLBACK_LINES


def sqlite_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class Progress:
    """One line on stderr, rewritten: rows so far, rate, time left."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.start, self.last = label, total, time.perf_counter(), 0.0

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if self.last < 0 or (now - self.last < 0.5 and done < self.total):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        left = (self.total - done) / rate if rate else 0
        sys.stderr.write(f"\r{self.label}: {done:,}/{self.total:,} ({100 * done / self.total:5.1f} %), "
                         f"{rate:,.0f}/s, {left:4.0f} s left   ")
        sys.stderr.flush()
        if done >= self.total:
            sys.stderr.write(f"\r{self.label}: {done:,} in {now - self.start:.1f} s ({rate:,.0f}/s)" + " " * 30 + "\n")
            self.last = -1.0  # finished: later calls print nothing


# ---- data ------------------------------------------------------------------------------------------------

def build_people(app) -> dict:
    """Tenant, departments, agents, a supervisor of the first department, an owner, accounts, conversations."""
    from backend.models import ChatAccount, Conversation, Department, Tenant
    from backend.security.identifiers import customer_pseudonym, customer_ref

    with app.app_context():
        tenant = Tenant(name="Bench Co")
        db.session.add(tenant)
        departments = [Department(tenant=tenant, name=f"Team {i + 1}") for i in range(DEPARTMENTS)]
        owner = User(tenant=tenant, email="owner@bench.test", display_name="Owner", role=Role.OWNER)
        supervisor = User(tenant=tenant, email="supervisor@bench.test", display_name="Supervisor",
                          role=Role.SUPERVISOR, departments=[departments[0]])
        agents = [User(tenant=tenant, email=f"agent{i}@bench.test", display_name=f"Agent {i}", role=Role.AGENT,
                       departments=[departments[i // AGENTS_PER_DEPARTMENT]])
                  for i in range(DEPARTMENTS * AGENTS_PER_DEPARTMENT)]
        db.session.add_all([owner, supervisor, *agents])
        db.session.flush()
        accounts = [ChatAccount(tenant_id=tenant.id, agent_id=a.id, platform=("whatsapp", "telegram")[k],
                                handle=f"{a.display_name} line {k}") for a in agents for k in range(ACCOUNTS_PER_AGENT)]
        db.session.add_all(accounts)
        db.session.flush()
        rows = []
        for i in range(CONVERSATIONS):
            account = accounts[i % len(accounts)]
            ref = customer_ref(app.config["SECRET_KEY"], tenant.id, f"+86 138 {i:08d}")
            rows.append({"tenant_id": tenant.id, "chat_account_id": account.id, "agent_id": account.agent_id,
                         "customer_ref": ref, "customer_pseudonym": customer_pseudonym(ref), "started_at": START})
        db.session.execute(Conversation.__table__.insert(), rows)
        conversations = db.session.execute(select(Conversation.id, Conversation.agent_id)).all()
        db.session.commit()
        return {"tenant_id": tenant.id, "owner_id": owner.id, "supervisor_id": supervisor.id,
                "agent_ids": [a.id for a in agents], "conversations": conversations}


def generate_messages(count: int, tenant_id: int, conversations: list, rng: random.Random):
    """(message row, revision rows, conversation id, sent_at) in time order."""
    lines = corpus_lines()
    rare_at = set(rng.sample(range(count), RARE_COUNT))
    step = SPAN / count
    for i in range(count):
        body = rng.choice(lines)
        if rng.random() < 0.33:
            body += " " + rng.choice(lines)
        if i in rare_at:
            body += f" {RARE_CODE}"
        sent_at = START + step * i + timedelta(microseconds=rng.randrange(1_000_000))
        conversation_id = conversations[rng.randrange(len(conversations))][0]
        roll = rng.random()
        revisions, edited_at, deleted_at = [], None, None
        if roll < 0.03:
            edited_at = sent_at + timedelta(minutes=1)
            revisions.append(("edit", rng.choice(lines), edited_at))
        elif roll < 0.035:
            deleted_at = sent_at + timedelta(minutes=2)
            revisions.append(("delete", body, deleted_at))
        message = (i + 1, tenant_id, conversation_id, "in" if rng.random() < 0.5 else "out", body, sent_at,
                   sent_at, edited_at, deleted_at)
        yield message, revisions


MESSAGE_COLUMNS = "id, tenant_id, conversation_id, direction, text, sent_at, received_at, edited_at, deleted_at"
REVISION_COLUMNS = "tenant_id, message_id, kind, text, occurred_at, received_at"


def load_sqlite(app, people: dict, count: int, rng: random.Random) -> None:
    with app.app_context():
        raw = db.engine.raw_connection()
        cursor = raw.cursor()
        progress = Progress("messages (SQLite, FTS triggers on)", count)
        last_at: dict[int, datetime] = {}
        messages, revisions = [], []

        def flush():
            cursor.executemany(f"INSERT INTO message ({MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", messages)
            cursor.executemany(f"INSERT INTO message_revision ({REVISION_COLUMNS}) VALUES (?,?,?,?,?,?)", revisions)
            messages.clear()
            revisions.clear()

        for n, (m, revs) in enumerate(generate_messages(count, people["tenant_id"], people["conversations"], rng), 1):
            messages.append((*m[:5], *(sqlite_time(t) if t else None for t in m[5:])))
            revisions.extend((m[1], m[0], kind, body, sqlite_time(at), sqlite_time(at)) for kind, body, at in revs)
            last_at[m[2]] = m[5]
            if len(messages) >= BATCH:
                flush()
                progress.update(n)
        flush()
        progress.update(count)
        cursor.executemany("UPDATE conversation SET last_message_at = ? WHERE id = ?",
                           [(sqlite_time(at), cid) for cid, at in last_at.items()])
        raw.commit()
        raw.close()


def load_postgres(app, people: dict, count: int, rng: random.Random) -> None:
    with app.app_context():
        raw = db.engine.raw_connection()
        cursor = raw.cursor()
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('message', 'message_revision') "
                       "AND schemaname = current_schema() AND indexdef NOT LIKE 'CREATE UNIQUE%'")
        indexes = cursor.fetchall()
        for name, _definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        progress = Progress("messages (PostgreSQL COPY, indexes dropped)", count)
        last_at: dict[int, datetime] = {}
        revisions = []
        with cursor.copy(f"COPY message ({MESSAGE_COLUMNS}) FROM STDIN") as copy:
            for n, (m, revs) in enumerate(generate_messages(count, people["tenant_id"], people["conversations"], rng),
                                          1):
                copy.write_row(m)
                revisions.extend((m[1], m[0], kind, body, at, at) for kind, body, at in revs)
                last_at[m[2]] = m[5]
                if n % BATCH == 0:
                    progress.update(n)
        progress.update(count)
        with cursor.copy(f"COPY message_revision ({REVISION_COLUMNS}) FROM STDIN") as copy:
            for row in revisions:
                copy.write_row(row)
        cursor.execute("SELECT setval(pg_get_serial_sequence('message', 'id'), (SELECT max(id) FROM message))")
        cursor.executemany("UPDATE conversation SET last_message_at = %s WHERE id = %s",
                           [(at, cid) for cid, at in last_at.items()])
        started = time.perf_counter()
        cursor.execute("SET maintenance_work_mem = '512MB'")  # GIN builds are much faster with room to sort
        for name, definition in indexes:
            sys.stderr.write(f"rebuilding {name} ...\n")
            cursor.execute(definition)
        cursor.execute("ANALYZE")
        sys.stderr.write(f"indexes rebuilt and analysed in {time.perf_counter() - started:.1f} s\n")
        raw.commit()
        raw.close()


# ---- timing ----------------------------------------------------------------------------------------------

def timed(fn, runs: int) -> tuple[float, float, object]:
    result = fn()  # warm-up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples), p99, result


def peer_like(dialect: str, tenant_id: int, needle: str | None, *, agent_ids=None, since=None, until=None,
              offset: int = 0):
    """The query a peer would write: LIKE over the message text, newest first, OFFSET for later pages."""
    where = ["c.tenant_id = :tenant"]
    params: dict = {"tenant": tenant_id, "offset": offset}
    if needle is not None:
        where.append(f"m.text {'ILIKE' if dialect == 'postgresql' else 'LIKE'} :pattern")
        params["pattern"] = f"%{needle}%"
    if agent_ids is not None:
        where.append("c.agent_id IN (" + ", ".join(str(int(a)) for a in agent_ids) + ")")
    if since is not None:
        where.append("m.sent_at >= :since AND m.sent_at < :until")
        params.update(since=since if dialect == "postgresql" else sqlite_time(since),
                      until=until if dialect == "postgresql" else sqlite_time(until))
    statement = text("SELECT m.id, m.text, m.sent_at, c.customer_pseudonym FROM message m "
                     "JOIN conversation c ON c.id = m.conversation_id WHERE " + " AND ".join(where) +
                     " ORDER BY m.sent_at DESC, m.id DESC LIMIT 50 OFFSET :offset")

    def run():
        with db.engine.connect() as conn:
            if dialect == "postgresql":
                conn.execute(text("SET enable_bitmapscan = off"))  # GIN is only reached through bitmap scans
            rows = conn.execute(statement, params).all()
            conn.rollback()
            return rows
    return run


def run_searches(app, people: dict, runs: int) -> list[tuple]:
    dialect = app.config["DB_KIND"]
    results = []
    with app.app_context():
        owner = db.session.get(User, people["owner_id"])
        supervisor = db.session.get(User, people["supervisor_id"])
        tenant_id = people["tenant_id"]
        agent_id = people["agent_ids"][7]
        week_end = START + SPAN - timedelta(days=30)
        week = {"since": week_end - timedelta(days=7), "until": week_end}
        RF = records.RecordFilters

        def veil(actor, filters, before=None):
            def run():
                page = records.search_messages(actor, filters, before=before)
                db.session.rollback()  # each search in its own transaction, as each request is
                return page
            return run

        def deep_cursor(actor, filters, pages):
            before = None
            for _ in range(pages):
                page = records.search_messages(actor, filters, before=before)
                before = records.parse_cursor(page.older, "before")
            db.session.rollback()
            return before

        cases = [
            ("Chinese phrase 私下交易, owner (whole tenant)", veil(owner, RF(text="私下交易")),
             peer_like(dialect, tenant_id, "私下交易")),
            ("Chinese phrase 私下交易, supervisor (1 of 5 departments)", veil(supervisor, RF(text="私下交易")),
             peer_like(dialect, tenant_id, "私下交易", agent_ids=people["agent_ids"][:AGENTS_PER_DEPARTMENT])),
            ("Chinese phrase 绕开平台 (fewer hits), supervisor", veil(supervisor, RF(text="绕开平台")),
             peer_like(dialect, tenant_id, "绕开平台", agent_ids=people["agent_ids"][:AGENTS_PER_DEPARTMENT])),
            ("English word invoice", veil(owner, RF(text="invoice")), peer_like(dialect, tenant_id, "invoice")),
            ("agent + English word invoice", veil(owner, RF(agent_id=agent_id, text="invoice")),
             peer_like(dialect, tenant_id, "invoice", agent_ids=[agent_id])),
            (f"rare code {RARE_CODE} ({RARE_COUNT} hits)", veil(owner, RF(text=RARE_CODE)),
             peer_like(dialect, tenant_id, RARE_CODE)),
            ("absent word zebra (no hits)", veil(owner, RF(text="zebra")), peer_like(dialect, tenant_id, "zebra")),
            ("two characters 价格 (no index: row by row)", veil(owner, RF(text="价格")),
             peer_like(dialect, tenant_id, "价格")),
            ("agent + 7 days, no text", veil(owner, RF(agent_id=agent_id, **week)),
             peer_like(dialect, tenant_id, None, agent_ids=[agent_id], **week)),
            ("agent + 7 days + text 发货", veil(owner, RF(agent_id=agent_id, text="发货", **week)),
             peer_like(dialect, tenant_id, "发货", agent_ids=[agent_id], **week)),
            ("no filters, first page", veil(owner, RF()), peer_like(dialect, tenant_id, None)),
        ]
        sys.stderr.write("finding the cursors of deep pages ...\n")
        deep = deep_cursor(owner, RF(), 200)
        cases.append(("no filters, page 201 (cursor / OFFSET 10,000)", veil(owner, RF(), deep),
                      peer_like(dialect, tenant_id, None, offset=200 * 50)))
        deep_text = deep_cursor(owner, RF(text="invoice"), 20)
        cases.append(("invoice, page 21 (cursor / OFFSET 1,000)", veil(owner, RF(text="invoice"), deep_text),
                      peer_like(dialect, tenant_id, "invoice", offset=20 * 50)))
        for label, ours, peer in cases:
            sys.stderr.write(f"timing: {label}\n")
            ours_p50, ours_p99, page = timed(ours, runs)
            peer_runs = runs if "no hits" not in label and "rare" not in label else max(3, runs // 6)
            peer_p50, peer_p99, peer_rows = timed(peer, peer_runs)
            results.append((label, len(page.rows), ours_p50, ours_p99, len(peer_rows), peer_p50, peer_p99))
    return results


def run_conversation_searches(app, people: dict, runs: int) -> list[tuple]:
    """The conversation list with the same filters (latest message first, first page of 50)."""
    results = []
    with app.app_context():
        owner = db.session.get(User, people["owner_id"])
        supervisor = db.session.get(User, people["supervisor_id"])
        week_end = START + SPAN - timedelta(days=30)
        RF = records.RecordFilters
        cases = [("no filters", owner, RF()), ("supervisor, no filters", supervisor, RF()),
                 ("text 私下交易", owner, RF(text="私下交易")), ("text invoice", owner, RF(text="invoice")),
                 (f"text {RARE_CODE}", owner, RF(text=RARE_CODE)), ("two characters 价格", owner, RF(text="价格")),
                 ("one agent", owner, RF(agent_id=people["agent_ids"][7])),
                 ("7 days", owner, RF(since=week_end - timedelta(days=7), until=week_end))]
        for label, actor, filters in cases:
            def run(actor=actor, filters=filters):
                page = records.search_conversations(actor, filters)
                db.session.rollback()
                return page
            p50, p99, page = timed(run, runs)
            results.append((label, len(page.rows), p50, p99))
    return results


# ---- main ------------------------------------------------------------------------------------------------

def make_app(url: str, kind: str, instance: Path):
    app = create_app({"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": url, "VEIL_SOCKETIO_QUEUE": None},
                     config_class=TestConfig)
    app.config["DB_KIND"] = "postgresql" if kind == "postgres" else "sqlite"
    return app


def has_data(app) -> bool:
    with app.app_context():
        try:
            return (db.session.scalar(text("SELECT count(*) FROM tenant WHERE name = 'Bench Co'")) or 0) > 0
        except Exception:  # noqa: BLE001  (no schema yet)
            db.session.rollback()
            return False


def people_of(app) -> dict:
    from backend.models import Conversation, Tenant

    with app.app_context():
        tenant = db.session.scalars(select(Tenant).where(Tenant.name == "Bench Co")).one()
        users = {u.email: u.id for u in db.session.scalars(select(User).where(User.tenant_id == tenant.id))}
        agents = sorted(uid for email, uid in users.items() if email.startswith("agent"))
        return {"tenant_id": tenant.id, "owner_id": users["owner@bench.test"],
                "supervisor_id": users["supervisor@bench.test"], "agent_ids": agents,
                "conversations": db.session.execute(select(Conversation.id, Conversation.agent_id)).all()}


def prepare(kind: str, args) -> object:
    instance = Path(args.instance)
    instance.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        path = Path(args.sqlite)
        url = f"sqlite:///{path}"
        app = make_app(url, kind, instance)
        if args.reuse and path.exists() and has_data(app):
            return app
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        base = normalise_db_url(args.postgres)
        url = base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{args.schema}"
        app = make_app(url, kind, instance)
        if args.reuse and has_data(app):
            return app
        engine = create_engine(base)
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {args.schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {args.schema}"))
        engine.dispose()
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
    rng = random.Random(20261123)
    started = time.perf_counter()
    people = build_people(app)
    (load_sqlite if kind == "sqlite" else load_postgres)(app, people, args.messages, rng)
    sys.stderr.write(f"data ready in {time.perf_counter() - started:.1f} s\n")
    return app


def database_size(app) -> str:
    with app.app_context():
        if app.config["DB_KIND"] == "sqlite":
            path = Path(db.engine.url.database)
            size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        else:
            size = db.session.scalar(text("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                                          "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                          "WHERE n.nspname = current_schema() AND c.relkind = 'r'"))
        return f"{size / 2**20:,.0f} MiB"


def report(kind: str, app, results: list[tuple], args) -> None:
    print(f"\n### {kind} ({args.messages:,} messages, {database_size(app)}, {args.runs} runs each)\n")
    print("| search | rows | veil p50 ms | veil p99 ms | LIKE scan rows | LIKE p50 ms | LIKE p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, rows, p50, p99, peer_rows, peer_p50, peer_p99 in results:
        print(f"| {label} | {rows} | {p50:.1f} | {p99:.1f} | {peer_rows} | {peer_p50:.1f} | {peer_p99:.1f} |")
    sys.stdout.flush()


def report_conversations(results: list[tuple]) -> None:
    print("\n| conversation search | rows | veil p50 ms | veil p99 ms |\n| --- | ---: | ---: | ---: |")
    for label, rows, p50, p99 in results:
        print(f"| {label} | {rows} | {p50:.1f} | {p99:.1f} |")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--sqlite", default="/tmp/veil-bench-records/records.db")
    parser.add_argument("--instance", default="/tmp/veil-bench-records/instance")
    parser.add_argument("--postgres", help="a PostgreSQL URL: also run there, in --schema")
    parser.add_argument("--schema", default="bench_records")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="keep data already built by an earlier run")
    args = parser.parse_args()
    Path(args.sqlite).parent.mkdir(parents=True, exist_ok=True)
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    kinds = ([] if args.skip_sqlite else ["sqlite"]) + (["postgres"] if args.postgres else [])
    for kind in kinds:
        app = prepare(kind, args)
        people = people_of(app)
        report(kind, app, run_searches(app, people, args.runs), args)
        report_conversations(run_conversation_searches(app, people, args.runs))
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
