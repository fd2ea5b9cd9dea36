"""Backup and restore: a populated database goes through `write_backup` and `restore_backup` into a fresh one
(same kind and the other) and comes back row for row; a changed, cut or wrongly keyed file restores nothing;
a backup taken while a writer runs is one moment of the database."""

from __future__ import annotations

import os
import struct
import threading
import urllib.parse
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, inspect, select, text

from backend import create_app
from backend.config import TestConfig, normalise_db_url
from backend.extensions import db
from backend.models import (
    Alert,
    AuditLogEntry,
    BehaviourEvent,
    ChatAccount,
    Conversation,
    Intervention,
    LegalHold,
    Message,
    MessageRevision,
    RetentionSetting,
    User,
)
from backend.models.base import utcnow
from backend.services import backup
from backend.services.backup import ALEMBIC_TABLE, BackupError, model_tables, restore_backup, write_backup
from backend.services.conversations import find_or_create_conversation
from backend.services.demo import create_demo
from tests.conftest import PG_SCHEMA, postgres_url

PASSPHRASE = b"correct horse battery staple"
FAST_SCRYPT = 2**14  # the header carries n; production uses backup.SCRYPT_N


def targets() -> list:
    kinds = [pytest.param("sqlite", id="to-sqlite")]
    if postgres_url():
        kinds.append(pytest.param("postgres", id="to-postgres"))
    return kinds


@pytest.fixture
def fresh(tmp_path, request):
    """Makes empty databases (not migrated) of a kind, each with its own app; dropped afterwards."""
    made = []

    def make(kind: str, **config):
        instance = tmp_path / f"restore-{len(made)}"
        instance.mkdir()
        if kind == "postgres":
            schema = f"{PG_SCHEMA}_restore{len(made)}"
            engine = create_engine(normalise_db_url(postgres_url()))
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            engine.dispose()
            url = normalise_db_url(postgres_url()) + "?options=" + urllib.parse.quote(f"-csearch_path={schema}")
            made.append(schema)
        else:
            url = f"sqlite:///{instance}/veil.db"
            made.append(None)
        return create_app({"INSTANCE_PATH": str(instance), "SQLALCHEMY_DATABASE_URI": url,
                           "VEIL_SOCKETIO_QUEUE": None, **config}, config_class=TestConfig)

    yield make
    for schema in made:
        if schema:
            engine = create_engine(normalise_db_url(postgres_url()))
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            engine.dispose()


def populate(app) -> None:
    """The demo, plus what the demo lacks: revisions, behaviour with an alert, an intervention, retention,
    a legal hold, JSON both null and SQL NULL, and text that needs escaping."""
    with app.app_context():
        create_demo(app.config["SECRET_KEY"])
        db.session.flush()
        agent = db.session.scalars(select(User).where(User.email == "agent1@demo.veil")).one()
        conversation = db.session.scalars(select(Conversation).where(Conversation.agent_id == agent.id)).first()
        at = utcnow() - timedelta(days=2)
        message = Message(tenant_id=agent.tenant_id, conversation=conversation, direction="out",
                          text='加我微信 "wx" \\ 😀 \n<b>', sent_at=at, server_check={"action": "block"},
                          client_event_id="evt-1", console_message_id="row-1")
        db.session.add(message)
        db.session.flush()
        db.session.add_all([
            MessageRevision(tenant_id=agent.tenant_id, message_id=message.id, kind="edit", text="edited 编辑",
                            occurred_at=at + timedelta(minutes=1)),
            MessageRevision(tenant_id=agent.tenant_id, message_id=message.id, kind="delete", text="edited 编辑",
                            occurred_at=at + timedelta(minutes=2), server_check=None),
        ])
        event = BehaviourEvent(tenant_id=agent.tenant_id, agent_id=agent.id, conversation_id=conversation.id,
                               type="bulk_copy", details={"count": 3, "nested": {"a": [1, None]}}, occurred_at=at)
        db.session.add(event)
        db.session.flush()
        db.session.add(Alert(tenant_id=agent.tenant_id, behaviour_event_id=event.id, agent_id=agent.id,
                             type=event.type, severity="critical", occurred_at=at, facts={"n": 3}))
        db.session.add(Intervention(tenant_id=agent.tenant_id, conversation_id=conversation.id, agent_id=agent.id,
                                    text="reply", expires_at=at, message_id=message.id, status="sent"))
        db.session.add(RetentionSetting(tenant_id=agent.tenant_id, messages_days=365, behaviour_days=None))
        db.session.add(LegalHold(tenant_id=agent.tenant_id, agent_id=agent.id, reason="hold"))
        db.session.commit()


