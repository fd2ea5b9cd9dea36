"""Stored keys wrapped by the master key, and `veil keys rotate-master`: after a rotation everything still
reads (identifiers, the blind index, customer refs, the audit chain, grants, backups), the old key opens
nothing, a wrong key stops a process at once, an interrupted rotation finishes, and no key is in the
database in clear."""

from __future__ import annotations

import base64
import stat
import urllib.parse
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.exceptions import InvalidTag
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text

from backend import cli, create_app
from backend.config import TestConfig
from backend.extensions import db
from backend.models import AuditLogEntry, Conversation, DataKey, Grant, KeyMaterial, Message
from backend.models.base import utcnow
from backend.security.identifiers import customer_ref, identifier_key
from backend.security.master_key import (
    CHECK,
    STORED_PURPOSES,
    MasterKeyError,
    create_master_key_file,
    derive_key,
    fingerprint,
    hkdf_key,
    load_master_key,
    master_key_path,
    previous_key_path,
)
from backend.services import backup, grants, key_material, master_rotation, vault
from backend.services.audit import verify_audit
from tests.conftest import PG_SCHEMA, make_org
from tests.grants_helper import issue_grant
from tests.test_backup import FAST_SCRYPT, PASSPHRASE
from tests.test_vault import dump_postgres

LINES = ["call me on +86 139 8765 4321 please", "mail: Rotation.Test@Example.org", "加我微信 wxid_rotate01"]
CUSTOMER = "+86 138 0013 8000"  # the conversation make_org makes


# ---- databases and processes of their own ------------------------------------------------------------------

class Instance:
    """One database (the kind the session's app uses) with an instance folder; each `process()` is a new
    app on it, as a new `veil` process would be, with caches of its own."""

    def __init__(self, app, tmp_path: Path, name: str):
        self.kind = app.config["DB_KIND"]
        self.folder = tmp_path / name
        self.folder.mkdir()
        base = app.config["SQLALCHEMY_DATABASE_URI"].split("?")[0]
        if self.kind == "postgres":
            self.schema = f"{PG_SCHEMA}_{name}"
            self.admin = create_engine(base)
            with self.admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {self.schema}"))
            self.url = base + "?options=" + urllib.parse.quote(f"-csearch_path={self.schema}")
        else:
            self.schema, self.admin = None, None
            self.url = f"sqlite:///{self.folder}/veil.db"
        self.apps: list = []

    def process(self, master_key: str = ""):
        """`master_key` empty: the key is instance/master.key (made when missing)."""
        made = create_app({"INSTANCE_PATH": str(self.folder), "SQLALCHEMY_DATABASE_URI": self.url,
                           "VEIL_SOCKETIO_QUEUE": None, "VEIL_MASTER_KEY": master_key}, config_class=TestConfig)
        made.config["DB_KIND"] = self.kind
        if not master_key:
            create_master_key_file(made)
        if not self.apps:
            with made.app_context():
                upgrade(directory=made.extensions["migrate"].directory)
        self.apps.append(made)
        vault._data_keys.clear()  # a new process starts with no unwrapped data keys
        return made

    def dump(self) -> bytes:
        """The raw database: the SQLite file with its -wal and -shm, or every PostgreSQL table."""
        if self.kind == "postgres":
            return dump_postgres(self.schema)
        self.close()
        path = Path(self.url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())

    def close(self) -> None:
        for made in self.apps:
            with made.app_context():
                db.session.remove()
                db.engine.dispose()

    def drop(self) -> None:
        self.close()
        if self.admin is not None:
            with self.admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
            self.admin.dispose()


@pytest.fixture
def instances(app, tmp_path):
    made: list[Instance] = []

    def make(name: str) -> Instance:
        made.append(Instance(app, tmp_path, name))
        return made[-1]

    yield make
    for instance in made:
        instance.drop()


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def populate(app) -> dict:
    """An organisation with protected messages, a conversation, audit entries and a grant; what to check."""
    with app.app_context():
        org = make_org("Keyed", identifier_key())
        conversation = db.session.get(Conversation, org.conversation_id)
        stored = []
        for line in LINES:
            stored.append(vault.protect(org.tenant_id, line))
            db.session.add(Message(tenant_id=org.tenant_id, conversation=conversation, direction="in",
                                   text=stored[-1], sent_at=utcnow()))
        db.session.commit()
        ref = conversation.customer_ref
        grant_id = issue_grant(org, org.users["owner"].id, department_ids=[org.sales_id])
        found = vault.find_identifiers(org.tenant_id, "13987654321")
        assert found and grants.refusal_reason(db.session.get(Grant, grant_id)) is None
        db.session.remove()
    return {"org": org, "stored": stored, "grant_id": grant_id, "found": found, "ref": ref}


