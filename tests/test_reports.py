"""Behaviour reports: the filtered list and its paging, one event with its messages, the review and its
audit trail, scope (departments, tenants, roles) and the per-agent summary, over the API and the panel."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import AuditLogEntry, BehaviourEvent, Message, MessageRevision, User
from tests.conftest import sign_in
from tests.grants_helper import revoke_grants_of, staff_read

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SCRIPT = "<script>alert('x')</script>"

@pytest.fixture
def orgs(orgs, app):
    """conftest's tenants, whose staff hold private keys: reading records needs one (tests/test_grants.py)."""
    for org in orgs:
        staff_read(app, org)
    return orgs



def add_event(app, org, *, agent=None, type="send_blocked", at=T0, status="new", conversation=True,
              details=None) -> int:
    agent = agent or org.agent
    with app.app_context():
        event = BehaviourEvent(tenant_id=org.tenant_id, agent_id=agent.id,
                               device_id=org.device_id if agent.id == org.agent.id else None,
                               conversation_id=org.conversation_id if conversation else None, type=type,
                               details=details if details is not None else {"console": "whatsapp"},
                               occurred_at=at, status=status)
        db.session.add(event)
        db.session.commit()
        return event.id


def add_message(app, org, text, at, *, direction="out", server_check=None) -> int:
    with app.app_context():
        message = Message(tenant_id=org.tenant_id, conversation_id=org.conversation_id, direction=direction,
                          text=text, sent_at=at, server_check=server_check)
        db.session.add(message)
        db.session.commit()
        return message.id


def api(client, org, role="owner"):
    return {"Authorization": f"Bearer {org.tokens[role]}"}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [e["id"] for e in response.get_json()["events"]]


# ---- the list ------------------------------------------------------------------------------------

def test_filters(app, client, orgs):
    own, other = orgs
    blocked = add_event(app, own, at=T0)
    copied = add_event(app, own, type="bulk_copy", at=T0 + timedelta(hours=1), status="confirmed")
    support = add_event(app, own, agent=own.other_agent, type="bulk_copy", at=T0 + timedelta(days=1),
                        conversation=False)
    add_event(app, other, at=T0)  # another tenant's: never listed
    headers = api(client, own)

    def listed(query=""):
        return ids(client.get(f"/api/v1/behaviour-events{query}", headers=headers))

    assert listed() == [support, copied, blocked], "newest first, own tenant only"
    assert listed("?type=bulk_copy") == [support, copied]
    assert listed("?type=bulk_copy&type=send_blocked") == [support, copied, blocked]
    assert listed("?type=send_blocked,bulk_copy&status=new") == [support, blocked]
    assert listed("?status=confirmed") == [copied]
    assert listed(f"?agent={own.agent.id}") == [copied, blocked]
    assert listed(f"?department={own.support_id}") == [support]
    assert listed(f"?conversation={own.conversation_id}") == [copied, blocked]
    assert listed("?since=2026-11-20T09:30:00Z") == [support, copied]
    assert listed("?until=2026-11-20") == [copied, blocked], "a date alone as the end is the whole day"
    assert listed("?since=2026-11-21&until=2026-11-21") == [support]
    assert listed("?type=&status=&agent=") == [support, copied, blocked], "empty form fields mean any"


@pytest.mark.parametrize("query,code", [
    ("type=nope", "invalid_value"), ("status=open", "invalid_value"), ("agent=abc", "wrong_type"),
    ("agent=1e3", "wrong_type"), ("department=-1", "wrong_type"), ("since=yesterday", "invalid_value"),
    ("until=2026-13-01", "invalid_value"), ("limit=0", "invalid_value"), ("limit=201", "invalid_value"),
    ("limit=ten", "invalid_value"), ("cursor=abc", "invalid_cursor"),
    ("cursor=99999999999999999999-1", "invalid_cursor"),
    ("agent=99999999999999999999999", "wrong_type"),
])
def test_bad_filters_are_400(app, client, orgs, query, code):
    own, _other = orgs
    response = client.get(f"/api/v1/behaviour-events?{query}", headers=api(client, own))
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == code


