"""Encryption at rest: tokens for customer identifiers, encrypted originals, the blind index, key rotation,
the master key, and the leak test the issue asks for: identifiers written through the whole stack are
found nowhere in the raw database, in any common encoding."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, func, select, text

from backend import create_app
from backend.config import TestConfig
from backend.extensions import db
from backend.models import AuditLogEntry, CustomerIdentifier, DataKey, Message, MessageRevision, User
from backend.security.identifiers import identifier_key
from backend.security.master_key import (
    MasterKeyError,
    create_master_key_file,
    derive_key,
    load_master_key,
    master_key_path,
)
from backend.services import interventions, key_rotation, records, vault
from tests.conftest import PG_SCHEMA, make_org, postgres_url
from tests.test_ingest import AT, behaviour, change, connect, console_id, message, send

PHONE = "+86 138-0013-8000"


def texts(model) -> list[str]:
    return list(db.session.scalars(select(model.text).order_by(model.id)))


# ---- protect, display, reveal ---------------------------------------------------------------------------

def test_protect_display_reveal_round_trip(ctx, orgs):
    own, other = orgs
    original = f"call me on {PHONE} or Maria@Example.com, thanks"
    stored = vault.protect(own.tenant_id, original)
    assert "0013" not in stored and "Maria" not in stored and "example" not in stored.lower()
    assert stored.startswith("call me on \ue000") and stored.endswith("\ue001, thanks")
    ids = vault.identifiers_in(stored)
    assert len(ids) == 2
    assert vault.display(stored) == "call me on +** ***-****-8000 or *****@Example.com, thanks"
    assert [vault.reveal(own.tenant_id, i) for i in ids] == [PHONE, "Maria@Example.com"]
    assert vault.reveal_text(own.tenant_id, stored) == original
    with pytest.raises(Exception) as refused:
        vault.reveal(other.tenant_id, ids[0])
    assert getattr(refused.value, "status", None) == 404, "another tenant's identifier is not found"
    assert vault.protect(own.tenant_id, "no identifiers here, 3 items") == "no identifiers here, 3 items"


def test_a_forged_token_is_neutralised(ctx, orgs):
    own, _other = orgs
    real = vault.identifiers_in(vault.protect(own.tenant_id, PHONE))[0]
    forged = f"see \ue000{real}\ue001 and \ue000"
    stored = vault.protect(own.tenant_id, forged)
    assert "\ue000" not in stored and "\ue001" not in stored
    assert vault.identifiers_in(stored) == []
    assert vault.display(stored) == f"see \ufffd{real}\ufffd and \ufffd", "nobody reveals by writing a token"


def test_one_customer_is_one_row_per_tenant(ctx, orgs):
    own, other = orgs
    first = vault.protect(own.tenant_id, "13800138000")
    again = vault.protect(own.tenant_id, f"my number: {PHONE}")
    assert vault.identifiers_in(first) == vault.identifiers_in(again)
    vault.protect(other.tenant_id, "13800138000")
    counts = dict(db.session.execute(select(CustomerIdentifier.tenant_id, func.count())
                                     .group_by(CustomerIdentifier.tenant_id)).all())
    assert counts == {own.tenant_id: 1, other.tenant_id: 1}
    indexes = set(db.session.scalars(select(CustomerIdentifier.blind_index)))
    assert len(indexes) == 2, "the blind index is keyed per tenant"


def test_find_by_phone_or_email_written_any_way(ctx, orgs):
    own, other = orgs
    phone = vault.identifiers_in(vault.protect(own.tenant_id, f"tel {PHONE}"))[0]
    email = vault.identifiers_in(vault.protect(own.tenant_id, "write to Zhang.Wei@Example.COM"))[0]
    assert vault.find_identifiers(own.tenant_id, "13800138000") == [phone]
    assert vault.find_identifiers(own.tenant_id, "0086 138 0013 8000") == [phone]
    assert vault.find_identifiers(own.tenant_id, "zhang.wei@example.com") == [email]
    assert vault.find_identifiers(own.tenant_id, "13900000000") == []
    assert vault.find_identifiers(other.tenant_id, "13800138000") == [], "another tenant finds nothing"
    assert vault.looks_like_identifier(own.tenant_id, "+86 138 0013 8000")
    assert not vault.looks_like_identifier(own.tenant_id, "私下交易")


def test_records_search_finds_a_number_however_it_is_typed(ctx, orgs):
    own, _other = orgs
    conversation = db.session.get(Message, db.session.scalar(select(Message.id).limit(1))).conversation
    for line in [f"my phone is {PHONE}", "e-mail: Maria@Example.com", "nothing to see"]:
        db.session.add(Message(tenant_id=own.tenant_id, conversation=conversation, direction="in",
                               text=vault.protect(own.tenant_id, line), sent_at=conversation.started_at))
    db.session.flush()
    owner = db.session.get(User, own.users["owner"].id)

    def found(query: str) -> list[str]:
        filters = records.resolve_identifiers(owner, records.RecordFilters(text=query))
        rows = db.session.scalars(select(Message).where(*records.message_conditions(filters)).order_by(Message.id))
        return [vault.display(m.text) for m in rows]

    assert found("13800138000") == ["my phone is +** ***-****-8000"]
    assert found("+86 138 0013 8000") == ["my phone is +** ***-****-8000"]
    assert found("maria@example.com") == ["e-mail: *****@Example.com"]
    assert found("nothing") == ["nothing to see"], "other text is searched as before"


def test_the_server_check_is_stored_with_hints_pointing_into_the_shown_text(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    sent = "加我微信 wxid_abc123 私下交易"
    assert send(sio, [message(1, direction="out", text=sent)])["acked"] == ["event-0001"]
    with app.app_context():
        row = db.session.scalars(select(Message).where(
            Message.console_message_id == console_id(own.tenant_id, "row-1"))).one()
        shown = vault.display(row.text)
        assert "wxid_abc123" not in row.text and "wxid_abc123" not in json.dumps(row.server_check)
        for finding in row.server_check["findings"]:
            assert shown[finding["start"]:finding["end"]] == finding["text"]
        assert {f["text"] for f in row.server_check["findings"]} == {"私下交易", "微信 ***********"}


# ---- key rotation --------------------------------------------------------------------------------------

def test_rotation_re_encrypts_everything_and_retires_the_old_keys(ctx, orgs):
    own, other = orgs
    stored = [vault.protect(own.tenant_id, f"call +86 139 0000 {n:04d}") for n in range(5)]
    stored.append(vault.protect(other.tenant_id, "mail me: someone@example.org"))
    db.session.commit()
    before = {r.id: (r.data_key_id, r.ciphertext) for r in db.session.scalars(select(CustomerIdentifier))}
    old_keys = set(db.session.scalars(select(DataKey.id)))
    progress = []

    rotations = key_rotation.rotate_all(batch_size=2, progress=progress.append)

    assert sum(progress) == len(before) == sum(r.moved for r in rotations)
    db.session.expire_all()
    for row in db.session.scalars(select(CustomerIdentifier)):
        assert row.data_key_id not in old_keys and row.ciphertext != before[row.id][1]
    retired = dict(db.session.execute(select(DataKey.id, DataKey.retired_at)).all())
    assert all(retired[k] is not None for k in old_keys)
    assert [vault.reveal_text(own.tenant_id, s) for s in stored[:5]] == [f"call +86 139 0000 {n:04d}"
                                                                         for n in range(5)]
    assert vault.reveal_text(other.tenant_id, stored[5]) == "mail me: someone@example.org"
    assert db.session.scalar(select(func.count()).select_from(AuditLogEntry)
                             .where(AuditLogEntry.action == "keys.rotate")) == 2
    # new identifiers go under the new key; a second run moves them all again
    fresh = vault.identifiers_in(vault.protect(own.tenant_id, "+86 137 0000 0000"))[0]
    assert db.session.get(CustomerIdentifier, fresh).data_key_id == rotations[0].new_key_id
    db.session.commit()
    again = key_rotation.rotate_all()
    assert again[0].retired_key_ids == [rotations[0].new_key_id]


def test_an_interrupted_rotation_resumes(ctx, orgs):
    own, _other = orgs
    stored = [vault.protect(own.tenant_id, f"+86 139 1111 {n:04d}") for n in range(4)]
    db.session.commit()
    target = key_rotation.start_rotation(own.tenant_id)
    assert key_rotation.move_batch(own.tenant_id, target, batch_size=1) == 1  # then the process stops
    result = key_rotation.rotate_tenant(own.tenant_id)
    assert result.new_key_id == target.id and result.moved == 3
    assert key_rotation.remaining(own.tenant_id, target.id) == 0
    assert [vault.reveal_text(own.tenant_id, s) for s in stored] == [f"+86 139 1111 {n:04d}" for n in range(4)]


# ---- the master key ------------------------------------------------------------------------------------

def test_derived_keys_differ_by_purpose(app):
    keys = {p: derive_key(app, p) for p in ("identifier-index", "data-key-wrap", "audit-chain", "backup")}
    assert len(set(keys.values())) == 4 and all(len(k) == 32 for k in keys.values())
    assert load_master_key(app) not in keys.values()


def test_the_key_file_must_be_private(tmp_path):
    app = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
                      "VEIL_MASTER_KEY": ""}, config_class=TestConfig)
    with pytest.raises(MasterKeyError, match="veil init"):
        load_master_key(app)
    path = create_master_key_file(app)
    assert path == master_key_path(app) and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert create_master_key_file(app) is None, "an existing key is never replaced"
    path.chmod(0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        load_master_key(app)
    path.chmod(0o600)
    assert len(load_master_key(app)) == 32


def test_init_creates_the_master_key_and_serve_refuses_a_readable_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "VEIL_MASTER_KEY", "VEIL_SECRET_KEY")}
    env["VEIL_INSTANCE_PATH"] = str(tmp_path / "instance")

    def veil(*args):
        return subprocess.run([sys.executable, "-m", "backend.cli", *args], env=env, capture_output=True, text=True,
                              timeout=120)

    done = veil("init")
    assert done.returncode == 0, done.stderr
    key_file = tmp_path / "instance" / "master.key"
    assert "master key created" in done.stdout and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = key_file.read_text()
    assert veil("init").returncode == 0 and key_file.read_text() == first
    key_file.chmod(0o640)
    refused = veil("serve", "--port", "1")
    assert refused.returncode == 2 and "chmod 600" in refused.stderr


# ---- the leak test -------------------------------------------------------------------------------------

# Known identifiers, each as written into the chat.
LEAKS = {
    "phone_cn": "+86 139-8765-4321",
    "phone_in": "+91 98765 43210",
    "phone_br": "+55 11 91234-5678",
    "phone_us": "+1 (415) 555-2671",
    "email": "Leak.Test.Person@Example.org",
    "email_2": "zhang.wei.leak@example.net",
    "id_card": "11010519491231002X",  # a valid checksum
    "bank_card": "4111 1111 1111 1111",  # Luhn-valid
    "wechat": "wxid_leak2024",
}


def forms(value: str) -> set[str]:
    """The identifier as it might appear: as written, in other case, digits only (with and without the country
    code), grouped with spaces or dashes."""
    found = {value, value.lower(), value.upper()}
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) >= 8:
        found.add(digits)
        for size in (1, 2, 3):
            if value.startswith("+"):
                found.add(digits[size:])
        for sep in (" ", "-", "."):
            found.add(sep.join(digits[i:i + 4] for i in range(0, len(digits), 4)))
            found.add(sep.join([digits[:3], digits[3:7], digits[7:]]))
    return {f for f in found if len(f) >= 6}


def encodings(form: str) -> set[bytes]:
    raw = form.encode("utf-8")
    encoded = {raw, form.encode("utf-16-le"), form.encode("utf-16-be"),
               json.dumps(form).encode(), json.dumps(form, ensure_ascii=True).encode(),
               "".join(f"\\u{ord(c):04x}" for c in form).encode(),
               urllib.parse.quote(form).encode(), urllib.parse.quote_plus(form).encode(),
               base64.b64encode(raw), base64.b64encode(raw).rstrip(b"="), base64.urlsafe_b64encode(raw),
               raw.hex().encode(), raw.hex().upper().encode()}
    return {e for e in encoded if len(e) >= 6}


def leaks_in(blob: bytes) -> list[str]:
    lowered = blob.lower()
    hits = []
    for name, value in LEAKS.items():
        for form in forms(value):
            for needle in encodings(form):
                if needle in blob or needle.lower() in lowered:
                    hits.append(f"{name}: {needle[:40]!r}")
    return hits


def write_through_the_stack(app, org) -> None:
    """Every way customer text reaches the database: messages in and out, an edit, a deletion, behaviour
    the extension reports, a change to a message never logged, and a supervisor's reply."""
    sio = connect(app, org.device_id)
    events = [
        # WhatsApp's row ids carry the customer's number: the id is stored keyed.
        message(1, text=f"我的电话是 {LEAKS['phone_cn']}，邮箱 {LEAKS['email']}",
                message_id="false_8613987654321@c.us_3EB0C431D5A5E2F0"),
        message(2, text=f"India office {LEAKS['phone_in']}, Brasil {LEAKS['phone_br']}"),
        message(3, direction="out", text=f"加我微信 {LEAKS['wechat']} 私下交易"),
        message(4, text=f"身份证 {LEAKS['id_card']} 卡号 {LEAKS['bank_card']}"),
        message(5, text="hello"),
    ]
    assert send(sio, events)["acked"] == [e["id"] for e in events]
    changes = [
        change(6, of=5, text=f"hello, call {LEAKS['phone_us']}", previous_text="hello"),
        change(7, of=2, kind="message_deleted", text=f"India office {LEAKS['phone_in']}, Brasil {LEAKS['phone_br']}"),
        change(8, of=99, kind="message_deleted", text=f"mail {LEAKS['email_2']}"),
        behaviour(9, text=f"加我微信 {LEAKS['wechat']}", reason=f"customer asked, {LEAKS['phone_cn']}",
                  details={"note": LEAKS["email_2"]}),
        behaviour(10, kind="contact_request", text=f"call {LEAKS['phone_us']}"),
    ]
    assert send(sio, changes)["acked"] == [e["id"] for e in changes]
    with app.app_context():
        supervisor = db.session.get(User, org.users["supervisor"].id)
        # The grant check is another test's business: here only what is stored matters.
        original = interventions.can_read_message_text
        interventions.can_read_message_text = lambda *_a: True
        try:
            interventions.create_intervention(supervisor, org.conversation_id,
                                              f"您好，请拨 {LEAKS['phone_us']} 或写信到 {LEAKS['email']}")
        finally:
            interventions.can_read_message_text = original
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(CustomerIdentifier)) >= len(LEAKS)
        assert db.session.scalar(select(func.count()).select_from(MessageRevision)) == 2


