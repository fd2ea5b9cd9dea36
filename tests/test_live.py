"""The Live view and interventions: pushes to /panel by scope, the live JSON, and a supervisor's reply on
its way to the agent's console (create, deliver, claim, send, attribute), all over the real handlers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from backend.extensions import db, socketio
from backend.models import AuditLogEntry, ChatAccount, Device, Intervention, Message, Role, User
from backend.models.base import utcnow
from backend.models.tenancy import Department
from backend.security.identifiers import identifier_key
from backend.security.rate_limit import TokenBuckets
from backend.services import ingest, interventions, rule_sets
from backend.services.conversations import find_or_create_conversation
from backend.services.devices import create_enrolment_code, enrol_device
from tests.conftest import device_token, sign_in
from tests.grants_helper import revoke_grants_of, staff_read
from tests.test_ingest import console_id

AT = 1_790_000_000_000
CUSTOMER = "+86 138 0013 8000"  # the customer of conftest's conversation


@pytest.fixture
def orgs(orgs, app):
    """conftest's tenants, whose staff hold private keys: reading records needs one (tests/test_grants.py)."""
    for org in orgs:
        staff_read(app, org)
    return orgs


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch):
    """Buckets and engines live in the process, and ids restart after each test's cleanup."""
    monkeypatch.setattr(ingest, "flood_control", TokenBuckets(ingest.FLOOD_RATE, ingest.FLOOD_BURST))
    monkeypatch.setattr(interventions, "creations", TokenBuckets(1 / 3, 10))
    monkeypatch.setattr(interventions, "chat_lookups", TokenBuckets(5, 50))
    monkeypatch.setattr(rule_sets, "_ENGINES", {})


# ---- helpers ----------------------------------------------------------------------------------------

def agent_socket(app, device_id: int):
    sio = socketio.test_client(app, namespace="/agent", auth={"token": device_token(app, device_id)})
    assert sio.is_connected("/agent")
    return sio


def panel_socket(app, user):
    client = app.test_client()
    csrf = sign_in(client, user)
    sio = socketio.test_client(app, namespace="/panel", flask_test_client=client)
    assert sio.is_connected("/panel")
    return sio, client, csrf


def received(sio, name: str | None = None, namespace: str = "/panel") -> list:
    # flask_socketio's test client keeps a `message` event's data as is, other events' as a list
    return [(item["name"], item["args"] if item["name"] == "message" else item["args"][0])
            for item in sio.get_received(namespace) if name is None or item["name"] == name]


def message_event(n: int, *, text: str | None = None, direction: str = "in", customer: str = CUSTOMER,
                  account: str = "Acme sales", **fields) -> dict:
    event = {"id": f"live-event-{n:04d}", "type": "message", "at": AT + n * 1000, "console": "whatsapp",
             "account": account, "conversation": {"key": "chat-1", "customer": customer},
             "message_id": f"row-{n}", "direction": direction, "text": text if text is not None else f"hello {n}"}
    event.update(fields)
    return event


def send_events(sio, events: list) -> dict:
    ack = sio.emit("events", {"v": 1, "events": events}, namespace="/agent", callback=True)
    assert ack["ok"] is True, ack
    return ack


def make_user(app, org, role: str, label: str, department_id: int) -> User:
    with app.app_context():
        user = User(tenant_id=org.tenant_id, email=f"{label}@{org.name.lower()}.test", display_name=label, role=role)
        user.departments = [db.session.get(Department, department_id)]
        db.session.add(user)
        db.session.commit()
        return db.session.get(User, user.id)


def second_device(app, agent_id: int) -> int:
    with app.app_context():
        agent = db.session.get(User, agent_id)
        _device, code = create_enrolment_code(None, agent, 3600)
        enrolment = enrol_device(code, label="second browser")
        db.session.commit()
        return enrolment.device.id


def create(client, csrf: str, conversation_id: int, body) -> tuple[int, dict]:
    response = client.post(f"/api/v1/live/conversations/{conversation_id}/interventions", json=body,
                           headers={"X-CSRFToken": csrf})
    return response.status_code, response.get_json()


def status(sio, intervention_id: int, state: str, **extra) -> dict:
    return sio.emit("intervention_status", {"id": intervention_id, "status": state, **extra}, namespace="/agent",
                    callback=True)