def test_unknown_ids_in_filters(app, client, orgs):
    own, other = orgs
    headers = api(client, own)
    for query in (f"agent={other.agent.id}", f"department={other.sales_id}",
                  f"conversation={other.conversation_id}", "agent=999999"):
        response = client.get(f"/api/v1/behaviour-events?{query}", headers=headers)
        assert response.status_code == 404, query
        assert response.get_json()["error"]["code"] == "not_found"


def test_keyset_paging(app, client, orgs):
    own, _other = orgs
    # Three share one time: the id breaks the tie, and no page repeats or skips one.
    times = [T0, T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2), T0 - timedelta(days=3), T0]
    made = [add_event(app, own, at=at) for at in times]
    expected = sorted(made, key=lambda i: (times[made.index(i)], i), reverse=True)
    headers = api(client, own)
    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(f"/api/v1/behaviour-events{query}", headers=headers).get_json()
        seen += [e["id"] for e in body["events"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3
    # an event recorded meanwhile, newer than the first page, does not shift later pages
    first = client.get("/api/v1/behaviour-events?limit=3", headers=headers).get_json()
    add_event(app, own, at=T0 + timedelta(days=1))
    second = client.get(f"/api/v1/behaviour-events?limit=3&cursor={first['next_cursor']}", headers=headers)
    assert ids(second) == expected[3:6]


def test_panel_list_pages_and_badges(app, client, orgs):
    own, _other = orgs
    for n in range(3):
        add_event(app, own, at=T0 + timedelta(minutes=n), status=("new", "confirmed", "dismissed")[n])
    sign_in(client, own.users["supervisor"])
    page = client.get("/reports?limit=2")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'class="badge status-dismissed"' in html and 'class="badge status-confirmed"' in html
    assert 'rel="next"' in html, "an 'Older' link when there is more"
    older = client.get("/reports?limit=2&cursor=" + html.split("cursor=")[1].split("&")[0].split('"')[0])
    assert 'class="badge status-new"' in older.get_data(as_text=True)
    assert 'rel="next"' not in older.get_data(as_text=True)
    filtered = client.get("/reports?status=confirmed").get_data(as_text=True)
    assert filtered.count('class="badge status-') == 1
    assert client.get("/reports?type=bogus").status_code == 400


# ---- one event and its messages ------------------------------------------------------------------

def test_message_in_context_is_escaped_and_highlighted(app, client, orgs):
    own, _other = orgs
    before = [add_message(app, own, f"before {n}", T0 - timedelta(minutes=10 - n), direction="in")
              for n in range(7)]
    text = f"{SCRIPT} 保证收益"
    start = text.index("保证收益")
    check = {"action": "block", "rules": "h", "findings": [
        {"type": "word", "category": "compliance", "rule": "compliance:保证收益", "start": start,
         "end": start + 4, "text": "保证收益"}]}
    focus = add_message(app, own, text, T0, server_check=check)
    after = [add_message(app, own, f"after {n}", T0 + timedelta(minutes=n + 1)) for n in range(6)]
    event = add_event(app, own, type="server_rule_hit", at=T0, details={
        "message_id": focus, "action": "block", "rules": "h",
        "findings": [{"type": "word", "category": "compliance", "rule": "compliance:保证收益"}]})

    body = client.get(f"/api/v1/behaviour-events/{event}", headers=api(client, own)).get_json()
    context = body["context"]
    assert [m["id"] for m in context["messages"]] == before[-5:] + [focus] + after[:5]
    assert context["focus_message_id"] == focus
    focused = next(m for m in context["messages"] if m["focus"])
    assert focused["text"] == text and focused["spans"] == [
        {"start": start, "end": start + 4, "rule": "compliance:保证收益", "category": "compliance"}]

    sign_in(client, own.users["supervisor"])
    html = client.get(f"/reports/{event}").get_data(as_text=True)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert '<mark title="compliance:保证收益">保证收益</mark>' in html
    assert "before 1" not in html and "before 2" in html and "after 4" in html and "after 5" not in html


def test_context_around_the_time_with_revisions(app, client, orgs):
    own, _other = orgs
    early = add_message(app, own, "early", T0 - timedelta(minutes=1))
    late = add_message(app, own, "late", T0 + timedelta(minutes=1))
    with app.app_context():
        db.session.add(MessageRevision(tenant_id=own.tenant_id, message_id=late, kind="edit",
                                       text=f"edited {SCRIPT}", occurred_at=T0 + timedelta(minutes=2)))
        db.session.commit()
    event = add_event(app, own, type="bulk_copy", at=T0, details={"console": "whatsapp", "details": {"chars": 900}})
    body = client.get(f"/api/v1/behaviour-events/{event}", headers=api(client, own)).get_json()
    # (the fixture's own message, sent now, comes last)
    assert [m["id"] for m in body["context"]["messages"]][:2] == [early, late]
    assert body["context"]["event_position"] == 1
    assert body["context"]["messages"][1]["revisions"][0]["text"] == f"edited {SCRIPT}"
    sign_in(client, own.users["admin"])
    html = client.get(f"/reports/{event}").get_data(as_text=True)
    assert html.index("early") < html.index("The event happened here") < html.index("late")
    assert "edited &lt;script&gt;" in html and "<script>alert" not in html


def test_blocked_text_is_highlighted_with_the_current_rules(app, client, orgs):
    own, _other = orgs
    event = add_event(app, own, details={"console": "whatsapp", "text": f"{SCRIPT}保证收益", "rule": "compliance"})
    body = client.get(f"/api/v1/behaviour-events/{event}", headers=api(client, own)).get_json()
    assert body["event"]["details"]["text"] == f"{SCRIPT}保证收益"
    assert body["checked_text"]["spans"][0]["start"] == len(SCRIPT)
    sign_in(client, own.users["supervisor"])
    html = client.get(f"/reports/{event}").get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;<mark" in html
    assert "<script>alert" not in html


def test_text_hidden_when_it_may_not_be_read(app, client, orgs):
    own, _other = orgs
    add_message(app, own, "secret customer text", T0 - timedelta(minutes=1), direction="in")
    event = add_event(app, own, details={"console": "whatsapp", "text": "blocked secret", "reason": "asked"})
    # No conversation: no one to ask whether its text may be read, so it stays hidden.
    loose = add_event(app, own, conversation=False, details={"console": "whatsapp", "text": "loose secret"})
    headers = api(client, own)
    body = client.get(f"/api/v1/behaviour-events/{loose}", headers=headers).get_json()
    assert "text" not in body["event"]["details"] and body["event"]["text_hidden"] is True

    revoke_grants_of(app, own, own.users["owner"].id)  # without a private grant, even the owner reads nothing
    body = client.get(f"/api/v1/behaviour-events/{event}", headers=headers).get_json()
    assert body["event"]["text_hidden"] is True and "text" not in body["event"]["details"]
    assert body["event"]["details"]["reason"] == "asked", "the agent's reason is addressed to the supervisor"
    assert body["checked_text"] is None
    assert body["context"]["text_hidden"] is True and body["context"]["messages"][0]["text"] is None
    listed = client.get("/api/v1/behaviour-events", headers=headers).get_json()["events"]
    assert all("text" not in e["details"] for e in listed)
    sign_in(client, own.users["owner"])
    for path in (f"/reports/{event}", "/reports"):
        html = client.get(path).get_data(as_text=True)
        assert "secret" not in html and "Text hidden" in html


# ---- the review ----------------------------------------------------------------------------------

def review(client, org, event, body, role="owner"):
    return client.post(f"/api/v1/behaviour-events/{event}/review", json=body, headers=api(client, org, role))


def test_review_transitions_and_audit(app, client, orgs):
    own, _other = orgs
    event = add_event(app, own)
    response = review(client, own, event, {"status": "confirmed"}, role="supervisor")
    assert response.status_code == 200
    assert response.get_json()["event"]["status"] == "confirmed"
    assert response.get_json()["event"]["reviewed_by"]["id"] == own.users["supervisor"].id

    again = review(client, own, event, {"status": "confirmed"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "invalid_transition"
    no_note = review(client, own, event, {"status": "dismissed"})
    assert no_note.status_code == 400 and no_note.get_json()["error"]["code"] == "note_required"
    assert review(client, own, event, {"status": "dismissed", "note": "  a colleague's test  "}).status_code == 200
    stale = review(client, own, event, {"status": "new", "note": "reopen", "expected_status": "confirmed"})
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "review_conflict"
    reopened = review(client, own, event, {"status": "new", "note": "reopen", "expected_status": "dismissed"})
    assert reopened.status_code == 200 and reopened.get_json()["event"]["status"] == "new"

    with app.app_context():
        entries = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == "behaviour.review")
                                     .order_by(AuditLogEntry.id)).all()
        assert [(e.details["from"], e.details["to"], e.details["note"]) for e in entries] == [
            ("new", "confirmed", None), ("confirmed", "dismissed", "a colleague's test"),
            ("dismissed", "new", "reopen")]
        assert [e.actor_user_id for e in entries] == [own.users["supervisor"].id, own.users["owner"].id,
                                                      own.users["owner"].id]
        assert {(e.target_type, e.target_id, e.tenant_id) for e in entries} == {
            ("behaviour_event", str(event), own.tenant_id)}
        row = db.session.get(BehaviourEvent, event)
        assert (row.status, row.review_note, row.reviewed_by_id) == ("new", "reopen", own.users["owner"].id)

    history = client.get(f"/api/v1/behaviour-events/{event}", headers=api(client, own)).get_json()["history"]
    assert [(h["by"]["display_name"], h["to"]) for h in history] == [
        ("supervisor", "confirmed"), ("owner", "dismissed"), ("owner", "new")]


@pytest.mark.parametrize("body,status,code", [
    ({"status": "approved"}, 400, "invalid_status"),
    ({"status": "new"}, 409, "invalid_transition"),
    ({}, 400, "missing_field"),
    ({"status": 1}, 400, "wrong_type"),
    ({"status": "confirmed", "note": ["x"]}, 400, "wrong_type"),
    ({"status": "confirmed", "note": "x" * 2001}, 400, "too_long"),
    ({"status": "confirmed", "expected_status": True}, 400, "wrong_type"),
    ([], 400, "invalid_json"),
])
def test_review_validation(app, client, orgs, body, status, code):
    own, _other = orgs
    event = add_event(app, own)
    response = review(client, own, event, body)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    with app.app_context():
        assert db.session.get(BehaviourEvent, event).status == "new"
        assert db.session.scalar(select(AuditLogEntry.id).where(AuditLogEntry.action == "behaviour.review")) is None


def test_review_needs_json_and_a_known_event(app, client, orgs):
    own, _other = orgs
    event = add_event(app, own)
    headers = api(client, own)
    assert review(client, own, 999999, {"status": "confirmed"}).status_code == 404
    assert review(client, own, 999999, {"status": "confirmed"}).get_json()["error"]["code"] == "not_found"
    raw = client.post(f"/api/v1/behaviour-events/{event}/review", data="status=confirmed", headers=headers)
    assert raw.status_code == 415 and raw.get_json()["error"]["code"] == "json_required"
    broken = client.post(f"/api/v1/behaviour-events/{event}/review", data="{", headers=headers,
                         content_type="application/json")
    assert broken.status_code == 400 and broken.get_json()["error"]["code"] == "invalid_json"
    assert review(client, own, event, {"status": "confirmed", "note": "x" * 2000}).status_code == 200
    assert client.get("/api/v1/behaviour-events/999999", headers=headers).status_code == 404


def test_panel_review_form(app, client, orgs):
    own, _other = orgs
    event = add_event(app, own)
    csrf = sign_in(client, own.users["supervisor"])
    page = client.get(f"/reports/{event}").get_data(as_text=True)
    assert 'name="expected_status" value="new"' in page and 'value="confirmed"' in page
    assert client.post(f"/reports/{event}/review", data={"status": "confirmed"}).status_code == 400, "no CSRF"
    done = client.post(f"/reports/{event}/review", data={"status": "confirmed", "note": f"ok {SCRIPT}",
                                                         "expected_status": "new", "csrf_token": csrf})
    assert done.status_code == 302
    page = client.get(f"/reports/{event}").get_data(as_text=True)
    assert 'class="badge status-confirmed"' in page
    assert "ok &lt;script&gt;" in page and f"ok {SCRIPT}" not in page, "the note in the history is escaped"
    refused = client.post(f"/reports/{event}/review", data={"status": "bogus", "csrf_token": csrf},
                          follow_redirects=True)
    assert "The status must be one of" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(BehaviourEvent, event).status == "confirmed"


# ---- scope ---------------------------------------------------------------------------------------

def test_supervisor_sees_only_their_departments(app, client, orgs):
    own, other = orgs
    mine = add_event(app, own)
    theirs = add_event(app, own, agent=own.other_agent, conversation=False)
    foreign = add_event(app, other)
    headers = api(client, own, "supervisor")
    assert ids(client.get("/api/v1/behaviour-events", headers=headers)) == [mine]
    for path, expected in ((f"/api/v1/behaviour-events/{theirs}", 403), (f"/api/v1/behaviour-events/{foreign}", 404),
                           (f"/api/v1/behaviour-events?department={own.support_id}", 403),
                           (f"/api/v1/behaviour-events?agent={own.other_agent.id}", 403),
                           (f"/api/v1/behaviour-events/summary?department={own.support_id}", 403),
                           (f"/api/v1/behaviour-events/summary?department={other.sales_id}", 404)):
        response = client.get(path, headers=headers)
        assert response.status_code == expected, path
        assert response.get_json()["error"]["code"] == ("forbidden" if expected == 403 else "not_found")
    assert review(client, own, theirs, {"status": "confirmed"}, role="supervisor").status_code == 403
    assert review(client, own, foreign, {"status": "confirmed"}, role="supervisor").status_code == 404
    summary = client.get("/api/v1/behaviour-events/summary", headers=headers).get_json()
    assert [r["agent"]["id"] for r in summary["agents"]] == [own.agent.id]

    csrf = sign_in(client, own.users["supervisor"])
    assert client.get(f"/reports/{theirs}").status_code == 403
    assert client.get(f"/reports/{foreign}").status_code == 404
    form = {"status": "confirmed", "csrf_token": csrf}
    assert client.post(f"/reports/{theirs}/review", data=form).status_code == 403
    assert client.post(f"/reports/{foreign}/review", data=form).status_code == 404
    html = client.get("/reports").get_data(as_text=True)
    assert f"/reports/{mine}" in html and f"/reports/{theirs}" not in html
    assert "agent2" not in client.get("/reports/summary").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(BehaviourEvent, theirs).status == "new"
        assert db.session.get(BehaviourEvent, foreign).status == "new"


def test_agents_see_no_reports(app, client, orgs):
    own, _other = orgs
    event = add_event(app, own)
    headers = api(client, own, "agent")
    for path in ("/api/v1/behaviour-events", f"/api/v1/behaviour-events/{event}", "/api/v1/behaviour-events/summary"):
        assert client.get(path, headers=headers).status_code == 403
    assert review(client, own, event, {"status": "confirmed"}, role="agent").status_code == 403
    sign_in(client, own.users["agent"])
    for path in ("/reports", f"/reports/{event}", "/reports/summary", "/reports/summary.csv"):
        assert client.get(path).status_code == 403


# ---- per-agent summary ---------------------------------------------------------------------------

def test_summary_counts_and_sorting(app, client, orgs):
    own, other = orgs
    for kind, status, at in (("send_blocked", "new", T0), ("send_blocked", "confirmed", T0),
                             ("bulk_copy", "dismissed", T0), ("send_blocked", "new", T0 - timedelta(days=40))):
        add_event(app, own, type=kind, status=status, at=at)
    add_event(app, own, agent=own.other_agent, type="heartbeat_missing", conversation=False)
    add_event(app, other, type="bulk_copy")  # another tenant's
    headers = api(client, own)
    body = client.get("/api/v1/behaviour-events/summary", headers=headers).get_json()
    rows = {r["agent"]["id"]: r for r in body["agents"]}
    assert set(rows) == {own.agent.id, own.other_agent.id}
    assert rows[own.agent.id]["total"] == 4
    assert rows[own.agent.id]["by_type"] == {"send_blocked": 3, "bulk_copy": 1}
    assert rows[own.agent.id]["by_status"] == {"new": 2, "confirmed": 1, "dismissed": 1}
    assert rows[own.other_agent.id]["by_type"] == {"heartbeat_missing": 1}
    assert body["types"] == ["send_blocked", "bulk_copy", "heartbeat_missing"]
    assert [r["agent"]["id"] for r in body["agents"]] == [own.agent.id, own.other_agent.id], "most first"

    period = client.get("/api/v1/behaviour-events/summary?since=2026-11-01&until=2026-11-20",
                        headers=headers).get_json()
    counted = {r["agent"]["id"]: r["total"] for r in period["agents"]}
    assert counted == {own.agent.id: 3, own.other_agent.id: 1}
    ascending = client.get("/api/v1/behaviour-events/summary?sort=total&order=asc", headers=headers).get_json()
    assert [r["agent"]["id"] for r in ascending["agents"]] == [own.other_agent.id, own.agent.id]
    by_type = client.get("/api/v1/behaviour-events/summary?sort=heartbeat_missing", headers=headers).get_json()
    assert by_type["agents"][0]["agent"]["id"] == own.other_agent.id
    by_name = client.get("/api/v1/behaviour-events/summary?sort=agent", headers=headers).get_json()
    assert [r["agent"]["display_name"] for r in by_name["agents"]] == ["agent", "agent2"]
    by_department = client.get(f"/api/v1/behaviour-events/summary?department={own.sales_id}",
                               headers=headers).get_json()
    assert [r["agent"]["id"] for r in by_department["agents"]] == [own.agent.id]
    for query in ("sort=nope", "order=up", "since=x", "department=x"):
        assert client.get(f"/api/v1/behaviour-events/summary?{query}", headers=headers).status_code == 400, query


def test_summary_page_and_csv(app, client, orgs):
    own, _other = orgs
    with app.app_context():
        db.session.get(User, own.agent.id).display_name = "=HYPERLINK(\"x\")"
        db.session.commit()
    add_event(app, own, type="send_blocked")
    add_event(app, own, type="send_blocked", status="confirmed")
    sign_in(client, own.users["supervisor"])
    html = client.get("/reports/summary?sort=total").get_data(as_text=True)
    assert "=HYPERLINK(&#34;x&#34;)" in html
    assert f"/reports?agent={own.agent.id}" in html and 'aria-sort="descending"' in html
    response = client.get("/reports/summary.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][:6] == ["Agent", "E-mail", "Total", "New", "Confirmed", "Dismissed"]
    assert rows[1][0] == "'=HYPERLINK(\"x\")", "a name cannot become a spreadsheet formula"
    assert rows[1][2:7] == ["2", "1", "1", "0", "2"]
    assert len(rows) == 2, "the supervisor's departments only"


# ---- the migration -------------------------------------------------------------------------------

def test_events_recorded_before_the_review_existed_become_new(tmp_path):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from backend import create_app
    from backend.config import TestConfig

    app = create_app({"INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/old.db"},
                     config_class=TestConfig)
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision="7a1c0e5f2b01")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO tenant (id, name, created_at) VALUES (1, 'Old Co', '2026-01-01')"))
            conn.execute(text("INSERT INTO user_account (id, tenant_id, email, display_name, role, is_active, "
                              "created_at) VALUES (1, 1, 'a@old.test', 'A', 'agent', 1, '2026-01-01')"))
            conn.execute(text("INSERT INTO behaviour_event (tenant_id, agent_id, type, details, occurred_at, "
                              "received_at) VALUES (1, 1, 'bulk_copy', '{}', '2026-01-01', '2026-01-01')"))
        upgrade(directory=directory, revision="7a1c0e5f2b02")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT status, review_note FROM behaviour_event")).one() == ("new", None)
        downgrade(directory=directory, revision="7a1c0e5f2b01")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT type FROM behaviour_event")).scalar() == "bulk_copy"
        db.engine.dispose()