def assert_everything_reads(app, facts: dict) -> None:
    org = facts["org"]
    with app.app_context():
        assert [vault.reveal_text(org.tenant_id, s) for s in facts["stored"]] == LINES
        assert vault.find_identifiers(org.tenant_id, "139 8765 4321") == facts["found"]
        assert customer_ref(identifier_key(), org.tenant_id, CUSTOMER) == facts["ref"]
        assert grants.refusal_reason(db.session.get(Grant, facts["grant_id"])) is None
        verification = verify_audit()
        assert verification.ok, verification.to_dict()["problems"]
        db.session.remove()


def rotate(app, *args: str):
    runner_app = app

    def make_app():
        return runner_app

    original = cli.make_app
    cli.make_app = make_app
    try:
        return CliRunner().invoke(cli.main, ["keys", "rotate-master", *args])
    finally:
        cli.make_app = original


def secrets_in(app) -> dict[str, bytes]:
    """Every key the database must not hold in clear: the master key, the stored keys, the data keys."""
    with app.app_context():
        found = {"master": load_master_key(app)}
        found.update({p: derive_key(app, p) for p in STORED_PURPOSES})
        for row in db.session.scalars(select(DataKey)):
            found[f"data key {row.id}"] = vault.data_key(row)
        db.session.remove()
    return found


def in_clear(blob: bytes, keys: dict[str, bytes]) -> list[str]:
    hits = []
    for name, key in keys.items():
        for form in (key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key),
                     base64.urlsafe_b64encode(key), base64.b64encode(key).rstrip(b"=")):
            if form in blob:
                hits.append(name)
    return hits


# ---- stored keys -----------------------------------------------------------------------------------------

def test_stored_keys_keep_the_value_they_had_and_are_stored_wrapped(instances):
    instance = instances("stored")
    app = instance.process()
    master = load_master_key(app)
    for purpose in (*STORED_PURPOSES, "data-key-wrap", "backup"):
        assert derive_key(app, purpose) == hkdf_key(master, purpose), "what was keyed before stays valid"
    with app.app_context():
        rows = {r.purpose: r for r in db.session.scalars(select(KeyMaterial))}
        assert set(rows) == {CHECK, *STORED_PURPOSES}, "directly derived keys have no row"
        assert rows[CHECK].wrapped_key is None
        assert {r.master_fingerprint for r in rows.values()} == {fingerprint(master)}
        for purpose in STORED_PURPOSES:
            assert key_material.unwrap(master, purpose, rows[purpose].wrapped_key) == hkdf_key(master, purpose)
            with pytest.raises(MasterKeyError):  # bound to its purpose
                key_material.unwrap(master, "audit-chain" if purpose != "audit-chain" else "grant-state",
                                    rows[purpose].wrapped_key)
        db.session.remove()


def test_two_processes_making_the_rows_at_once_end_with_one_each(instances, monkeypatch):
    instance = instances("race")
    first, second = instance.process(), instance.process()
    # The second process read the table before the first one wrote it, then writes too.
    real_rows = key_material._rows
    stale = []

    def stale_rows(conn):
        if not stale:
            stale.append(True)
            return {}
        return real_rows(conn)

    with first.app_context():
        key_material.ensure_key_material(first)
        db.session.remove()
    monkeypatch.setattr(key_material, "_rows", stale_rows)
    with second.app_context():
        key_material.ensure_key_material(second)
        counts = dict(db.session.execute(select(KeyMaterial.purpose, func.count()).group_by(KeyMaterial.purpose)).all())
        db.session.remove()
    assert stale and set(counts.values()) == {1} and len(counts) == len(STORED_PURPOSES) + 1
    assert all(derive_key(first, p) == derive_key(second, p) for p in STORED_PURPOSES)