# ---- pushes to /panel ---------------------------------------------------------------------------------

def test_messages_reach_watchers_and_activity_reaches_scope_only(app, orgs):
    own, other = orgs
    support_supervisor = make_user(app, own, Role.SUPERVISOR, "night-supervisor", own.support_id)
    watcher, _c, _t = panel_socket(app, own.users["supervisor"])
    assert watcher.emit("watch_conversation", {"conversation_id": own.conversation_id}, namespace="/panel",
                        callback=True)["ok"] is True
    owner, _c, _t = panel_socket(app, own.users["owner"])
    outsider, _c, _t = panel_socket(app, support_supervisor)
    stranger, _c, _t = panel_socket(app, other.users["owner"])
    device = agent_socket(app, own.device_id)
    assert received(outsider) == [] and received(stranger) == []
    for sio in (watcher, owner):
        sio.get_received("/panel")

    send_events(device, [message_event(1, text="我的地址是人民路 1 号"),
                         message_event(2, direction="out", text="好的")])

    pushed = received(watcher)
    messages = [data for name, data in pushed if name == "message"]
    assert [m["message"]["text"] for m in messages] == ["我的地址是人民路 1 号", "好的"]
    assert all(m["conversation_id"] == own.conversation_id and m["author"] is None for m in messages)
    activity = [data for name, data in pushed if name == "activity"]
    assert {(a["kind"], a["count"]) for a in activity} == {("message_in", 1), ("message_out", 1)}
    assert all(a["agent_id"] == own.agent.id and a["conversation_id"] == own.conversation_id for a in activity)

    # the owner hears the activity (managers room) but, not watching, no text
    owner_pushes = received(owner)
    assert {name for name, _ in owner_pushes} == {"activity"}
    assert "人民路" not in json.dumps(owner_pushes, ensure_ascii=False)
    # activity never carries text, to anyone
    assert "人民路" not in json.dumps(activity, ensure_ascii=False)
    assert set(activity[0]) == {"agent_id", "conversation_id", "customer_pseudonym", "kind", "type", "at", "count",
                                "since"}
    # `since` is the device's time of the oldest event counted, not the push time.
    assert all(a["since"] and a["since"] <= a["at"] for a in activity)
    assert activity[0]["customer_pseudonym"].startswith("客户-")
    # another department's supervisor and another tenant hear nothing at all
    assert received(outsider) == []
    assert received(stranger) == []


def test_edits_and_deletions_are_pushed_with_their_revisions(app, orgs):
    own, _other = orgs
    watcher, _c, _t = panel_socket(app, own.users["supervisor"])
    watcher.emit("watch_conversation", {"conversation_id": own.conversation_id}, namespace="/panel", callback=True)
    device = agent_socket(app, own.device_id)
    send_events(device, [message_event(1, text="明天三点")])
    watcher.get_received("/panel")
    send_events(device, [{"id": "live-edit-0001", "type": "message_edited", "at": AT + 5000, "console": "whatsapp",
                          "account": "Acme sales", "conversation": {"key": "chat-1", "customer": CUSTOMER},
                          "message_id": "row-1", "text": "明天四点"}])
    pushed = received(watcher)
    changed = [data for name, data in pushed if name == "message_changed"]
    assert len(changed) == 1
    message = changed[0]["message"]
    assert message["text"] == "明天三点" and message["edited_at"]
    assert [r["kind"] for r in message["revisions"]] == ["edit"] and message["revisions"][0]["text"] == "明天四点"
    kinds = [data["kind"] for name, data in pushed if name == "activity"]
    assert kinds == ["message_edited"], "the edit's behaviour event is not told twice"


def test_unwatching_stops_the_messages(app, orgs):
    own, _other = orgs
    watcher, _c, _t = panel_socket(app, own.users["supervisor"])
    ask = {"conversation_id": own.conversation_id}
    watcher.emit("watch_conversation", ask, namespace="/panel", callback=True)
    assert watcher.emit("unwatch_conversation", ask, namespace="/panel", callback=True) == {"ok": True}
    assert watcher.emit("unwatch_conversation", {"conversation_id": "x"}, namespace="/panel",
                        callback=True)["ok"] is False
    device = agent_socket(app, own.device_id)
    watcher.get_received("/panel")
    send_events(device, [message_event(1)])
    assert [name for name, _ in received(watcher)] == ["activity"]