def dump(app) -> dict[str, list[tuple]]:
    """Every table's rows as Python values, in primary-key order, and the schema revision."""
    with app.app_context():
        with db.engine.connect() as conn:
            rows = {t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                    for t in model_tables()}
            # Which JSON values are SQL NULL (the JSON type reads both it and a JSON null as None).
            rows["_json_nulls"] = [(t.name, c.name, conn.execute(select(func.count()).select_from(t)
                                                                .where(c.is_(None))).scalar())
                                   for t in model_tables() for c in t.columns if backup._kind(c) == "json"]
            rows[ALEMBIC_TABLE] = conn.execute(text(f"SELECT version_num FROM {ALEMBIC_TABLE}")).all()
        db.session.remove()
    return rows


def without_restore_entry(rows: dict) -> dict:
    audit = rows["audit_log_entry"]
    actions = [r[list(AuditLogEntry.__table__.columns.keys()).index("action")] for r in audit]
    assert actions[-1] == "backup.restored" and actions.count("backup.restored") == 1
    return {**rows, "audit_log_entry": audit[:-1]}


def assert_same(restored: dict, before: dict) -> None:
    assert restored.keys() == before.keys()
    for name in before:
        assert restored[name] == before[name], name


def row_total(app) -> int:
    with app.app_context():
        with db.engine.connect() as conn:
            total = sum(conn.execute(select(func.count()).select_from(t)).scalar() for t in model_tables())
        db.session.remove()
    return total


def target_is_empty(target) -> bool:
    """Nothing restored: no tables at all, or only empty ones."""
    with target.app_context():
        names = set(inspect(db.engine).get_table_names())
        db.session.remove()
    return not (names & {t.name for t in model_tables()}) or row_total(target) == 0


def make_backup(app, path, **kwargs):
    with app.app_context():
        summary = write_backup(app, str(path), **kwargs)
        db.session.remove()
    return summary


def restore(target, path, **kwargs):
    with target.app_context():
        try:
            return restore_backup(target, str(path), **kwargs)
        finally:
            db.session.remove()


# ---- round trips -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("target_kind", targets())
@pytest.mark.parametrize("with_passphrase", [False, True], ids=["master-key", "passphrase"])
def test_round_trip_restores_every_row(app, fresh, tmp_path, target_kind, with_passphrase):
    populate(app)
    before = dump(app)
    assert len(before["message_revision"]) == 2 and len(before["message"]) > 10
    keys = {"passphrase": PASSPHRASE, "scrypt_n": FAST_SCRYPT} if with_passphrase else {}
    summary = make_backup(app, tmp_path / "veil.backup", **keys)
    assert summary.rows == sum(len(v) for k, v in before.items() if k not in (ALEMBIC_TABLE, "_json_nulls"))
    assert os.stat(tmp_path / "veil.backup").st_mode & 0o077 == 0
    with app.app_context():
        created = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == "backup.created")).one()
        assert created.details["sha256"] == summary.sha256 and created.details["rows"] == summary.rows

    target = fresh(target_kind)
    restored = restore(target, tmp_path / "veil.backup", passphrase=PASSPHRASE if with_passphrase else None)
    assert restored.rows == summary.rows and restored.source_kind == summary.db_kind
    assert_same(without_restore_entry(dump(target)), before)

    # New rows get new ids (PostgreSQL's sequences moved past the restored ids), and search works.
    with target.app_context():
        conversation = db.session.scalars(select(Conversation)).first()
        added = Message(tenant_id=conversation.tenant_id, conversation=conversation, direction="in",
                        text="after the restore", sent_at=utcnow())
        db.session.add(added)
        db.session.commit()
        assert added.id > max(r[0] for r in before["message"])
        if target_kind == "sqlite":
            hits = db.session.execute(text("SELECT rowid FROM search_index_revision WHERE search_index_revision "
                                           "MATCH '\"edited 编辑\"'")).all()
            assert len(hits) == 2
            for table in ("search_index_message", "search_index_revision"):
                db.session.execute(text(f"INSERT INTO {table}({table}) VALUES ('integrity-check')"))
        db.session.remove()