@pytest.fixture
def fresh_app(request, tmp_path, app):
    """A database of its own (the shared one holds what other tests wrote straight into it)."""
    if app.config["DB_KIND"] == "postgres":
        schema = PG_SCHEMA + "_leak"
        engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"].split("?")[0])
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = app.config["SQLALCHEMY_DATABASE_URI"].split("?")[0] + "?options=" + urllib.parse.quote(
            f"-csearch_path={schema}")
    else:
        schema, engine = None, None
        url = f"sqlite:///{tmp_path}/leak.db"
    fresh = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": url,
                        "VEIL_SOCKETIO_QUEUE": None}, config_class=TestConfig)
    fresh.config["DB_KIND"] = app.config["DB_KIND"]
    with fresh.app_context():
        upgrade(directory=fresh.extensions["migrate"].directory)
        org = make_org("Leaky", identifier_key())
    yield fresh, org, schema
    with fresh.app_context():
        db.session.remove()
        db.engine.dispose()
    if engine is not None:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def test_no_identifier_reaches_the_database_in_any_encoding(fresh_app):
    app, org, schema = fresh_app
    write_through_the_stack(app, org)
    with app.app_context():
        # the stack still shows what was written, masked, and reveals it
        shown = [m.to_dict()["text"] for m in db.session.scalars(select(Message).order_by(Message.id))]
        assert "我的电话是 +** ***-****-4321，邮箱 ****************@Example.org" in shown
        first = db.session.scalars(select(Message).where(Message.console_message_id == console_id(
            org.tenant_id, "false_8613987654321@c.us_3EB0C431D5A5E2F0"))).one()
        assert vault.reveal_text(org.tenant_id, first.text) == f"我的电话是 {LEAKS['phone_cn']}，邮箱 {LEAKS['email']}"
        if app.config["DB_KIND"] == "postgres":
            blob = dump_postgres(schema)
        else:
            db.session.remove()
            db.engine.dispose()
            path = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
            blob = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())
    assert len(blob) > 10_000, "the dump holds the data"
    assert leaks_in(blob) == []
    # the test can see a leak: the same bytes with one identifier in them are caught
    assert leaks_in(blob + LEAKS["bank_card"].replace(" ", "").encode("utf-16-le"))


def dump_postgres(schema: str) -> bytes:
    """Every table of the schema, COPY … TO STDOUT (bytea as hex, as pg_dump writes it)."""
    import psycopg

    out = bytearray()
    with psycopg.connect(postgres_url()) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,))]
        assert "message" in tables and "customer_identifier" in tables
        for table in tables:
            with conn.cursor().copy(f'COPY "{schema}"."{table}" TO STDOUT') as copy:
                for chunk in copy:
                    out += bytes(chunk)
    return bytes(out)


def test_the_leak_check_finds_what_it_should():
    assert leaks_in(b"xx 13987654321 yy")
    assert leaks_in(json.dumps("Leak.Test.Person@Example.org").encode())
    assert leaks_in(base64.b64encode(b"wxid_leak2024"))
    assert leaks_in(urllib.parse.quote("+55 11 91234-5678").encode())
    assert not leaks_in(b"+** ***-****-4321 *****@Example.org")
    assert AT  # the ingest helpers' clock