def test_a_wrong_master_key_stops_the_process_with_a_clear_error(instances, monkeypatch):
    instance = instances("wrong")
    right = instance.process()
    populate(right)
    wrong = instance.process(master_key=b64(bytes(range(32))))
    with wrong.app_context(), pytest.raises(MasterKeyError, match="wrapped by another master key"):
        key_material.ensure_key_material(wrong)
    with pytest.raises(MasterKeyError, match="start Veil with the master key this database was made with"):
        derive_key(wrong, "identifier-index")
    # `veil serve` stops before serving anything
    monkeypatch.setattr(cli, "make_app", lambda: wrong)
    monkeypatch.setattr(cli.socketio, "run", lambda *a, **k: pytest.fail("served with the wrong key"))
    result = CliRunner().invoke(cli.main, ["serve", "--port", "1"])
    assert result.exit_code == 2 and "wrapped by another master key" in result.output


# ---- rotating the master key -----------------------------------------------------------------------------

def test_after_rotate_master_everything_still_reads_and_the_old_key_opens_nothing(instances):
    instance = instances("rotate")
    app = instance.process()
    facts = populate(app)
    old = load_master_key(app)
    with app.app_context():
        wrapped_before = {r.id: r.wrapped_key for r in db.session.scalars(select(DataKey))}
        db.session.remove()
    assert wrapped_before
    before_backup = instance.folder / "before.backup"
    with app.app_context():
        backup.write_backup(app, str(before_backup), passphrase=PASSPHRASE, scrypt_n=FAST_SCRYPT)
        db.session.remove()

    result = rotate(app)
    assert result.exit_code == 0, result.output
    assert "rotating to master key" in result.output and "master.key.previous" in result.output

    new = load_master_key(instance.process())
    assert new != old and fingerprint(new)[:12] in result.output
    assert base64.b64decode(previous_key_path(app).read_text()) == old
    for path in (master_key_path(app), previous_key_path(app)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fresh = instance.process()
    assert_everything_reads(fresh, facts)
    with fresh.app_context():
        data_keys = list(db.session.scalars(select(DataKey)))
        assert {k.master_fingerprint for k in data_keys} == {fingerprint(new)}
        old_wrap = hkdf_key(old, "data-key-wrap")
        for row in data_keys:
            assert row.wrapped_key != wrapped_before[row.id]
            with pytest.raises(InvalidTag):
                vault.unwrap_data_key(old_wrap, row.tenant_id, row.wrapped_key)
        for row in db.session.scalars(select(KeyMaterial).where(KeyMaterial.purpose != CHECK)):
            assert row.master_fingerprint == fingerprint(new)
            with pytest.raises(MasterKeyError):
                key_material.unwrap(old, row.purpose, row.wrapped_key)
        entry = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == "keys.rotate_master")).one()
        assert entry.details["data_keys"] == len(data_keys)
        assert entry.details["stored_keys"] == len(STORED_PURPOSES) + 1
        db.session.remove()
    assert not in_clear(str(entry.details).encode(), {"old": old, "new": new}), "no key in the audit trail"
    # The old key no longer starts a process; the message points at the unfinished-or-not state.
    stale = instance.process(master_key=b64(old))
    with stale.app_context(), pytest.raises(MasterKeyError, match="another master key"):
        key_material.ensure_key_material(stale)

    # A second run is a new rotation; the first one's result still reads afterwards.
    again = rotate(instance.process())
    assert again.exit_code == 0, again.output
    assert_everything_reads(instance.process(), facts)

    # Backups: one made now (with a passphrase) restores where the current key is configured; one made before
    # the rotation holds rows wrapped by the old key, so it restores only where that key is.
    now = instance.process()
    current = load_master_key(now)
    after_backup = instance.folder / "after.backup"
    with now.app_context():
        backup.write_backup(now, str(after_backup), passphrase=PASSPHRASE, scrypt_n=FAST_SCRYPT)
        db.session.remove()
    target = instances("restored").process(master_key=b64(current))
    with pytest.raises(backup.BackupError, match="another master key"):
        with target.app_context():
            backup.restore_backup(target, str(before_backup), passphrase=PASSPHRASE)
    with target.app_context():
        backup.restore_backup(target, str(after_backup), passphrase=PASSPHRASE)
        db.session.remove()
    assert_everything_reads(target, facts)