def test_restore_refuses_a_database_that_is_not_empty_unless_forced(app, fresh, tmp_path):
    populate(app)
    before = dump(app)
    make_backup(app, tmp_path / "veil.backup")
    target = fresh("sqlite")
    with target.app_context():
        from flask_migrate import upgrade

        upgrade(directory=target.extensions["migrate"].directory)
        create_demo(target.config["SECRET_KEY"])
        db.session.commit()
        db.session.remove()
    with pytest.raises(BackupError, match="not empty"):
        restore(target, tmp_path / "veil.backup")
    restore(target, tmp_path / "veil.backup", force=True)
    assert_same(without_restore_entry(dump(target)), before)


def test_backup_refuses_to_overwrite_a_file(app, tmp_path):
    (tmp_path / "there").write_bytes(b"keep me")
    with pytest.raises(BackupError, match="exists already"):
        make_backup(app, tmp_path / "there")
    assert (tmp_path / "there").read_bytes() == b"keep me"


# ---- damage, wrong keys ----------------------------------------------------------------------------------

def chunk_offsets(path) -> list[tuple[int, int]]:
    """(start, end) of each chunk record in a backup file."""
    data = path.read_bytes()
    (header_length,) = struct.unpack(">I", data[len(backup.MAGIC) + 1:len(backup.MAGIC) + 5])
    at = len(backup.MAGIC) + 5 + header_length
    offsets = []
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        offsets.append((at, at + 4 + length))
        at += 4 + length
    return offsets


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(backup, "CHUNK_BYTES", 4096)


def damaged_variants(path) -> dict[str, bytes]:
    data = path.read_bytes()
    chunks = chunk_offsets(path)
    assert len(chunks) >= 3
    (s0, e0), (s1, e1) = chunks[0], chunks[1]
    middle = (s1 + e1) // 2
    header_at = data.index(b'"created_at":"') + len('"created_at":"')
    return {
        "a byte of a chunk changed": data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:],
        "a byte of the header changed": data[:header_at] + (b"1" if data[header_at:header_at + 1] != b"1" else b"2")
        + data[header_at + 1:],
        "cut inside a chunk": data[:middle],
        "the last chunk dropped": data[:chunks[-1][0]],
        "two chunks swapped": data[:s0] + data[s1:e1] + data[s0:e0] + data[e1:],
        "data after the end": data + data[s1:e1],
    }


EXPECTED = {
    "a byte of a chunk changed": "damaged or was changed",
    "a byte of the header changed": "damaged or was changed",
    "cut inside a chunk": "truncated",
    "the last chunk dropped": "truncated",
    "two chunks swapped": "damaged or was changed",
    "data after the end": "data after its last part",
}


def test_a_changed_or_cut_file_restores_nothing(app, fresh, tmp_path, small_chunks):
    populate(app)
    make_backup(app, tmp_path / "veil.backup")
    for name, content in damaged_variants(tmp_path / "veil.backup").items():
        broken = tmp_path / "broken.backup"
        broken.write_bytes(content)
        target = fresh("sqlite")
        with pytest.raises(BackupError, match=EXPECTED[name]):
            restore(target, broken)
        assert target_is_empty(target), name


def test_not_a_backup(app, fresh, tmp_path):
    (tmp_path / "x").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(BackupError, match="not a Veil backup"):
        restore(fresh("sqlite"), tmp_path / "x")


