"""`veil keys protect-existing`: a database from before encryption at rest holds identifiers in clear in
messages, revisions, behaviour details, interventions and the server's checks. After the pass none is left
in the raw database, what is shown is masked, search still finds the messages, and a second run changes
nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text

from backend import cli
from backend.extensions import db
from backend.models import (
    AuditLogEntry,
    BehaviourEvent,
    Conversation,
    Intervention,
    Message,
    MessageRevision,
    ProtectProgress,
    Tenant,
    User,
)
from backend.models.base import utcnow
from backend.security.identifiers import console_message_ref, identifier_key
from backend.services import protect_existing, records, vault
from backend.services.ingest import server_check
from tests.test_vault import LEAKS, dump_postgres, leaks_in
from tests.test_vault import fresh_app as fresh_app  # noqa: F401  (the fixture: a database of its own)

CONSOLE_ID = f"false_{''.join(c for c in LEAKS['phone_cn'] if c.isdigit())}@c.us_3EB0C0FFEE"
INCOMING = f"我的电话是 {LEAKS['phone_cn']}，邮箱 {LEAKS['email']}"
OUTGOING = f"加我微信 {LEAKS['wechat']} 私下交易"
EDITED = f"加我微信 {LEAKS['wechat']}，或打 {LEAKS['phone_us']} 私下交易"
DELETED = f"India office {LEAKS['phone_in']}"
REPLY = f"您好，请拨 {LEAKS['phone_us']} 或写信到 {LEAKS['email_2']}"
DETAILS = {"console": "whatsapp", "text": f"加我微信 {LEAKS['wechat']}", "previous_text": LEAKS["email_2"],
           "reason": f"customer asked, {LEAKS['phone_br']}",
           "details": {"note": f"ID {LEAKS['id_card']}", "cards": [LEAKS["bank_card"], 3]}}


def write_old_rows(app, org) -> dict:
    """Rows as a database from before the vault holds them: clear text, checks pointing into it."""
    with app.app_context():
        tenant = db.session.get(Tenant, org.tenant_id)
        conversation = db.session.get(Conversation, org.conversation_id)
        at = utcnow()
        incoming = Message(tenant_id=org.tenant_id, conversation=conversation, direction="in", text=INCOMING,
                           sent_at=at, console_message_id=CONSOLE_ID)
        outgoing = Message(tenant_id=org.tenant_id, conversation=conversation, direction="out", text=OUTGOING,
                           sent_at=at, server_check=server_check(tenant, conversation, OUTGOING, at, window=False))
        db.session.add_all([incoming, outgoing])
        db.session.flush()
        assert LEAKS["wechat"] in json.dumps(outgoing.server_check), "an old check holds the matched text"
        db.session.add_all([
            MessageRevision(tenant_id=org.tenant_id, message_id=outgoing.id, kind="edit", text=EDITED, occurred_at=at,
                            server_check=server_check(tenant, conversation, EDITED, at, window=False)),
            MessageRevision(tenant_id=org.tenant_id, message_id=incoming.id, kind="delete", text=DELETED,
                            occurred_at=at),
            BehaviourEvent(tenant_id=org.tenant_id, agent_id=org.agent.id, conversation_id=conversation.id,
                           type="contact_request", details=DETAILS, occurred_at=at),
            Intervention(tenant_id=org.tenant_id, conversation_id=conversation.id, agent_id=org.agent.id,
                         text=REPLY, expires_at=at),
        ])
        # Written through the vault already: must come out of the pass unchanged.
        already = Message(tenant_id=org.tenant_id, conversation=conversation, direction="in", sent_at=at,
                          text=vault.protect(org.tenant_id, f"new style {LEAKS['phone_cn']}"))
        db.session.add(already)
        db.session.commit()
        ids = {"incoming": incoming.id, "outgoing": outgoing.id, "already": already.id}
        db.session.remove()
    return ids


def snapshot(app) -> dict:
    with app.app_context():
        rows = {model.__tablename__: [tuple(r) for r in db.session.execute(
            select(*model.__table__.columns).order_by(model.id))]
            for model in (Message, MessageRevision, BehaviourEvent, Intervention)}
        db.session.remove()
    return rows


def run(app, *args: str):
    original = cli.make_app
    cli.make_app = lambda: app
    try:
        return CliRunner().invoke(cli.main, ["keys", "protect-existing", *args])
    finally:
        cli.make_app = original


def raw_database(app, schema: str | None) -> bytes:
    if schema is not None:
        return dump_postgres(schema)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    path = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def test_protect_existing_leaves_no_identifier_in_the_database(fresh_app):  # noqa: F811
    app, org, schema = fresh_app
    ids = write_old_rows(app, org)
    assert leaks_in(raw_database(app, schema)), "the old rows hold the identifiers in clear"
    with app.app_context():
        already_before = db.session.get(Message, ids["already"]).text
        # The first batch of messages, then the process stops: the command goes on from there.
        first, upper = db.session.execute(select(func.min(Message.id), func.max(Message.id))).one()
        assert protect_existing.protect_batch(protect_existing.SOURCES[0], upper, batch_size=1)[0] == 1
        assert db.session.scalar(select(ProtectProgress.last_id).where(
            ProtectProgress.table_name == "message")) == first
        db.session.remove()

    result = run(app, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert "message: 3 row(s) read, 2 protected" in result.output  # the make_org message, incoming, outgoing
    assert "message_revision: 2 row(s) read, 2 protected" in result.output
    assert "behaviour_event: 1 row(s) read, 1 protected" in result.output
    assert "intervention: 1 row(s) read, 1 protected" in result.output

    with app.app_context():
        incoming = db.session.get(Message, ids["incoming"])
        outgoing = db.session.get(Message, ids["outgoing"])
        assert incoming.to_dict()["text"] == "我的电话是 +** ***-****-4321，邮箱 ****************@Example.org"
        assert vault.reveal_text(org.tenant_id, incoming.text) == INCOMING, "the originals are kept, encrypted"
        assert incoming.console_message_id == console_message_ref(identifier_key(), org.tenant_id, CONSOLE_ID)
        assert db.session.get(Message, ids["already"]).text == already_before, "protected text is left alone"
        checked = db.session.scalars(select(MessageRevision).where(MessageRevision.server_check.isnot(None)))
        for row in (outgoing, *checked):
            shown = vault.display(row.text)
            assert LEAKS["wechat"] not in json.dumps(row.server_check, ensure_ascii=False)
            findings = row.server_check["findings"]
            assert findings and all(shown[f["start"]:f["end"]] == f["text"] for f in findings)
        assert {f["text"] for f in outgoing.server_check["findings"]} == {"私下交易", "微信 *************"}
        event = db.session.scalars(select(BehaviourEvent)).one()
        shown = event.to_dict()["details"]
        assert shown["console"] == "whatsapp" and shown["details"]["cards"][1] == 3
        assert shown["reason"] == "customer asked, +** ** *****-5678"
        intervention = db.session.scalars(select(Intervention)).one()
        assert vault.reveal_text(org.tenant_id, intervention.text) == REPLY

        # Search still finds the message by its words and by the number, however it is typed.
        owner = db.session.get(User, org.users["owner"].id)

        def found(query: str) -> list[int]:
            filters = records.resolve_identifiers(owner, records.RecordFilters(text=query))
            return list(db.session.scalars(select(Message.id).where(*records.message_conditions(filters))
                                           .order_by(Message.id)))

        assert found("我的电话是") == [ids["incoming"]]
        assert found("13987654321") == found("+86 139 8765 4321") == [ids["incoming"], ids["already"]]
        if app.config["DB_KIND"] == "sqlite":
            for table in ("search_index_message", "search_index_revision"):
                db.session.execute(text(f"INSERT INTO {table}({table}) VALUES ('integrity-check')"))
        entry = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == "keys.protect_existing")).one()
        assert entry.details["tables"]["message"] == {"scanned": 3, "changed": 2}
        db.session.remove()

    blob = raw_database(app, schema)
    assert len(blob) > 10_000, "the dump holds the data"
    assert leaks_in(blob) == []

    # A second run, and one from the start, change nothing.
    before = snapshot(app)
    again = run(app)
    assert again.exit_code == 0 and "message: 0 row(s) read" in again.output, again.output
    restarted = run(app, "--restart")
    assert restarted.exit_code == 0, restarted.output
    assert "message: 4 row(s) read, 0 protected" in restarted.output
    assert snapshot(app) == before


@pytest.mark.parametrize("stored, expected", [
    ("nothing to protect here", "nothing to protect here"),
    ("call 13987654321 now", "call \ue000{0}\ue001 now"),
    ("a stray \ue000 from before the vault", "a stray \ufffd from before the vault"),
])
def test_protect_stored_is_idempotent(ctx, orgs, stored, expected):
    own, _other = orgs
    once, _ = protect_existing.protect_stored(own.tenant_id, stored)
    ids = vault.identifiers_in(once)
    assert once == expected.format(*ids)
    twice, _ = protect_existing.protect_stored(own.tenant_id, once)
    assert twice == once
