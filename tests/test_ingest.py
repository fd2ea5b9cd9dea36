"""Ingest over `/agent` `events`: one transaction per batch, acknowledged by event id, stored once.

Every test speaks to the real Socket.IO handler through flask_socketio's test client, as the extension
does over its websocket.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.extensions import db, socketio
from backend.models import BehaviourEvent, ChatAccount, Conversation, Message, MessageRevision, User
from backend.models.behaviour import REPORTED_KINDS
from backend.security.identifiers import console_message_ref, customer_ref, identifier_key
from backend.security.rate_limit import TokenBuckets
from backend.services import ingest, rule_sets, vault
from backend.services.devices import create_enrolment_code, enrol_device
from tests.conftest import device_token
from tests.grants_helper import issue_grant

AT = 1_790_000_000_000  # ms since 1970, in 2026
CUSTOMER = "+86 139 0000 1111"
EXTENSION = Path(__file__).resolve().parents[1] / "extension"


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch):
    """Flood buckets and engines live in the process; ids restart after each test's cleanup."""
    monkeypatch.setattr(ingest, "flood_control", TokenBuckets(ingest.FLOOD_RATE, ingest.FLOOD_BURST))
    monkeypatch.setattr(rule_sets, "_ENGINES", {})


def connect(app, device_id: int):
    sio = socketio.test_client(app, namespace="/agent", auth={"token": device_token(app, device_id)})
    assert sio.is_connected("/agent")
    return sio


def send(sio, events: list, **batch):
    return sio.emit("events", {"v": 1, "events": events, **batch}, namespace="/agent", callback=True)


def message(n: int, **fields) -> dict:
    event = {"id": f"event-{n:04d}", "type": "message", "at": AT + n * 1000, "console": "whatsapp",
             "account": "Acme sales", "conversation": {"key": "chat-1", "title": "Mr Wang", "customer": CUSTOMER},
             "message_id": f"row-{n}", "direction": "in", "text": f"hello {n}"}
    event.update(fields)
    return event


def behaviour(n: int, kind: str = "send_blocked", **fields) -> dict:
    event = {"id": f"event-{n:04d}", "type": "behaviour", "at": AT + n * 1000, "console": "whatsapp",
             "account": "Acme sales", "kind": kind, "text": "加我私人微信", "rule": "private_deal"}
    event.update(fields)
    return event


def change(n: int, of: int, kind: str = "message_edited", **fields) -> dict:
    event = {"id": f"event-{n:04d}", "type": kind, "at": AT + n * 1000, "console": "whatsapp",
             "account": "Acme sales", "conversation": {"key": "chat-1", "customer": CUSTOMER},
             "message_id": f"row-{of}"}
    event.update(fields)
    return event


def console_id(tenant_id: int, raw: str) -> str:
    """How a console's message id is stored (keyed: it may hold the customer's number). In an app context."""
    return console_message_ref(identifier_key(), tenant_id, raw)


def count(model, **where) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return db.session.scalar(query)


# ---- storing and acknowledging --------------------------------------------------------------------

