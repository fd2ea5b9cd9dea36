"""Retention: old messages and behaviour events are purged in batches, recent ones and held ones kept, the search
index follows, each purge is audited; the settings and legal holds in the panel and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

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
from backend.services import retention
from backend.services.conversations import find_or_create_conversation
from tests.conftest import sign_in

NOW = utcnow().replace(microsecond=0)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=5)


def bearer(org, role="owner"):
    return {"Authorization": f"Bearer {org.tokens[role]}"}


def add_message(conversation_id: int, body: str, at, *, edits: tuple[str, ...] = ()) -> int:
    conversation = db.session.get(Conversation, conversation_id)
    message = Message(tenant_id=conversation.tenant_id, conversation=conversation, direction="in", text=body,
                      sent_at=at)
    db.session.add(message)
    db.session.flush()
    for edit in edits:
        db.session.add(MessageRevision(tenant_id=conversation.tenant_id, message_id=message.id, kind="edit",
                                       text=edit, occurred_at=at))
    db.session.flush()
    return message.id


def add_event(org, at, *, agent_id=None, conversation_id=None, alert: bool = False) -> int:
    event = BehaviourEvent(tenant_id=org.tenant_id, agent_id=agent_id or org.agent.id,
                           conversation_id=conversation_id, type="send_blocked", details={}, occurred_at=at)
    db.session.add(event)
    db.session.flush()
    if alert:
        db.session.add(Alert(tenant_id=org.tenant_id, behaviour_event_id=event.id, agent_id=event.agent_id,
                             type=event.type, severity="warning", occurred_at=at))
        db.session.flush()
    return event.id


def second_conversation(app, org, agent_id: int, customer: str) -> int:
    account = ChatAccount(tenant_id=org.tenant_id, agent=db.session.get(User, agent_id), platform="telegram",
                          handle=f"line {customer}")
    db.session.add(account)
    db.session.flush()
    return find_or_create_conversation(app.config["SECRET_KEY"], account, customer).id


def set_limits(org, messages_days=30, behaviour_days=10) -> None:
    db.session.merge(RetentionSetting(tenant_id=org.tenant_id, messages_days=messages_days,
                                      behaviour_days=behaviour_days))
    db.session.commit()


def exists(model, row_id) -> bool:
    db.session.expire_all()
    return db.session.get(model, row_id) is not None


def search_index_hits(app, word: str) -> list[int]:
    """Message ids the records search index finds for `word` (SQLite FTS5; PostgreSQL trigram ILIKE)."""
    if app.config["DB_KIND"] == "sqlite":
        rows = db.session.execute(text("SELECT rowid FROM search_index_message WHERE search_index_message "
                                       "MATCH :q UNION SELECT message_id FROM message_revision WHERE id IN "
                                       "(SELECT rowid FROM search_index_revision WHERE search_index_revision "
                                       "MATCH :q)"), {"q": f'"{word}"'})
    else:
        rows = db.session.execute(text("SELECT id FROM message WHERE text ILIKE :q UNION SELECT message_id FROM "
                                       "message_revision WHERE text ILIKE :q"), {"q": f"%{word}%"})
    return sorted(r[0] for r in rows)


# ---- the purge -------------------------------------------------------------------------------------------

def test_old_rows_go_recent_rows_stay(app, ctx, orgs):
    own, other = orgs
    old = add_message(own.conversation_id, "old zebra words", OLD, edits=("zebra edited",))
    recent = add_message(own.conversation_id, "recent giraffe words", RECENT)
    other_old = add_message(other.conversation_id, "other tenant's old words", OLD)
    old_event = add_event(own, NOW - timedelta(days=20), conversation_id=own.conversation_id, alert=True)
    recent_event = add_event(own, NOW - timedelta(days=1))
    # A supervisor's reply that became the old message: it stays, without the message.
    intervention = Intervention(tenant_id=own.tenant_id, conversation_id=own.conversation_id, agent_id=own.agent.id,
                                author_id=own.users["supervisor"].id, text="old zebra words", status="sent",
                                expires_at=OLD, message_id=old)
    db.session.add(intervention)
    set_limits(own)
    assert search_index_hits(app, "zebra") == [old]

    report = retention.purge(NOW)

    assert report.tenants[own.tenant_id].counts() == {"messages": 1, "revisions": 1, "behaviour_events": 1,
                                                      "alerts": 1}
    assert other.tenant_id not in report.tenants, "a tenant without limits keeps everything"
    assert not exists(Message, old) and exists(Message, recent) and exists(Message, other_old)
    assert db.session.scalar(select(func.count()).select_from(MessageRevision)) == 0
    assert not exists(BehaviourEvent, old_event) and exists(BehaviourEvent, recent_event)
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 0
    kept = db.session.get(Intervention, intervention.id)
    assert kept is not None and kept.message_id is None
    assert search_index_hits(app, "zebra") == [] and search_index_hits(app, "giraffe") == [recent]
    if app.config["DB_KIND"] == "sqlite":  # FTS5 compares its index with the content tables; raises if they differ
        for table in ("search_index_message", "search_index_revision"):
            db.session.execute(text(f"INSERT INTO {table}({table}) VALUES ('integrity-check')"))


def test_each_purge_is_audited_with_its_counts(ctx, orgs):
    own, _other = orgs
    add_message(own.conversation_id, "old", OLD, edits=("older",))
    add_event(own, OLD)
    set_limits(own)
    retention.purge(NOW)
    [entry] = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == "retention.purged")).all()
    assert entry.tenant_id == own.tenant_id
    assert {k: entry.details[k] for k in ("messages", "revisions", "behaviour_events", "alerts")} == {
        "messages": 1, "revisions": 1, "behaviour_events": 1, "alerts": 0}
    assert entry.details["messages_before"] == (NOW - timedelta(days=30)).isoformat()
    retention.purge(NOW)  # nothing left: the hourly run adds no noise to the trail
    assert db.session.scalar(select(func.count()).where(AuditLogEntry.action == "retention.purged")) == 1


def test_dry_run_deletes_nothing(ctx, orgs):
    own, _other = orgs
    old = add_message(own.conversation_id, "old", OLD, edits=("older",))
    event = add_event(own, OLD)
    set_limits(own)
    report = retention.purge(NOW, dry_run=True)
    assert report.dry_run and report.tenants[own.tenant_id].counts() == {
        "messages": 1, "revisions": 1, "behaviour_events": 1, "alerts": 0}
    assert exists(Message, old) and exists(BehaviourEvent, event)
    assert db.session.scalar(select(func.count()).where(AuditLogEntry.action == "retention.purged")) == 0


def test_batches_are_separate_transactions_and_report_progress(ctx, orgs):
    own, _other = orgs
    ids = [add_message(own.conversation_id, f"old {n}", OLD - timedelta(minutes=n)) for n in range(5)]
    set_limits(own, behaviour_days=None)
    seen = []
    report = retention.purge(NOW, batch_size=2, progress=seen.append)
    assert seen == [2, 2, 1] and report.tenants[own.tenant_id].messages == 5
    assert not any(exists(Message, i) for i in ids)


def test_holds_on_an_agent_and_on_a_conversation(app, ctx, orgs):
    own, _other = orgs
    held_agent = own.agent.id
    free_agent = own.other_agent.id
    # The held agent's conversation, and a conversation of another agent that is held on its own.
    by_held_agent = add_message(own.conversation_id, "held by agent", OLD)
    held_conversation = second_conversation(app, own, free_agent, "held@example.com")
    free_conversation = second_conversation(app, own, free_agent, "free@example.com")
    in_held_conversation = add_message(held_conversation, "held by conversation", OLD)
    free = add_message(free_conversation, "not held", OLD)
    event_of_held_agent = add_event(own, OLD, agent_id=held_agent)
    event_in_held_conversation = add_event(own, OLD, agent_id=free_agent, conversation_id=held_conversation)
    free_event = add_event(own, OLD, agent_id=free_agent)
    owner = db.session.get(User, own.users["owner"].id)
    agent_hold = retention.place_hold(owner, agent_id=held_agent, reason="lawsuit 2026-17")
    retention.place_hold(owner, conversation_id=held_conversation, reason="complaint")
    set_limits(own)

    retention.purge(NOW)
    assert exists(Message, by_held_agent) and exists(Message, in_held_conversation) and not exists(Message, free)
    assert exists(BehaviourEvent, event_of_held_agent) and exists(BehaviourEvent, event_in_held_conversation)
    assert not exists(BehaviourEvent, free_event)

    retention.release_hold(owner, db.session.get(LegalHold, agent_hold.id))
    db.session.commit()
    retention.purge(NOW)
    assert not exists(Message, by_held_agent) and not exists(BehaviourEvent, event_of_held_agent)
    assert exists(Message, in_held_conversation) and exists(BehaviourEvent, event_in_held_conversation)


def test_no_limit_keeps_everything(ctx, orgs):
    own, _other = orgs
    ancient = add_message(own.conversation_id, "ancient", NOW - timedelta(days=3650))
    set_limits(own, messages_days=None, behaviour_days=None)
    assert retention.purge(NOW).tenants == {}
    assert exists(Message, ancient)


# ---- settings and holds: API and panel ---------------------------------------------------------------------

def test_api_sets_limits_and_refuses_bad_values(client, orgs):
    own, _other = orgs
    response = client.put("/api/v1/retention", json={"messages_days": 90}, headers=bearer(own))
    assert response.status_code == 200
    assert response.get_json() | {"holds": []} == {"messages_days": 90, "behaviour_days": None, "holds": []}
    response = client.put("/api/v1/retention", json={"behaviour_days": 7}, headers=bearer(own, "admin"))
    assert (response.get_json()["messages_days"], response.get_json()["behaviour_days"]) == (90, 7)
    for bad in (0, -3, 10**12, "30", True, 1.5, [1]):
        response = client.put("/api/v1/retention", json={"messages_days": bad}, headers=bearer(own))
        assert response.status_code == 400, bad
        assert response.get_json()["error"]["code"] in ("wrong_type", "out_of_range")
    response = client.put("/api/v1/retention", json={"messages_days": None}, headers=bearer(own))
    assert response.get_json()["messages_days"] is None
    assert client.put("/api/v1/retention", data="{", headers={**bearer(own), "Content-Type": "application/json"}
                      ).status_code == 400


def test_api_holds_stay_in_their_tenant(app, client, orgs):
    own, other = orgs
    response = client.post("/api/v1/retention/holds", json={"agent_id": own.agent.id, "reason": "audit"},
                           headers=bearer(own))
    assert response.status_code == 201
    hold = response.get_json()
    assert hold["active"] and hold["created_by_id"] == own.users["owner"].id
    assert client.post("/api/v1/retention/holds", json={"agent_id": other.agent.id, "reason": "x"},
                       headers=bearer(own)).status_code == 404
    assert client.post("/api/v1/retention/holds", json={"conversation_id": other.conversation_id, "reason": "x"},
                       headers=bearer(own)).status_code == 404
    assert client.post(f"/api/v1/retention/holds/{hold['id']}/release", headers=bearer(other)).status_code == 404
    for body in ({"reason": "neither"}, {"agent_id": own.agent.id, "conversation_id": own.conversation_id,
                                          "reason": "both"},
                 {"agent_id": own.users["supervisor"].id, "reason": "not an agent"},
                 {"agent_id": own.agent.id, "reason": "  "}, {"agent_id": "1", "reason": "x"},
                 {"agent_id": own.agent.id, "reason": "x" * 501}):
        assert client.post("/api/v1/retention/holds", json=body, headers=bearer(own)).status_code == 400, body
    assert client.post("/api/v1/retention/holds", json={"agent_id": 10**20, "reason": "x"},
                       headers=bearer(own)).status_code == 404
    released = client.post(f"/api/v1/retention/holds/{hold['id']}/release", headers=bearer(own, "admin")).get_json()
    assert not released["active"] and released["released_by_id"] == own.users["admin"].id
    with app.app_context():
        actions = db.session.scalars(select(AuditLogEntry.action).where(AuditLogEntry.action.like("retention.%"))
                                     .order_by(AuditLogEntry.id)).all()
    assert actions == ["retention.hold_placed", "retention.hold_released"]


def test_panel_page_sets_limits_and_holds_and_escapes_the_reason(app, client, orgs):
    own, _other = orgs
    csrf = sign_in(client, own.users["owner"])
    page = client.get("/settings/retention")
    assert page.status_code == 200
    response = client.post("/settings/retention", data={"csrf_token": csrf, "messages_days": "30",
                                                        "behaviour_days": ""})
    assert response.status_code == 302
    response = client.post("/settings/retention", data={"csrf_token": csrf, "messages_days": "0"})
    assert response.status_code == 400 and "36500" in response.get_data(as_text=True)
    response = client.post("/settings/retention/holds", data={
        "csrf_token": csrf, "conversation_id": str(own.conversation_id), "reason": "<script>alert(1)</script>"})
    assert response.status_code == 302
    body = client.get("/settings/retention").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
    assert 'value="30"' in body
    with app.app_context():
        setting = db.session.get(RetentionSetting, own.tenant_id)
        assert (setting.messages_days, setting.behaviour_days) == (30, None)
        hold = db.session.scalars(select(LegalHold)).one()
        assert hold.conversation_id == own.conversation_id and hold.created_by_id == own.users["owner"].id
    assert client.post("/settings/retention/holds", data={"csrf_token": csrf, "agent_id": "abc",
                                                          "reason": "x"}).status_code == 400
    assert client.post(f"/settings/retention/holds/{hold.id}/release", data={"csrf_token": csrf}).status_code == 302
    with app.app_context():
        assert db.session.get(LegalHold, hold.id).released_at is not None


def test_settings_page_links_to_retention(client, orgs):
    own, _other = orgs
    sign_in(client, own.users["admin"])
    assert "/settings/retention" in client.get("/settings").get_data(as_text=True)


@pytest.mark.parametrize("dry_run", [True, False])
def test_cli_purge(app, orgs, dry_run, monkeypatch):
    from click.testing import CliRunner

    from backend import cli

    own, _other = orgs
    with app.app_context():
        old = add_message(own.conversation_id, "old", OLD)
        set_limits(own)
    monkeypatch.setattr(cli, "make_app", lambda: app)
    result = CliRunner().invoke(cli.main, ["retention", "purge", *(["--dry-run"] if dry_run else [])])
    assert result.exit_code == 0, result.output
    assert ("would delete 1 message(s)" if dry_run else "deleted 1 message(s)") in result.output
    with app.app_context():
        assert exists(Message, old) == dry_run
        audited = db.session.scalar(select(func.count()).where(AuditLogEntry.action == "retention.purged"))
        assert audited == (0 if dry_run else 1)