def test_a_rotation_stopped_after_the_stored_keys_finishes_on_the_next_run(instances, monkeypatch):
    instance = instances("stopped")
    app = instance.process()
    facts = populate(app)
    old = load_master_key(app)

    def stop(*args, **kwargs):
        raise RuntimeError("the process was stopped")

    monkeypatch.setattr(master_rotation, "rewrap_data_keys", stop)
    assert rotate(app).exit_code != 0
    monkeypatch.undo()

    # The stored keys (and the check) moved; the data keys did not. The new key starts a process, and a
    # data key still under the old one is refused with a message that says so.
    half = instance.process()
    new = load_master_key(half)
    with half.app_context():
        key_material.ensure_key_material(half)
        row = db.session.scalars(select(DataKey)).first()
        assert row.master_fingerprint == fingerprint(old)
        with pytest.raises(MasterKeyError, match="wrapped by another master key"):
            vault.data_key(row)
        db.session.remove()

    result = rotate(half)
    assert result.exit_code == 0, result.output
    assert "finishing the rotation" in result.output
    assert load_master_key(instance.process()) == new, "finishing makes no new key"
    with half.app_context():
        assert master_rotation.remaining(fingerprint(new)) == 0
        db.session.remove()
    assert_everything_reads(instance.process(), facts)


def test_a_rotation_that_fails_half_way_through_a_table_changes_nothing_and_resumes(instances, monkeypatch):
    instance = instances("torn")
    app = instance.process()
    facts = populate(app)
    old = load_master_key(app)
    calls = []
    real_wrap = key_material.wrap

    def failing_wrap(master, purpose, key):
        calls.append(purpose)
        if len(calls) == 3:
            raise RuntimeError("the process was stopped")
        return real_wrap(master, purpose, key)

    monkeypatch.setattr(key_material, "wrap", failing_wrap)
    assert rotate(app).exit_code != 0
    monkeypatch.undo()
    with app.app_context():
        assert {r.master_fingerprint for r in db.session.scalars(select(KeyMaterial))} == {fingerprint(old)}
        db.session.remove()
    # The key files were written first: the new key is master.key, and a process says what to do.
    stuck = instance.process()
    with stuck.app_context(), pytest.raises(MasterKeyError, match="master.key.previous.*run it again"):
        key_material.ensure_key_material(stuck)
    result = rotate(stuck)
    assert result.exit_code == 0 and "finishing the rotation" in result.output, result.output
    assert_everything_reads(instance.process(), facts)


def test_a_server_left_running_with_the_old_key_fails_loudly(instances):
    instance = instances("running")
    server = instance.process()
    facts = populate(server)
    org = facts["org"]
    assert rotate(instance.process()).exit_code == 0
    with server.app_context():
        # The server cached the old key: it must not wrap a new data key under it.
        with pytest.raises(MasterKeyError, match="restart it with the new key"):
            vault.new_data_key(org.tenant_id)
        db.session.rollback()
        assert db.session.scalar(select(func.count()).select_from(DataKey).where(
            DataKey.master_fingerprint == fingerprint(load_master_key(server)))) == 0
        db.session.remove()


def test_with_veil_master_key_the_new_key_comes_from_a_file(instances, tmp_path):
    instance = instances("configured")
    old = b64(bytes(range(1, 33)))
    app = instance.process(master_key=old)
    facts = populate(app)
    result = rotate(app)
    assert result.exit_code == 2 and "--new-key-file" in result.output

    new_file = tmp_path / "new.key"
    result = rotate(instance.process(master_key=old), "--new-key-file", str(new_file))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(new_file.stat().st_mode) == 0o600 and "set VEIL_MASTER_KEY" in result.output
    assert not master_key_path(app).exists(), "no key file is written when the key is configured"
    new = new_file.read_text().strip()
    assert_everything_reads(instance.process(master_key=new), facts)
    # Run again with the same file before switching: nothing left to move.
    result = rotate(instance.process(master_key=old), "--new-key-file", str(new_file))
    assert result.exit_code == 0 and "already" in result.output, result.output


# ---- nothing in clear ------------------------------------------------------------------------------------

def test_the_database_holds_no_key_in_clear(instances):
    instance = instances("clear")
    app = instance.process()
    populate(app)
    keys = secrets_in(app)
    blob = instance.dump()
    assert len(blob) > 10_000, "the dump holds the data"
    assert in_clear(blob, keys) == []
    assert rotate(instance.process()).exit_code == 0
    rotated = instance.process()
    keys.update({f"{name} (after)": key for name, key in secrets_in(rotated).items()})
    blob = instance.dump()
    assert in_clear(blob, keys) == []
    # the check can see a key
    assert "audit-chain" in in_clear(blob + base64.b64encode(keys["audit-chain"]), keys)