def test_agent_status_when_a_device_comes_and_goes(app, orgs):
    own, _other = orgs
    support_supervisor = make_user(app, own, Role.SUPERVISOR, "night-supervisor", own.support_id)
    supervisor, _c, _t = panel_socket(app, own.users["supervisor"])
    outsider, _c, _t = panel_socket(app, support_supervisor)
    device = agent_socket(app, own.device_id)
    device.disconnect(namespace="/agent")
    statuses = [data for name, data in received(supervisor) if name == "agent_status"]
    assert [(s["agent_id"], s["device_id"], s["online"]) for s in statuses] == [
        (own.agent.id, own.device_id, True), (own.agent.id, own.device_id, False)]
    assert received(outsider) == []


def test_a_rolled_back_batch_pushes_nothing(app, orgs, monkeypatch):
    own, _other = orgs
    watcher, _c, _t = panel_socket(app, own.users["supervisor"])
    watcher.emit("watch_conversation", {"conversation_id": own.conversation_id}, namespace="/panel", callback=True)
    device = agent_socket(app, own.device_id)
    watcher.get_received("/panel")

    def broken(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest, "record_server_rule_hit", broken)
    monkeypatch.setattr(ingest, "RULE_HIT_ACTIONS", ("allow", "log", "warn", "block"))
    ack = device.emit("events", {"v": 1, "events": [
        message_event(1), message_event(2, direction="out")]}, namespace="/agent", callback=True)
    assert ack["ok"] is False
    assert received(watcher) == []


# ---- the live JSON and page -------------------------------------------------------------------------

def test_agents_overview_follows_scope(app, orgs):
    own, other = orgs
    device = agent_socket(app, own.device_id)
    send_events(device, [message_event(1, sent_at=None), message_event(2, direction="out")])
    client = app.test_client()
    sign_in(client, own.users["supervisor"])
    agents = client.get("/api/v1/live/agents").get_json()["agents"]
    assert [a["id"] for a in agents] == [own.agent.id], "a supervisor sees only their departments' agents"
    agent = agents[0]
    assert agent["online"] is True and agent["devices"][0]["id"] == own.device_id
    assert agent["current_conversation"]["id"] == own.conversation_id
    assert agent["current_conversation"]["customer_pseudonym"].startswith("客户-")
    assert agent["last_activity_at"]
    assert "hello" not in json.dumps(agents)

    owner = app.test_client()
    sign_in(owner, own.users["owner"])
    ids = {a["id"] for a in owner.get("/api/v1/live/agents").get_json()["agents"]}
    assert ids == {own.agent.id, own.other_agent.id}
    # another department's agent: 403; another tenant's: 404
    assert client.get(f"/api/v1/live/agents/{own.other_agent.id}/conversations").status_code == 403
    assert client.get(f"/api/v1/live/agents/{other.agent.id}/conversations").status_code == 404
    listed = client.get(f"/api/v1/live/agents/{own.agent.id}/conversations").get_json()["conversations"]
    assert [c["id"] for c in listed] == [own.conversation_id]


def test_conversation_view_shows_authors_and_revisions(app, orgs):
    own, other = orgs
    client = app.test_client()
    sign_in(client, own.users["supervisor"])
    view = client.get(f"/api/v1/live/conversations/{own.conversation_id}").get_json()
    assert view["can_intervene"] is True and view["text_hidden"] is False
    assert view["messages"][0]["text"].startswith("hello from a customer")
    assert view["messages"][0]["author"] is None
    assert client.get(f"/api/v1/live/conversations/{other.conversation_id}").status_code == 404


def test_conversation_view_hides_text_without_the_right_to_read_it(app, orgs):
    """Without a private grant covering the conversation: no text, no replies."""
    own, _other = orgs
    revoke_grants_of(app, own, own.users["supervisor"].id)
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    view = client.get(f"/api/v1/live/conversations/{own.conversation_id}").get_json()
    assert view["text_hidden"] is True and view["can_intervene"] is False
    assert [m["text"] for m in view["messages"]] == [None]
    assert create(client, csrf, own.conversation_id, {"text": "hi"})[0] == 403