def test_a_batch_is_stored_and_acked(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    events = [message(1), message(2, direction="out", text="您好，有货的"), behaviour(3)]
    ack = send(sio, events)
    assert ack == {"ok": True, "acked": ["event-0001", "event-0002", "event-0003"], "errors": []}
    with app.app_context():
        rows = db.session.scalars(select(Message).where(Message.device_id == own.device_id)
                                  .order_by(Message.id)).all()
        assert [(m.client_event_id, m.console_message_id, m.direction) for m in rows] == [
            ("event-0001", console_id(own.tenant_id, "row-1"), "in"),
            ("event-0002", console_id(own.tenant_id, "row-2"), "out")]
        assert rows[0].sent_at.timestamp() * 1000 == AT + 1000
        conversation = rows[0].conversation
        assert conversation.agent_id == own.agent.id and conversation.tenant_id == own.tenant_id
        assert conversation.chat_account.platform == "whatsapp"
        assert conversation.chat_account.handle == "Acme sales"
        assert conversation.customer_pseudonym.startswith("客户-")
        assert "1111" not in conversation.customer_ref, "the customer's number is stored only as a keyed hash"
        assert conversation.last_message_at == rows[1].sent_at
        event = db.session.scalars(select(BehaviourEvent).where(BehaviourEvent.client_event_id == "event-0003")).one()
        assert event.type == "send_blocked" and event.device_id == own.device_id
        assert event.details == {"console": "whatsapp", "account": "Acme sales", "text": "加我私人微信",
                                 "rule": "private_deal"}


def test_a_replayed_batch_is_acked_again_and_stored_once(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    events = [message(1), message(2, direction="out", text="好的"), behaviour(3), change(4, of=1, text="hi")]
    first = send(sio, events)
    again = send(sio, events)  # the acknowledgement was lost, so the outbox sends the batch again
    assert again == first and len(first["acked"]) == 4
    with app.app_context():
        assert count(Message, device_id=own.device_id) == 2
        assert count(BehaviourEvent, client_event_id="event-0003") == 1
        assert count(MessageRevision) == 1


def test_a_row_read_again_after_a_page_reload_is_stored_once(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    assert send(sio, [message(1)])["acked"] == ["event-0001"]
    # the content script read the same row again and gave it a new event id
    assert send(sio, [message(2, message_id="row-1")])["acked"] == ["event-0002"]
    with app.app_context():
        assert count(Message, device_id=own.device_id) == 1


def test_a_conversation_keyed_before_the_master_key_is_found_and_re_keyed(app, orgs):
    """Conversations made before issue 6 hold refs keyed by the secret key: the extension's chat lookup
    still finds one, and the customer's next message lands in it and re-keys it."""
    own, _other = orgs
    with app.app_context():
        agent = db.session.get(User, own.agent.id)
        account = db.session.scalars(select(ChatAccount).where(ChatAccount.agent_id == agent.id,
                                                               ChatAccount.handle == "Acme sales")).one()
        legacy = customer_ref(app.config["SECRET_KEY"], own.tenant_id, CUSTOMER)
        old = Conversation(tenant_id=own.tenant_id, chat_account_id=account.id, agent_id=agent.id,
                           customer_ref=legacy, customer_pseudonym="客户-OLD000")
        db.session.add(old)
        db.session.commit()
        old_id = old.id
    sio = connect(app, own.device_id)
    chat = {"console": "whatsapp", "account": "Acme sales", "key": "chat-1", "customer": CUSTOMER}
    assert sio.emit("resolve_chats", {"chats": [chat]}, namespace="/agent",
                    callback=True)["conversation_ids"] == [old_id]
    assert send(sio, [message(1)])["acked"] == ["event-0001"]
    with app.app_context():
        row = db.session.scalars(select(Message).where(Message.device_id == own.device_id)).one()
        assert row.conversation_id == old_id, "the customer's history is not split in two"
        conversation = db.session.get(Conversation, old_id)
        assert conversation.customer_ref == customer_ref(identifier_key(), own.tenant_id, CUSTOMER)
        assert conversation.customer_pseudonym != "客户-OLD000"
        assert count(Conversation, customer_ref=legacy) == 0


def test_a_row_logged_before_ids_were_keyed_is_still_recognised(app, orgs):
    """Rows stored before console ids were keyed hold the id as given: a reload or an edit still finds them."""
    own, _other = orgs
    sio = connect(app, own.device_id)
    assert send(sio, [message(1, message_id="false_8613900001111@c.us_AAA")])["acked"] == ["event-0001"]
    with app.app_context():
        row = db.session.scalars(select(Message).where(Message.device_id == own.device_id)).one()
        assert row.console_message_id == console_id(own.tenant_id, "false_8613900001111@c.us_AAA")
        assert "8613900001111" not in row.console_message_id
        row.console_message_id = "legacy-row"  # as an older Veil stored it
        db.session.commit()
    send(sio, [message(2, message_id="legacy-row"), change(3, of=0, message_id="legacy-row", text="edited")])
    with app.app_context():
        assert count(Message, device_id=own.device_id) == 1 and count(MessageRevision) == 1


def test_a_batch_is_one_transaction(app, orgs, monkeypatch):
    own, _other = orgs
    sio = connect(app, own.device_id)

    def broken(self, event):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ingest._Batch, "store_behaviour", broken)
    ack = send(sio, [message(1), message(2), behaviour(3)])
    assert ack["ok"] is False and ack["error"]["code"] == "internal_error"
    assert sio.is_connected("/agent")
    with app.app_context():
        assert count(Message, device_id=own.device_id) == 0, "nothing of a failed batch is kept"


# ---- what is refused ------------------------------------------------------------------------------

LONG = "x" * (ingest.MAX_TEXT_CHARS + 1)
BAD_EVENTS = {
    "not an object": (42, "not_an_object", None),
    "no id": ({"type": "message"}, "invalid_id", "id"),
    "short id": (message(9, id="short"), "invalid_id", "id"),
    "id with spaces": (message(9, id="event 0009"), "invalid_id", "id"),
    "unknown type": (message(9, type="message_forwarded"), "unknown_type", "type"),
    "at as text": (message(9, at="2026-01-01"), "wrong_type", "at"),
    "at as true": (message(9, at=True), "wrong_type", "at"),
    "at in seconds": (message(9, at=1_790_000_000), "invalid_value", "at"),
    "no at": (message(9, at=None), "missing_field", "at"),
    "console upper case": (message(9, console="WhatsApp"), "invalid_value", "console"),
    "no conversation": (message(9, conversation=None), "missing_field", "conversation"),
    "conversation as text": (message(9, conversation="chat-1"), "wrong_type", "conversation"),
    "no key": (message(9, conversation={"customer": CUSTOMER}), "missing_field", "conversation.key"),
    "long key": (message(9, conversation={"key": "k" * 201}), "too_long", "conversation.key"),
    "long account": (message(9, account="a" * 201), "too_long", "account"),
    "text too long": (message(9, text=LONG), "too_long", "text"),
    "text as number": (message(9, text=12), "wrong_type", "text"),
    "no text": (message(9, text=None), "missing_field", "text"),
    "lone surrogate": (message(9, text="ok \ud800 ok"), "invalid_text", "text"),
    "NUL": (message(9, text="a\x00b"), "invalid_text", "text"),
    "surrogate in customer": (message(9, conversation={"key": "k", "customer": "\udfff"}), "invalid_text",
                              "conversation.customer"),
    "direction": (message(9, direction="sideways"), "invalid_value", "direction"),
    "no message id": (message(9, message_id=None), "missing_field", "message_id"),
    "sent_at as float": (message(9, sent_at=1.5), "wrong_type", "sent_at"),
    "unknown behaviour": (behaviour(9, kind="screenshot"), "invalid_value", "kind"),
    "long reason": (behaviour(9, kind="send_warned", reason="r" * 1001), "too_long", "reason"),
    "details as list": (behaviour(9, details=[1]), "wrong_type", "details"),
    "details too big": (behaviour(9, details={"blob": "x" * 5000}), "too_long", "details"),
    "details too deep": (behaviour(9, details={"a": {"b": {"c": {"d": {"e": 1}}}}}), "too_long", "details"),
    "details surrogate key": (behaviour(9, details={"\ud800": 1}), "invalid_text", "details"),
    "edit without text": (change(9, of=1), "missing_field", "text"),
}


@pytest.mark.parametrize("bad,code,field", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_a_bad_event_gets_its_own_error_and_the_rest_is_stored(app, orgs, bad, code, field):
    own, _other = orgs
    sio = connect(app, own.device_id)
    ack = send(sio, [message(1), bad, message(2)])
    assert ack["ok"] is True and ack["acked"] == ["event-0001", "event-0002"]
    [error] = ack["errors"]
    assert error["error"] == code and error.get("field") == field and error["message"]
    assert error["id"] == (bad.get("id") if isinstance(bad, dict) else None), "echoed so the outbox can drop it"
    assert sio.is_connected("/agent")
    with app.app_context():
        assert count(Message, device_id=own.device_id) == 2


def test_text_at_the_limit_is_stored_whole(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    text = "𝄞" * ingest.MAX_TEXT_CHARS  # code points, not UTF-16 units or bytes
    assert send(sio, [message(1, text=text)])["acked"] == ["event-0001"]
    with app.app_context():
        assert db.session.scalars(select(Message.text)).all()[-1] == text


def test_unknown_fields_are_ignored(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    ack = send(sio, [message(1, colour="blue", conversation={"key": "chat-1", "avatar": "x"})], note="new client")
    assert ack["acked"] == ["event-0001"] and ack["errors"] == []


BAD_BATCHES = {
    "nothing": (None, "invalid_batch"),
    "a list": ([message(1)], "invalid_batch"),
    "no events": ({"v": 1}, "invalid_batch"),
    "events as object": ({"v": 1, "events": {"0": message(1)}}, "invalid_batch"),
    "no version": ({"events": [message(1)]}, "unsupported_version"),
    "version 2": ({"v": 2, "events": [message(1)]}, "unsupported_version"),
    "version true": ({"v": True, "events": [message(1)]}, "unsupported_version"),
    "too many": ({"v": 1, "events": [message(n) for n in range(ingest.MAX_BATCH_EVENTS + 1)]}, "too_many_events"),
}


@pytest.mark.parametrize("payload,code", BAD_BATCHES.values(), ids=BAD_BATCHES.keys())
def test_a_malformed_batch_is_refused_whole(app, orgs, payload, code):
    own, _other = orgs
    sio = connect(app, own.device_id)
    ack = sio.emit("events", payload, namespace="/agent", callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == code
    assert sio.is_connected("/agent")
    with app.app_context():
        assert count(Message, device_id=own.device_id) == 0


def test_an_empty_batch_is_fine(app, orgs):
    own, _other = orgs
    assert send(connect(app, own.device_id), []) == {"ok": True, "acked": [], "errors": []}


# ---- tenancy --------------------------------------------------------------------------------------

def test_a_device_writes_only_into_its_own_tenant_and_agent(app, orgs):
    own, other = orgs
    acme = connect(app, own.device_id)
    assert send(acme, [message(1, direction="out", text="v1")])["errors"] == []
    # Bolt's device names the same console, account, conversation and row, and tries to edit Acme's row.
    bolt = connect(app, other.device_id)
    ack = send(bolt, [message(2, message_id="row-9"), change(3, of=1, text="tampered"),
                      change(4, of=1, kind="message_deleted")])
    assert ack["acked"] == ["event-0002", "event-0003", "event-0004"]
    with app.app_context():
        acme_row = db.session.scalars(select(Message).where(
            Message.console_message_id == console_id(own.tenant_id, "row-1"))).one()
        assert acme_row.tenant_id == own.tenant_id
        assert acme_row.revisions == [] and acme_row.edited_at is None and acme_row.deleted_at is None
        bolt_row = db.session.scalars(select(Message).where(
            Message.console_message_id == console_id(other.tenant_id, "row-9"))).one()
        assert bolt_row.tenant_id == other.tenant_id and bolt_row.conversation.agent_id == other.agent.id
        assert bolt_row.conversation_id != acme_row.conversation_id
        bolt_events = db.session.scalars(select(BehaviourEvent).where(BehaviourEvent.device_id == other.device_id,
                                                                       BehaviourEvent.type.like("message_%"))).all()
        assert {(e.tenant_id, e.details["message_id"]) for e in bolt_events} == {(other.tenant_id, None)}


def test_the_chat_account_is_on_the_platform_the_console_serves(app, orgs, monkeypatch):
    own, _other = orgs
    real = ingest.compiled_payload

    def with_consoles(row):
        payload, text = real(row)
        return {**payload, "consoles": [{"id": "telegram_k", "platform": "telegram"}]}, text

    monkeypatch.setattr(ingest, "compiled_payload", with_consoles)
    sio = connect(app, own.device_id)
    assert send(sio, [message(1, console="telegram_k"), message(2, console="generic")])["errors"] == []
    with app.app_context():
        platforms = db.session.scalars(select(ChatAccount.platform).where(ChatAccount.agent_id == own.agent.id,
                                                                          ChatAccount.handle == "Acme sales"))
        assert sorted(platforms) == ["generic", "telegram", "whatsapp"]  # whatsapp: the fixture's own


def test_agents_sharing_a_company_account_each_get_their_own(app, orgs):
    own, _other = orgs
    with app.app_context():
        second = db.session.get(User, own.other_agent.id)
        _pending, code = create_enrolment_code(None, second, 3600)
        device = enrol_device(code).device
        db.session.commit()
        second_device_id = device.id
    assert send(connect(app, own.device_id), [message(1)])["errors"] == []
    assert send(connect(app, second_device_id), [message(2)])["errors"] == []
    with app.app_context():
        accounts = db.session.scalars(select(ChatAccount).where(ChatAccount.handle == "Acme sales")).all()
        assert sorted(a.agent_id for a in accounts) == sorted([own.agent.id, own.other_agent.id])
        ref = customer_ref(identifier_key(), own.tenant_id, CUSTOMER)
        agents = db.session.scalars(select(Conversation.agent_id).where(Conversation.customer_ref == ref)).all()
        assert sorted(agents) == sorted([own.agent.id, own.other_agent.id])


# ---- edits and deletions --------------------------------------------------------------------------

def test_an_edit_keeps_every_version_and_a_deletion_the_last_one(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    ack = send(sio, [message(1, direction="out", text="v1"), change(2, of=1, text="v2", previous_text="v1"),
                     change(3, of=1, text="v3"), change(4, of=1, kind="message_deleted")])
    assert ack["errors"] == [] and len(ack["acked"]) == 4
    with app.app_context():
        row = db.session.scalars(select(Message).where(
            Message.console_message_id == console_id(own.tenant_id, "row-1"))).one()
        assert row.text == "v1", "the first version stays as it was logged"
        assert [(r.kind, r.text, int(r.occurred_at.timestamp() * 1000)) for r in row.revisions] == [
            ("edit", "v2", AT + 2000), ("edit", "v3", AT + 3000), ("delete", "v3", AT + 4000)]
        assert int(row.edited_at.timestamp() * 1000) == AT + 3000
        assert int(row.deleted_at.timestamp() * 1000) == AT + 4000
        types = db.session.scalars(select(BehaviourEvent.type).where(BehaviourEvent.device_id == own.device_id)
                                   .order_by(BehaviourEvent.id)).all()
        assert types == ["message_edited", "message_edited", "message_deleted"]
        conversation_id = row.conversation_id
        owner_token = own.tokens["owner"]
        issue_grant(own, own.users["owner"].id, department_ids=[own.sales_id])  # reading records needs a key
    body = app.test_client().get(f"/api/v1/conversations/{conversation_id}/messages",
                                 headers={"Authorization": f"Bearer {owner_token}"}).get_json()
    [shown] = [m for m in body["messages"] if m["text"] == "v1"]
    assert [(r["kind"], r["text"]) for r in shown["revisions"]] == [("edit", "v2"), ("edit", "v3"), ("delete", "v3")]
    assert shown["deleted_at"] and shown["edited_at"]


def test_a_deletion_keeps_the_text_the_console_last_showed(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    send(sio, [message(1, text="v1"), change(2, of=1, kind="message_deleted", text="v1, as last seen")])
    with app.app_context():
        [revision] = db.session.scalars(select(MessageRevision)).all()
        assert (revision.kind, revision.text) == ("delete", "v1, as last seen")


def test_the_same_change_from_two_devices_is_stored_once(app, orgs):
    own, _other = orgs
    with app.app_context():
        agent = db.session.get(User, own.agent.id)
        _pending, code = create_enrolment_code(None, agent, 3600)
        device = enrol_device(code).device
        db.session.commit()
        second_device_id = device.id
    first, second = connect(app, own.device_id), connect(app, second_device_id)
    send(first, [message(1, text="v1"), change(2, of=1, text="v2")])
    send(second, [message(3, message_id="row-1", text="v1"), change(4, of=1, text="v2")])
    with app.app_context():
        assert count(Message, console_message_id=console_id(own.tenant_id, "row-1")) == 1
        assert count(MessageRevision) == 1


def test_a_change_to_a_message_never_logged_is_kept_as_behaviour(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    ack = send(sio, [change(1, of=77, kind="message_deleted", text="my number is 138 0013 8000")])
    assert ack["acked"] == ["event-0001"]
    with app.app_context():
        event = db.session.scalars(select(BehaviourEvent).where(BehaviourEvent.type == "message_deleted")).one()
        # the number is stored as a token (backend/services/vault.py) and shown masked
        assert "0013" not in event.details["text"] and vault.identifiers_in(event.details["text"])
        assert event.to_dict()["details"] == {"console": "whatsapp", "message_id": None,
                                              "text": "my number is *** **** 8000"}
        assert event.conversation_id is not None


# ---- the server's own check ------------------------------------------------------------------------

def server_hits(device_id: int) -> list[BehaviourEvent]:
    return db.session.scalars(select(BehaviourEvent).where(BehaviourEvent.device_id == device_id,
                                                           BehaviourEvent.type == "server_rule_hit")).all()


@pytest.mark.parametrize("text,action,categories", [
    ("加我私人微信 wxid_abc123 私下给你便宜点", "block", {"private_deal", "handle"}),
    ("call me on 138 0013 8000", "block", {"phone"}),
    ("you idiot", "warn", {"abuse"}),
])
def test_outgoing_messages_are_checked_again_on_the_server(app, orgs, text, action, categories):
    own, _other = orgs
    sio = connect(app, own.device_id)
    assert send(sio, [message(1, direction="out", text=text)])["errors"] == []
    with app.app_context():
        row = db.session.scalars(select(Message).where(Message.client_event_id == "event-0001")).one()
        assert row.server_check["action"] == action
        assert {f["category"] for f in row.server_check["findings"]} >= categories
        assert row.server_check["rules"] == rule_sets.compiled_payload(
            rule_sets.current_rule_set(row.conversation.chat_account.agent.tenant))[0]["hash"]
        [hit] = server_hits(own.device_id)
        assert hit.details["message_id"] == row.id and hit.details["action"] == action
        assert hit.conversation_id == row.conversation_id
        assert all("text" not in f for f in hit.details["findings"]), "the matched text stays on the message"


def test_clean_and_incoming_messages_raise_nothing(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    send(sio, [message(1, direction="out", text="您好，今天下单明天发货"),
               message(2, direction="in", text="my number is 138 0013 8000")])
    with app.app_context():
        rows = {m.client_event_id: m for m in db.session.scalars(select(Message).where(
            Message.device_id == own.device_id))}
        assert rows["event-0001"].server_check["action"] == "allow"
        assert rows["event-0002"].server_check is None
        assert server_hits(own.device_id) == []


def test_a_number_split_over_messages_is_caught(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    send(sio, [message(1, direction="out", text="我电话 138"), message(2, direction="out", text="0013 8000")])
    with app.app_context():
        [hit] = server_hits(own.device_id)
        assert hit.details["findings"][0]["rule"] == "contact.phone.split"


def test_an_edit_that_adds_a_number_is_caught(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    send(sio, [message(1, direction="out", text="see you"), change(2, of=1, text="call me on 138 0013 8000")])
    with app.app_context():
        [revision] = db.session.scalars(select(MessageRevision)).all()
        assert revision.server_check["action"] == "block"
        [hit] = server_hits(own.device_id)
        assert hit.details["revision_id"] == revision.id


def test_the_check_follows_the_tenants_current_rules(app, orgs):
    own, other = orgs
    sio = connect(app, own.device_id)
    send(sio, [message(1, direction="out", text="try the durian cake")])
    response = app.test_client().put("/api/v1/rules", json={"categories": {"fruit": ["durian"]}},
                                     headers={"Authorization": f"Bearer {own.tokens['owner']}"})
    assert response.status_code == 200
    send(sio, [message(2, direction="out", text="try the durian cake")])
    send(connect(app, other.device_id), [message(3, direction="out", text="try the durian cake")])
    with app.app_context():
        actions = {m.client_event_id: m.server_check["action"] for m in db.session.scalars(select(Message))
                   if m.client_event_id}
        assert actions == {"event-0001": "allow", "event-0002": "block", "event-0003": "allow"}


# ---- flood control --------------------------------------------------------------------------------

def test_a_flooding_device_is_slowed_down(app, orgs, monkeypatch):
    own, other = orgs
    now = [0.0]
    monkeypatch.setattr(ingest, "flood_control", TokenBuckets(2, 3, clock=lambda: now[0]))
    sio = connect(app, own.device_id)
    assert send(sio, [message(1), message(2), message(3)])["ok"] is True
    refused = send(sio, [message(4), message(5)])
    assert refused["ok"] is False and refused["error"]["code"] == "rate_limited"
    assert refused["error"]["details"] == {"retry_after": 1}
    assert sio.is_connected("/agent")
    assert send(connect(app, other.device_id), [message(6)])["ok"] is True, "other devices have their own bucket"
    now[0] += 1.0
    assert send(sio, [message(4), message(5)])["acked"] == ["event-0004", "event-0005"]
    with app.app_context():
        assert count(Message, device_id=own.device_id) == 5


def test_malformed_batches_count_against_the_flood_too(app, orgs, monkeypatch):
    own, _other = orgs
    monkeypatch.setattr(ingest, "flood_control", TokenBuckets(1, 3, clock=lambda: 0.0))
    sio = connect(app, own.device_id)
    for _ in range(3):
        assert sio.emit("events", "junk", namespace="/agent", callback=True)["error"]["code"] == "invalid_batch"
    assert sio.emit("events", "junk", namespace="/agent", callback=True)["error"]["code"] == "rate_limited"


def test_token_buckets():
    now = [0.0]
    bucket = TokenBuckets(50, 500, clock=lambda: now[0])
    assert bucket.take("d", 500) == 0
    assert bucket.take("d", 100) == pytest.approx(2.0)
    now[0] += 2.0
    assert bucket.take("d", 100) == 0
    assert bucket.take("d", 10_000) == pytest.approx(10.0), "a cost over the burst waits for a full bucket"


# ---- rules pushed to devices ----------------------------------------------------------------------

def rules_pushes(sio) -> list:
    return [p["args"][0] for p in sio.get_received("/agent") if p["name"] == "rules_changed"]


def test_saving_rules_tells_that_tenants_devices(app, orgs):
    own, other = orgs
    acme, bolt = connect(app, own.device_id), connect(app, other.device_id)
    acme.get_received("/agent")
    response = app.test_client().put("/api/v1/rules", json={"categories": {"fruit": ["durian"]}},
                                     headers={"Authorization": f"Bearer {own.tokens['owner']}"})
    assert response.status_code == 200
    etag = app.test_client().get("/api/v1/rules", headers={"Authorization": f"Bearer {own.tokens['owner']}"}
                                 ).headers["ETag"]
    assert rules_pushes(acme) == [{"version": etag.strip('"')}]
    assert rules_pushes(bolt) == []
    # saving the same rules again makes no version and no push
    app.test_client().put("/api/v1/rules", json={"categories": {"fruit": ["durian"]}},
                          headers={"Authorization": f"Bearer {own.tokens['owner']}"})
    assert rules_pushes(acme) == []


def test_rules_are_pushed_only_once_committed(app, orgs):
    own, _other = orgs
    sio = connect(app, own.device_id)
    sio.get_received("/agent")
    with app.app_context():
        owner = db.session.get(User, own.users["owner"].id)
        rule_sets.save_rule_set(owner, {"categories": {"fruit": ["durian"]}})
        assert rules_pushes(sio) == []
        db.session.rollback()
        assert rules_pushes(sio) == [], "a rolled-back save is never announced"
        rule_sets.save_rule_set(owner, {"categories": {"fruit": ["durian"]}})
        db.session.commit()
        assert len(rules_pushes(sio)) == 1


# ---- concurrency ----------------------------------------------------------------------------------

def test_two_racing_copies_of_a_batch_store_each_event_once(app, orgs, monkeypatch):
    """Two connections of one device send the same batch at once (a resend crossing a late ack)."""
    own, _other = orgs
    clients = [connect(app, own.device_id), connect(app, own.device_id)]
    with app.app_context():
        rule_sets.current_rule_set(db.session.get(User, own.agent.id).tenant)  # seeded, as in any live tenant
        db.session.commit()
    # On PostgreSQL, where the conversation exists already, both copies are held until each has found the
    # first message missing, so both insert it and one waits for the other's commit. (SQLite has one writer:
    # the second copy waits at its first write, so holding the first would only stall both.)
    meet: list = [None]
    original_insert = ingest.insert_if_absent

    def insert_together(model, values):
        barrier = meet[0]
        if model is Message and barrier is not None:
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
            meet[0] = None
        return original_insert(model, values)

    monkeypatch.setattr(ingest, "insert_if_absent", insert_together)
    for round_ in range(4):
        chat = {"key": f"chat-{round_}", "customer": f"+86 139 0000 {round_:04d}"}
        if round_ % 2:
            assert send(clients[0], [message(round_ * 100, conversation=chat)])["errors"] == []
            meet[0] = threading.Barrier(2) if app.config["DB_KIND"] == "postgres" else None
        batch = [message(round_ * 100 + n, direction="out" if n % 2 else "in", text=f"text {n}", conversation=chat)
                 for n in range(1, 21)]
        batch.append(behaviour(round_ * 100 + 50))
        go = threading.Barrier(2)
        acks: list = [None, None]

        def run(i: int, batch=batch, go=go, acks=acks) -> None:
            go.wait()
            acks[i] = send(clients[i], batch)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        ids = [e["id"] for e in batch]
        assert acks[0] == acks[1] == {"ok": True, "acked": ids, "errors": []}
        with app.app_context():
            stored = db.session.scalars(select(Message.client_event_id).where(
                Message.client_event_id.in_(ids))).all()
            assert sorted(stored) == sorted(ids[:-1])
            assert count(BehaviourEvent, client_event_id=ids[-1]) == 1
            assert count(Conversation, agent_id=own.agent.id) == 2 + round_


# ---- the extension speaks the same protocol ---------------------------------------------------------

def test_the_extension_and_the_server_agree_on_the_protocol():
    source = (EXTENSION / "shared" / "events.js").read_text()

    def js_list(name: str) -> list[str]:
        body = re.search(rf"{name} = Object\.freeze\(\[(.*?)\]\)", source, re.S).group(1)
        return re.findall(r"'([a-z_]+)'", body)

    def js_number(name: str) -> int:
        return int(re.search(rf"{name} = ([\d_]+)", source).group(1).replace("_", ""))

    assert js_list("BEHAVIOUR_KINDS") == list(REPORTED_KINDS)
    assert js_list("EVENT_TYPES") == list(ingest.EVENT_TYPES)
    assert js_number("PROTOCOL_VERSION") == ingest.PROTOCOL_VERSION
    assert js_number("MAX_BATCH_EVENTS") == ingest.MAX_BATCH_EVENTS
    assert js_number("MAX_TEXT_CHARS") == ingest.MAX_TEXT_CHARS
    assert js_number("MAX_NAME_CHARS") == ingest.MAX_NAME_CHARS
    assert js_number("MAX_REASON_CHARS") == ingest.MAX_REASON_CHARS
    assert js_number("MAX_DETAILS_BYTES") == ingest.MAX_DETAILS_BYTES
