"""A customer's rights over their data: found by phone number or e-mail address written any way, exported as
JSON with their own identifiers in clear (and nobody else's), erased (identifiers destroyed everywhere, what
they wrote redacted, their conversations unlinked), refused under a legal hold, and audited without the
identifier. Data written through the real ingest, so conversations are keyed as in production."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import AuditLogEntry, BehaviourEvent, Conversation, CustomerIdentifier, Message, User
from backend.models.base import utcnow
from backend.models.retention import LegalHold
from backend.security.passwords import hash_password
from backend.services import customer_data, records, vault
from tests.conftest import sign_in
from tests.grants_helper import OWNER_PASSWORD, owner_with_key
from tests.test_ingest import (  # noqa: F401  (_fresh_process_state: an autouse fixture)
    CUSTOMER,
    _fresh_process_state,
    behaviour,
    change,
    connect,
    console_id,
    message,
    send,
)

PHONE = "139 0000 1111"  # the customer's number as they wrote it (CUSTOMER keys their chat: +86 139 0000 1111)
EMAIL = "li.na@example.com"
ID_CARD = "11010519491231002X"
AGENT_HANDLE = "wxid_abc123"
OTHER_CUSTOMER = "+86 137 1111 2222"


def other_chat(n: int, **fields) -> dict:
    return message(n, conversation={"key": "chat-2", "title": "Ms Zhao", "customer": OTHER_CUSTOMER}, **fields)


@pytest.fixture
def history(app, orgs):
    """The customer's chat (theirs by key), a mention of their number in another customer's chat, a
    behaviour event quoting it; the owner gets a password. Returns (org, ids)."""
    own, _other = orgs
    sio = connect(app, own.device_id)
    events = [
        message(1, text=f"我的邮箱 {EMAIL}，电话 {PHONE}"),
        message(2, direction="out", text="好的，已记录您的电话 13900001111"),
        message(3, text="hello"),
        message(4, direction="out", text=f"加我微信 {AGENT_HANDLE} 私下交易"),
        other_chat(5, text="hi"),
        other_chat(6, direction="out", text="王先生的号码是 139-0000-1111"),
    ]
    assert send(sio, events)["acked"] == [e["id"] for e in events]
    later = [change(7, of=3, text=f"hello, my ID {ID_CARD}", previous_text="hello"),
             behaviour(8, text="call 13900001111 now", conversation={"key": "chat-1", "customer": CUSTOMER})]
    assert send(sio, later)["acked"] == [e["id"] for e in later]
    with app.app_context():
        owner_with_key(own.users["owner"].id)
        db.session.commit()
        stored = {m.console_message_id: m for m in db.session.scalars(select(Message))}
        rows = {f"row-{n}": stored[console_id(own.tenant_id, f"row-{n}")] for n in range(1, 7)}
        ids = {"chat": rows["row-1"].conversation_id, "other_chat": rows["row-5"].conversation_id,
               "mention": rows["row-6"].id, "handle_message": rows["row-4"].id, "edited": rows["row-3"].id}
        ids["agent_handle"] = vault.identifiers_in(rows["row-4"].text)[0]
    return own, ids


def owner(app, org) -> User:
    return db.session.get(User, org.users["owner"].id)


def api(client, org, path: str, body: dict, role: str = "owner"):
    return client.post(f"/api/v1/customer-data/{path}", json=body,
                       headers={"Authorization": f"Bearer {org.tokens[role]}"})


def audit(app, action: str) -> list[AuditLogEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == action)))


# ---- finding ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["13900001111", "+86 139-0000-1111", "8613900001111", EMAIL.upper()])
def test_the_customer_is_found_by_number_or_email_written_any_way(app, history, value):
    org, ids = history
    with app.app_context():
        found = customer_data.find_customer(owner(app, org), value)
        assert found.conversation_ids == [ids["chat"]], "their chat, not the other customer's"
        assert found.mention_ids == [ids["mention"]], "the agent passing their number on elsewhere"
        kinds = set(db.session.scalars(select(CustomerIdentifier.kind).where(
            CustomerIdentifier.id.in_(found.identifier_ids))))
        assert kinds == {"phone", "email", "id_card"}, "what they wrote in their chat is theirs"
        assert ids["agent_handle"] not in found.identifier_ids, "the agent's own handle is not the customer's"
        events = db.session.scalars(select(BehaviourEvent).where(BehaviourEvent.id.in_(found.behaviour_event_ids)))
        seen = {(e.type, e.conversation_id) for e in events}
        assert ("send_blocked", ids["chat"]) in seen, "what the agent tried to send them"
        assert ("message_edited", ids["chat"]) in seen
        assert all(conversation == ids["chat"] for _type, conversation in seen)


def test_a_lookup_shows_counts_and_is_audited_without_the_number(app, client, history):
    org, ids = history
    answer = api(client, org, "lookup", {"value": "13900001111"})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert [c["id"] for c in body["conversations"]] == [ids["chat"]]
    assert body["messages"] == 4 and body["mentions"] == 1 and body["holds"] == []
    assert "text" not in json.dumps(body), "a lookup shows no message text"
    [entry] = audit(app, "customer_data.lookup")
    assert "1111" not in json.dumps(entry.details) and entry.details["conversations"] == [ids["chat"]]


@pytest.mark.parametrize("body, code", [
    ({"value": "hello there"}, "not_an_identifier"),
    ({"value": ""}, "missing_field"),
    ({"value": 13900001111}, "wrong_type"),
    ({"value": "1" * 500}, "invalid_value"),
    ({}, "wrong_type"),
])
def test_a_value_that_names_no_one_is_a_clear_error(client, history, body, code):
    org, _ids = history
    answer = api(client, org, "lookup", body)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == code


def test_only_key_holders_handle_requests(app, client, history):
    org, _ids = history
    refused = api(client, org, "lookup", {"value": "13900001111"}, role="admin")
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "not_key_holder"
    assert api(client, org, "lookup", {"value": "13900001111"}, role="supervisor").status_code == 403
    assert api(client, org, "lookup", {"value": "13900001111"}, role="agent").status_code == 403


# ---- access ------------------------------------------------------------------------------------------------

def test_the_export_holds_everything_with_only_the_customers_identifiers_in_clear(app, client, history):
    org, ids = history
    answer = api(client, org, "export", {"value": "+86 139 0000 1111", "password": OWNER_PASSWORD})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    assert "attachment" in answer.headers["Content-Disposition"]
    document = json.loads(answer.get_data(as_text=True))
    assert document["format"] == customer_data.EXPORT_FORMAT
    assert {(i["kind"], i["value"]) for i in document["identifiers"]} == {
        ("phone", PHONE), ("email", EMAIL), ("id_card", ID_CARD)}
    [chat] = document["conversations"]
    texts = [m["text"] for m in chat["messages"]]
    assert texts[0] == f"我的邮箱 {EMAIL}，电话 {PHONE}", "their own words, in clear"
    # One customer's number is one vault row however it was written: shown as they first wrote it.
    assert texts[1] == f"好的，已记录您的电话 {PHONE}"
    assert AGENT_HANDLE not in json.dumps(document, ensure_ascii=False), "someone else's identifier stays masked"
    assert chat["messages"][2]["versions"][0]["text"] == f"hello, my ID {ID_CARD}"
    [mention] = document["mentions"]
    assert mention["message"]["text"] == f"王先生的号码是 {PHONE}"
    assert mention["conversation"]["id"] == ids["other_chat"]
    assert f"call {PHONE} now" in [e["details"].get("text") for e in document["behaviour_events"]]
    [entry] = audit(app, "customer_data.export")
    assert "1111" not in json.dumps(entry.details) and entry.details["conversations"] == [ids["chat"]]


def test_the_export_needs_the_password_and_counts_wrong_ones(app, client, history):
    org, _ids = history
    wrong = api(client, org, "export", {"value": "13900001111", "password": "guess"})
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "wrong_password"
    assert len(audit(app, "customer_data.password_failed")) == 1, "kept although the request failed"
    assert audit(app, "customer_data.export") == []
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        api(client, org, "export", {"value": "13900001111", "password": "guess"})
    throttled = api(client, org, "export", {"value": "13900001111", "password": OWNER_PASSWORD})
    assert throttled.status_code == 429


# ---- erasure -----------------------------------------------------------------------------------------------

def erase(client, org, value: str = "13900001111", **extra):
    return api(client, org, "erase", {"value": value, "password": OWNER_PASSWORD, "confirm": "ERASE", **extra})


def test_a_legal_hold_stops_the_erasure_and_nothing_changes(app, client, history):
    org, ids = history
    with app.app_context():
        db.session.add(LegalHold(tenant_id=org.tenant_id, conversation_id=ids["other_chat"], reason="dispute 42",
                                 created_at=utcnow()))
        db.session.commit()
        before = [m.text for m in db.session.scalars(select(Message).order_by(Message.id))]
    answer = erase(client, org)
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "legal_hold"
    assert "dispute 42" in answer.get_json()["error"]["message"]
    with app.app_context():
        assert [m.text for m in db.session.scalars(select(Message).order_by(Message.id))] == before
    assert audit(app, "customer_data.erase") == []


def test_erasure_needs_the_typed_confirmation(client, history):
    org, _ids = history
    answer = erase(client, org, confirm="yes")
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "confirm_required"


def test_erasure_destroys_the_identifiers_redacts_what_they_wrote_and_unlinks_them(app, client, history):
    org, ids = history
    with app.app_context():
        pseudonym = db.session.get(Conversation, ids["chat"]).customer_pseudonym
        theirs = customer_data.find_customer(owner(app, org), EMAIL).identifier_ids
    answer = erase(client, org, "+86 139 0000 1111")
    assert answer.status_code == 200, answer.get_json()
    result = answer.get_json()
    assert result["identifiers"] == 3 and result["conversations"] == 1 and result["messages_redacted"] == 2
    with app.app_context():
        assert db.session.scalars(select(CustomerIdentifier).where(CustomerIdentifier.id.in_(theirs))).all() == []
        assert db.session.get(CustomerIdentifier, ids["agent_handle"]) is not None, "only the customer's"
        chat = [m.to_dict() for m in db.session.scalars(select(Message).where(
            Message.conversation_id == ids["chat"]).order_by(Message.id))]
        assert [m["text"] for m in chat] == [customer_data.ERASED, "好的，已记录您的电话 ***",
                                             customer_data.ERASED, "加我微信 *********** 私下交易"]
        assert chat[2]["revisions"][0]["text"] == customer_data.ERASED, "every version of what they wrote"
        assert db.session.get(Message, ids["mention"]).to_dict()["text"] == "王先生的号码是 ***"
        conversation = db.session.get(Conversation, ids["chat"])
        assert conversation.customer_pseudonym != pseudonym
        event = db.session.scalars(select(BehaviourEvent).where(BehaviourEvent.type == "send_blocked")).one()
        assert vault.display_details(event.details)["text"] == "call *** now"
        # The records search finds neither the number nor what they wrote.
        reader = db.session.get(User, org.users["owner"].id)
        filters = records.RecordFilters(text="13900001111")
        assert records.resolve_identifiers(reader, filters).tokens == ()
        hits = db.session.scalars(select(Message.id).where(records.text_condition("我的邮箱"))).all()
        assert hits == []
        # Nothing is found any more; the export says so.
        again = customer_data.find_customer(owner(app, org), "13900001111")
        assert (again.identifier_ids, again.conversation_ids, again.mention_ids) == ([], [], [])
    [entry] = audit(app, "customer_data.erase")
    assert "1111" not in json.dumps(entry.details) and entry.details["identifiers"] == 3
    # The customer writing again starts a new, unlinked conversation.
    sio = connect(app, org.device_id)
    assert send(sio, [message(20, text="我又来了")])["acked"] == ["event-0020"]
    with app.app_context():
        new = db.session.scalars(select(Message).where(
            Message.console_message_id == console_id(org.tenant_id, "row-20"))).one()
        assert new.conversation_id != ids["chat"]


def test_export_then_erase_round_trip(app, client, history):
    """What the export holds is what the erasure removes: after it, an export holds nothing."""
    org, _ids = history
    before = json.loads(api(client, org, "export", {"value": EMAIL, "password": OWNER_PASSWORD}).get_data())
    assert before["identifiers"] and before["conversations"]
    assert erase(client, org, EMAIL).status_code == 200
    after = json.loads(api(client, org, "export", {"value": EMAIL, "password": OWNER_PASSWORD}).get_data())
    assert (after["identifiers"], after["conversations"], after["mentions"]) == ([], [], [])
    assert erase(client, org, EMAIL).get_json()["error"]["code"] == "not_found"


# ---- the panel ---------------------------------------------------------------------------------------------

def test_the_panel_finds_exports_and_erases(app, client, history):
    org, ids = history
    with app.app_context():
        db.session.get(User, org.users["owner"].id).password_hash = hash_password(OWNER_PASSWORD)
        db.session.commit()
        pseudonym = db.session.get(Conversation, ids["chat"]).customer_pseudonym
    csrf = sign_in(client, org.users["owner"])
    page = client.get("/customer-data")
    assert page.status_code == 200 and 'name="value"' in page.get_data(as_text=True)
    found = client.post("/customer-data", data={"csrf_token": csrf, "value": "13900001111"})
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and pseudonym in html and 'id="customer-erase"' in html
    download = client.post("/customer-data/export", data={"csrf_token": csrf, "value": "13900001111",
                                                          "password": OWNER_PASSWORD})
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert EMAIL in download.get_data(as_text=True)
    unconfirmed = client.post("/customer-data/erase", data={"csrf_token": csrf, "value": "13900001111",
                                                            "password": OWNER_PASSWORD, "confirm": ""})
    assert unconfirmed.status_code == 400 and "ERASE" in unconfirmed.get_data(as_text=True)
    erased = client.post("/customer-data/erase", data={"csrf_token": csrf, "value": "13900001111",
                                                       "password": OWNER_PASSWORD, "confirm": "ERASE"},
                         follow_redirects=True)
    assert erased.status_code == 200 and "3" in erased.get_data(as_text=True)
    assert len(audit(app, "customer_data.erase")) == 1


def test_the_panel_escapes_and_refuses_admins(app, client, history):
    org, _ids = history
    csrf = sign_in(client, org.users["admin"])
    page = client.get("/customer-data").get_data(as_text=True)
    assert 'name="value"' not in page, "an admin the owner does not allow sees no form"
    answer = client.post("/customer-data", data={"csrf_token": csrf, "value": "<script>x</script> 13900001111"})
    assert answer.status_code == 403 and "<script>x" not in answer.get_data(as_text=True)