def test_live_page_lists_the_agents_in_scope(app, orgs):
    own, _other = orgs
    client = app.test_client()
    sign_in(client, own.users["supervisor"])
    page = client.get("/live").get_data(as_text=True)
    data = json.loads(page.split('id="page-data">', 1)[1].split("</script>", 1)[0])
    assert [a["id"] for a in data["agents"]] == [own.agent.id]
    assert "build/live.js" in page and "live-intervene" in page


# ---- creating an intervention ------------------------------------------------------------------------

@pytest.mark.parametrize("body,code", [
    ({}, "wrong_type"),
    ({"text": 5}, "wrong_type"),
    ({"text": "   "}, "missing_field"),
    ({"text": "x" * 4097}, "too_long"),
    ({"text": "bad\u0000text"}, "invalid_text"),
])
def test_intervention_text_is_checked(app, orgs, body, code):
    own, _other = orgs
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    status_code, answer = create(client, csrf, own.conversation_id, body)
    assert status_code == 400 and answer["error"]["code"] == code
    with app.app_context():
        assert db.session.scalar(select(Intervention.id)) is None


def test_intervention_scope(app, orgs):
    own, other = orgs
    with app.app_context():
        agent2 = db.session.get(User, own.other_agent.id)
        account = ChatAccount(tenant_id=own.tenant_id, agent=agent2, platform="whatsapp", handle="support")
        db.session.add(account)
        db.session.flush()
        support_conversation = find_or_create_conversation(identifier_key(), account, "+1 555 0100").id
        db.session.commit()
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    assert create(client, csrf, other.conversation_id, {"text": "hi"})[0] == 404
    assert create(client, csrf, support_conversation, {"text": "hi"})[0] == 403
    assert create(client, csrf, 999_999, {"text": "hi"})[0] == 404
    agent = app.test_client()
    agent_csrf = sign_in(agent, own.users["agent"])
    assert create(agent, agent_csrf, own.conversation_id, {"text": "hi"})[0] == 403
    admin = app.test_client()
    admin_csrf = sign_in(admin, own.users["admin"])
    assert create(admin, admin_csrf, support_conversation, {"text": "hi"})[0] == 201


def test_intervention_is_rate_limited_and_audited(app, orgs):
    own, _other = orgs
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    for n in range(10):
        code, answer = create(client, csrf, own.conversation_id, {"text": f"reply {n}"})
        assert code == 201, answer
    code, answer = create(client, csrf, own.conversation_id, {"text": "one too many"})
    assert code == 429 and answer["error"]["code"] == "rate_limited"
    assert answer["error"]["details"]["retry_after"] >= 1
    with app.app_context():
        entries = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == "intervention.create")).all()
        assert len(entries) == 10 and entries[0].actor_user_id == own.users["supervisor"].id
        assert "reply" not in json.dumps(entries[0].details), "the audit trail keeps the length, not the text"


# ---- delivering it ----------------------------------------------------------------------------------

def test_a_new_intervention_is_sent_to_the_agents_devices_only(app, orgs):
    own, other = orgs
    device = agent_socket(app, own.device_id)
    foreign = agent_socket(app, other.device_id)
    device.get_received("/agent")
    foreign.get_received("/agent")
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    code, answer = create(client, csrf, own.conversation_id, {"text": "  您好，我是主管，马上为您处理。 "})
    assert code == 201 and answer["intervention"]["status"] == "queued"
    pushed = received(device, "intervene", namespace="/agent")
    assert len(pushed) == 1
    payload = pushed[0][1]
    assert payload["id"] == answer["intervention"]["id"]
    assert payload["text"] == "您好，我是主管，马上为您处理。"
    assert payload["conversation"]["id"] == own.conversation_id
    assert payload["conversation"]["platform"] == "whatsapp" and payload["conversation"]["account"] == "Acme sales"
    assert payload["conversation"]["customer_pseudonym"].startswith("客户-")
    assert CUSTOMER not in json.dumps(payload)
    assert received(foreign, "intervene", namespace="/agent") == []