def test_wrong_or_missing_passphrase_and_another_master_key(app, fresh, tmp_path):
    populate(app)
    make_backup(app, tmp_path / "pass.backup", passphrase=PASSPHRASE, scrypt_n=FAST_SCRYPT)
    make_backup(app, tmp_path / "master.backup")
    target = fresh("sqlite")
    with pytest.raises(BackupError, match="wrong passphrase"):
        restore(target, tmp_path / "pass.backup", passphrase=b"not the passphrase at all")
    with pytest.raises(BackupError, match="--passphrase-file"):
        restore(target, tmp_path / "pass.backup")
    elsewhere = fresh("sqlite", VEIL_MASTER_KEY="ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY=")
    with pytest.raises(BackupError, match="another master key"):
        restore(elsewhere, tmp_path / "master.backup")
    assert target_is_empty(target) and target_is_empty(elsewhere)
    with pytest.raises(BackupError, match="at least 12"):
        make_backup(app, tmp_path / "short.backup", passphrase=b"short")


def test_the_file_holds_no_plaintext(app, tmp_path):
    populate(app)
    make_backup(app, tmp_path / "veil.backup")
    data = (tmp_path / "veil.backup").read_bytes()
    for needle in ("agent1@demo.veil", "Demo Co", "加我微信", "wxid_abc123"):
        for encoded in (needle.encode(), needle.encode("utf-16-le"), needle.encode("unicode_escape")):
            assert encoded not in data


# ---- consistency under writes -----------------------------------------------------------------------------

def test_backup_while_writing_is_one_moment(app, fresh, tmp_path):
    """A writer adds a conversation and its first message in one transaction, over and over, while the backup
    runs: the restored copy has each pair whole (never a conversation without its message)."""
    populate(app)
    with app.app_context():
        agent = db.session.scalars(select(User).where(User.email == "agent2@demo.veil")).one()
        account = ChatAccount(tenant_id=agent.tenant_id, agent=agent, platform="line", handle="busy line")
        db.session.add(account)
        db.session.commit()
        account_id = account.id
        db.session.remove()
    stop = threading.Event()
    written = threading.Semaphore(0)
    errors: list[BaseException] = []

    def writer():
        n = 0
        try:
            with app.app_context():
                while not stop.is_set():
                    n += 1
                    account = db.session.get(ChatAccount, account_id)
                    conversation = find_or_create_conversation(app.config["SECRET_KEY"], account, f"busy-{n}")
                    db.session.add(Message(tenant_id=account.tenant_id, conversation=conversation, direction="in",
                                           text=f"busy {n}", sent_at=utcnow()))
                    db.session.commit()
                    written.release()
                db.session.remove()
        except BaseException as err:  # reported by the test below
            errors.append(err)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(5):
            assert written.acquire(timeout=60), "the writer started"
        make_backup(app, tmp_path / "veil.backup")
        for _ in range(5):  # the writer went on after the snapshot
            assert written.acquire(timeout=60)
    finally:
        stop.set()
        thread.join()
    assert errors == []

    target = fresh("sqlite")
    restore(target, tmp_path / "veil.backup")
    with target.app_context():
        busy = select(Conversation.id).where(Conversation.chat_account_id == account_id)
        conversations = db.session.scalar(select(func.count()).select_from(busy.subquery()))
        messages = db.session.scalar(select(func.count()).where(Message.conversation_id.in_(busy)))
        assert conversations >= 5 and conversations == messages
        db.session.remove()
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(Conversation.chat_account_id == account_id)) \
            >= conversations + 5
        db.session.remove()


def test_cli_backup_and_restore(app, fresh, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from backend import cli

    populate(app)
    before = dump(app)
    (tmp_path / "pass").write_bytes(PASSPHRASE + b"\n")
    monkeypatch.setattr(backup, "SCRYPT_N", FAST_SCRYPT)
    monkeypatch.setattr(cli, "make_app", lambda: app)
    result = CliRunner().invoke(cli.main, ["backup", "--out", str(tmp_path / "b"), "--passphrase-file",
                                           str(tmp_path / "pass")])
    assert result.exit_code == 0, result.output
    assert "backup written" in result.output and "key: scrypt" in result.output
    target = fresh("sqlite")
    monkeypatch.setattr(cli, "make_app", lambda: target)
    result = CliRunner().invoke(cli.main, ["restore", str(tmp_path / "b")])
    assert result.exit_code == 2 and "--passphrase-file" in result.output
    result = CliRunner().invoke(cli.main, ["restore", str(tmp_path / "b"), "--passphrase-file",
                                           str(tmp_path / "pass")])
    assert result.exit_code == 0, result.output
    assert_same(without_restore_entry(dump(target)), before)