def test_a_device_that_connects_later_asks_for_waiting_replies(app, orgs):
    own, _other = orgs
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    first = create(client, csrf, own.conversation_id, {"text": "first"})[1]["intervention"]["id"]
    second = create(client, csrf, own.conversation_id, {"text": "second"})[1]["intervention"]["id"]
    with app.app_context():
        db.session.get(Intervention, second).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    author, _c, _t = panel_socket(app, own.users["supervisor"])
    device = agent_socket(app, own.device_id)
    answer = device.emit("pending_interventions", None, namespace="/agent", callback=True)
    assert answer["ok"] is True and [i["id"] for i in answer["interventions"]] == [first]
    with app.app_context():
        assert db.session.get(Intervention, second).status == "expired"
    expired = [d["intervention"] for n, d in received(author) if n == "intervention"]
    assert [(i["id"], i["status"]) for i in expired] == [(second, "expired")]
    # expired: nobody may claim it any more
    assert status(device, second, "sending") == {"ok": True, "status": "expired", "claimed": False}


def test_status_reports_claim_once_and_reach_the_author(app, orgs):
    own, other = orgs
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    ident = create(client, csrf, own.conversation_id, {"text": "hello"})[1]["intervention"]["id"]
    author, _c, _t = panel_socket(app, own.users["supervisor"])
    device = agent_socket(app, own.device_id)
    twin = agent_socket(app, second_device(app, own.agent.id))
    stranger = agent_socket(app, other.device_id)

    assert status(stranger, ident, "sending")["error"]["code"] == "not_found"
    assert status(device, ident, "delivered") == {"ok": True, "status": "delivered", "claimed": False}
    assert status(twin, ident, "sending") == {"ok": True, "status": "delivered", "claimed": True}
    # the agent's other browser has lost the claim: it may neither claim nor finish it
    assert status(device, ident, "sending")["claimed"] is False
    assert status(device, ident, "sent")["status"] == "delivered"
    assert status(device, ident, "failed", error="no composer")["status"] == "delivered"
    assert status(twin, ident, "sending")["claimed"] is True, "claiming again is harmless"
    assert status(twin, ident, "sent") == {"ok": True, "status": "sent", "claimed": False}
    assert status(twin, ident, "bogus")["error"]["code"] == "invalid_value"
    assert status(twin, True, "sent")["error"]["code"] == "wrong_type"
    assert device.emit("intervention_status", "nope", namespace="/agent", callback=True)["ok"] is False

    seen = [(d["intervention"]["status"], d["intervention"]["device_id"])
            for n, d in received(author) if n == "intervention"]
    twin_id = seen[1][1]
    assert seen == [("delivered", None), ("delivered", twin_id), ("sent", twin_id)]
    with app.app_context():
        row = db.session.get(Intervention, ident)
        assert row.delivered_at and row.sent_at and row.device_id == twin_id


def test_a_failure_is_recorded_with_its_reason(app, orgs):
    own, _other = orgs
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    ident = create(client, csrf, own.conversation_id, {"text": "hello"})[1]["intervention"]["id"]
    device = agent_socket(app, own.device_id)
    answer = status(device, ident, "failed", error="composer not found\u0000" + "x" * 500)
    assert answer["status"] == "failed"
    with app.app_context():
        row = db.session.get(Intervention, ident)
        assert row.error.startswith("composer not found") and len(row.error) == 200 and "\x00" not in row.error


# ---- attributing the message it became -----------------------------------------------------------------

def claimed(app, orgs, text: str = "您好，我是主管") -> tuple[int, object]:
    own, _other = orgs
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    ident = create(client, csrf, own.conversation_id, {"text": text})[1]["intervention"]["id"]
    device = agent_socket(app, own.device_id)
    assert status(device, ident, "sending")["claimed"] is True
    return ident, device


def authors(app) -> dict[str, int | None]:
    with app.app_context():
        return {m.text: m.author_user_id for m in db.session.scalars(select(Message).where(Message.direction == "out"))}


def test_the_sent_reply_is_logged_as_the_supervisors(app, orgs):
    own, _other = orgs
    ident, device = claimed(app, orgs)
    watcher, _c, _t = panel_socket(app, own.users["owner"])
    watcher.emit("watch_conversation", {"conversation_id": own.conversation_id}, namespace="/panel", callback=True)
    watcher.get_received("/panel")
    # consoles may re-wrap what was typed: the words decide
    send_events(device, [message_event(1, direction="out", text="您好，我是主管\n", intervention_id=ident)])
    assert authors(app) == {"您好，我是主管\n": own.users["supervisor"].id}
    with app.app_context():
        row = db.session.get(Intervention, ident)
        assert row.status == "sent" and row.message_id is not None and row.sent_at
    pushed = received(watcher)
    message = next(d for n, d in pushed if n == "message")
    assert message["author"] == {"id": own.users["supervisor"].id, "display_name": "supervisor"}
    assert message["message"]["author_user_id"] == own.users["supervisor"].id
    assert any(n == "intervention" and d["intervention"]["status"] == "sent" for n, d in pushed)


def test_a_forged_foreign_or_reused_id_is_not_believed(app, orgs):
    own, other = orgs
    ident, device = claimed(app, orgs, text="same words")
    # another tenant's intervention, claimed by its own device
    other_client = app.test_client()
    other_csrf = sign_in(other_client, other.users["supervisor"])
    foreign = create(other_client, other_csrf, other.conversation_id, {"text": "same words"})[1]["intervention"]["id"]
    assert status(agent_socket(app, other.device_id), foreign, "sending")["claimed"] is True

    send_events(device, [
        message_event(1, direction="out", text="same words", intervention_id=999_999),  # forged
        message_event(2, direction="out", text="same words", intervention_id=foreign),  # another agent's
        message_event(3, direction="out", text="other words", intervention_id=ident),  # not what was written
        message_event(4, direction="out", text="same words", intervention_id=ident),  # the real one
        message_event(5, direction="out", text="same words ", intervention_id=ident),  # reused
    ])
    with app.app_context():
        rows = {m.console_message_id: m.author_user_id for m in db.session.scalars(select(Message).where(
            Message.direction == "out"))}
        assert rows == {console_id(own.tenant_id, f"row-{n}"): None for n in (1, 2, 3, 5)} | {
            console_id(own.tenant_id, "row-4"): own.users["supervisor"].id}
        assert db.session.get(Intervention, foreign).message_id is None


def test_an_unclaimed_reply_or_another_conversation_is_not_attributed(app, orgs):
    own, _other = orgs
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    ident = create(client, csrf, own.conversation_id, {"text": "hello there"})[1]["intervention"]["id"]
    device = agent_socket(app, own.device_id)
    send_events(device, [message_event(1, direction="out", text="hello there", intervention_id=ident)])
    assert status(device, ident, "sending")["claimed"] is True
    # claimed now, but the message is in another chat of the agent
    send_events(device, [message_event(2, direction="out", text="hello there", intervention_id=ident,
                                       customer="+86 139 1111 2222")])
    assert set(authors(app).values()) == {None}


def test_intervention_id_is_checked_in_the_event(app, orgs):
    own, _other = orgs
    device = agent_socket(app, own.device_id)
    ack = send_events(device, [
        message_event(1, intervention_id=3),  # incoming messages are never a supervisor's
        message_event(2, direction="out", intervention_id="3"),
        message_event(3, direction="out", intervention_id=True),
        message_event(4, direction="out", intervention_id=0),
    ])
    assert [(e["error"], e["field"]) for e in ack["errors"]] == [
        ("invalid_value", "intervention_id"), ("wrong_type", "intervention_id"),
        ("wrong_type", "intervention_id"), ("invalid_value", "intervention_id")]


# ---- which chat is open -------------------------------------------------------------------------------

def test_resolve_chats_finds_only_this_agents_conversations(app, orgs):
    own, other = orgs
    with app.app_context():
        # the agent's colleague logs the same customer on the same company account
        agent2 = db.session.get(User, own.other_agent.id)
        account = ChatAccount(tenant_id=own.tenant_id, agent=agent2, platform="whatsapp", handle="Acme sales")
        db.session.add(account)
        db.session.flush()
        colleagues = find_or_create_conversation(identifier_key(), account, CUSTOMER).id
        db.session.commit()
    device = agent_socket(app, own.device_id)
    chats = [
        {"console": "whatsapp", "account": "Acme sales", "key": "8613800138000@c.us", "customer": CUSTOMER},
        {"console": "whatsapp", "account": "Acme sales", "key": "+86 138 0013 8000"},  # the key alone, same hash
        {"console": "whatsapp", "account": "Acme sales", "key": "someone@c.us", "customer": "+1 555 0199"},
        {"console": "telegram_k", "account": "Acme sales", "key": "x", "customer": CUSTOMER},
    ]
    answer = device.emit("resolve_chats", {"chats": chats}, namespace="/agent", callback=True)
    assert answer == {"ok": True, "conversation_ids": [own.conversation_id, own.conversation_id, None, None]}
    assert colleagues not in answer["conversation_ids"]
    with app.app_context():
        assert db.session.scalar(select(ChatAccount.id).where(ChatAccount.platform == "telegram")) is None, \
            "looking up stores nothing"
    colleague_device = agent_socket(app, second_device(app, own.other_agent.id))
    assert colleague_device.emit("resolve_chats", {"chats": chats[:1]}, namespace="/agent",
                                 callback=True)["conversation_ids"] == [colleagues]
    assert agent_socket(app, other.device_id).emit("resolve_chats", {"chats": chats[:1]}, namespace="/agent",
                                                   callback=True)["conversation_ids"] == [None]


@pytest.mark.parametrize("payload", [
    None, {}, {"chats": []}, {"chats": [{}]}, {"chats": ["x"]}, {"chats": [{"console": "whatsapp"}]},
    {"chats": [{"console": "whatsapp", "key": "x" * 201}]}, {"chats": [{"console": "whatsapp", "key": 5}]},
    {"chats": [{"console": "whatsapp", "key": "k"}] * 21},
])
def test_resolve_chats_refuses_bad_questions(app, orgs, payload):
    own, _other = orgs
    answer = agent_socket(app, own.device_id).emit("resolve_chats", payload, namespace="/agent", callback=True)
    assert answer["ok"] is False and answer["error"]["code"] in ("invalid_value", "wrong_type", "missing_field")


def test_resolve_chats_is_rate_limited(app, orgs):
    own, _other = orgs
    device = agent_socket(app, own.device_id)
    ask = {"chats": [{"console": "whatsapp", "key": f"k{n}"} for n in range(20)]}
    answers = [device.emit("resolve_chats", ask, namespace="/agent", callback=True) for _ in range(4)]
    assert [a["ok"] for a in answers[:2]] == [True, True]
    assert answers[-1]["error"]["code"] == "rate_limited"


def test_revoked_devices_get_nothing(app, orgs):
    own, _other = orgs
    device = agent_socket(app, own.device_id)
    with app.app_context():
        db.session.get(Device, own.device_id).revoked_at = utcnow()
        db.session.commit()
    answer = device.emit("pending_interventions", None, namespace="/agent", callback=True)
    assert answer["ok"] is False and answer["error"]["code"] == "unauthorized"


def test_a_claimed_reply_is_not_handed_out_again(app, orgs):
    own, _other = orgs
    ident, device = claimed(app, orgs)
    watcher, _c, _t = panel_socket(app, own.users["admin"])
    watcher.emit("watch_conversation", {"conversation_id": own.conversation_id}, namespace="/panel", callback=True)
    watcher.get_received("/panel")
    device.disconnect(namespace="/agent")
    again = agent_socket(app, own.device_id)
    assert again.emit("pending_interventions", None, namespace="/agent", callback=True) == {
        "ok": True, "interventions": []}, "its browser may have sent it before the worker stopped"
    # the conversation's other watchers follow the reply too
    assert status(again, ident, "sent")["status"] == "sent"
    assert [(n, d["intervention"]["status"]) for n, d in received(watcher) if n == "intervention"] == [
        ("intervention", "sent")]


def test_the_serve_loop_expires_replies_no_device_took(app, orgs):
    own, other = orgs
    client = app.test_client()
    csrf = sign_in(client, own.users["supervisor"])
    code, body = create(client, csrf, own.conversation_id, {"text": "稍等，我来处理"})
    assert code == 201
    waiting = body["intervention"]["id"]
    fresh_code, fresh = create(client, csrf, own.conversation_id, {"text": "second"})
    with app.app_context():
        db.session.get(Intervention, waiting).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        assert interventions.expire_all_due() == 1
        db.session.commit()
        assert db.session.get(Intervention, waiting).status == "expired"
        assert db.session.get(Intervention, fresh["intervention"]["id"]).status == "queued"
        assert interventions.expire_all_due() == 0  # each expires once
