"""Home's overview and the Statistics page: exact numbers from a known history, in Asia/Shanghai.

The history (local times, Asia/Shanghai = UTC+8; 2025-03-03 is a Monday):
  agent (Sales)
    C4 Mon 07:30 in, 07:32 out                          first response 120 s
    C1 Mon 09:00 in, 09:01 in, 09:03 out, 09:10 out (block), 09:20 in, 09:30 out
                                                        first 180 s (09:01 does not restart the clock), then 600 s
    C2 Mon 23:50 in, Tue 00:05 out (warn), Tue 10:00 in, 10:02 out
                                                        Monday's first 900 s (over target); Tuesday's first 120 s
    send_blocked Mon 09:05; message_deleted Mon 08:00; message_edited Tue 09:00; message_deleted Tue 09:30
    C6 Mon 2025-03-10 08:00 in, 08:01 out               next week, first 60 s
    C7 Fri 2025-02-28 12:00 in, 12:10 out               last month, first 600 s
  agent2 (Support, which the supervisor does not supervise)
    C3 Sat 14:00 in, 14:04 out, 15:00 in (never answered)   first 240 s
    C5 Sun 11:00 in (never answered)                        first response due, missed
    send_blocked Sat 14:10
  Bolt (the other tenant): a conversation on Monday that must never be counted.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from backend.extensions import db
from backend.models import BehaviourEvent, ChatAccount, Device, Message, User
from backend.security.identifiers import identifier_key
from backend.services import statistics as stats
from backend.services.conversations import find_or_create_conversation
from tests.conftest import sign_in

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEK = {"from": "2025-03-03", "to": "2025-03-09", "tz": "Asia/Shanghai"}


def local(day: int, hour: int, minute: int, month: int = 3) -> datetime:
    """A Shanghai wall-clock time in 2025, as the UTC instant Veil stores."""
    return datetime(2025, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@dataclass
class History:
    c1: int
    c2: int
    c3: int


def conversation(app, tenant_id: int, agent_id: int, customer: str, lines: list) -> int:
    agent = db.session.get(User, agent_id)
    account = db.session.query(ChatAccount).filter_by(agent_id=agent_id, handle="stats line").first()
    if account is None:
        account = ChatAccount(tenant_id=tenant_id, agent=agent, platform="whatsapp", handle="stats line")
        db.session.add(account)
        db.session.flush()
    row = find_or_create_conversation(identifier_key(), account, customer)
    for direction, at, action in lines:
        check = {"action": action, "findings": [], "rules": "test"} if direction == "out" else None
        db.session.add(Message(tenant_id=tenant_id, conversation=row, direction=direction, text="…", sent_at=at,
                               server_check=check))
        row.last_message_at = at
    db.session.flush()
    return row.id


def event(tenant_id: int, agent_id: int, kind: str, at: datetime) -> None:
    db.session.add(BehaviourEvent(tenant_id=tenant_id, agent_id=agent_id, type=kind, details={}, occurred_at=at))


@pytest.fixture
def history(app, orgs) -> History:
    own, other = orgs
    with app.app_context():
        a, b, t = own.agent.id, own.other_agent.id, own.tenant_id
        # The fixture's own device and message belong to today; keep them out of the comparisons.
        db.session.get(Device, own.device_id).last_seen_at = None
        c4 = conversation(app, t, a, "c4", [("in", local(3, 7, 30), None), ("out", local(3, 7, 32), "allow")])
        c1 = conversation(app, t, a, "c1", [
            ("in", local(3, 9, 0), None), ("in", local(3, 9, 1), None), ("out", local(3, 9, 3), "allow"),
            ("out", local(3, 9, 10), "block"), ("in", local(3, 9, 20), None), ("out", local(3, 9, 30), "allow")])
        c2 = conversation(app, t, a, "c2", [
            ("in", local(3, 23, 50), None), ("out", local(4, 0, 5), "warn"), ("in", local(4, 10, 0), None),
            ("out", local(4, 10, 2), "allow")])
        conversation(app, t, a, "c6", [("in", local(10, 8, 0), None), ("out", local(10, 8, 1), "allow")])
        conversation(app, t, a, "c7", [("in", local(28, 12, 0, month=2), None),
                                       ("out", local(28, 12, 10, month=2), "allow")])
        c3 = conversation(app, t, b, "c3", [("in", local(8, 14, 0), None), ("out", local(8, 14, 4), "allow"),
                                            ("in", local(8, 15, 0), None)])
        conversation(app, t, b, "c5", [("in", local(9, 11, 0), None)])
        event(t, a, "send_blocked", local(3, 9, 5))
        event(t, a, "message_deleted", local(3, 8, 0))
        event(t, a, "message_edited", local(4, 9, 0))
        event(t, a, "message_deleted", local(4, 9, 30))
        event(t, b, "send_blocked", local(8, 14, 10))
        db.session.add(Device(tenant_id=t, agent_id=a, label="second", enrolled_at=local(4, 8, 0)))
        db.session.add(Device(tenant_id=t, agent_id=b, label="support pc", enrolled_at=local(1, 8, 0),
                              last_seen_at=local(4, 10, 29)))
        # The other tenant, same day and hour: never in Acme's numbers.
        conversation(app, other.tenant_id, other.agent.id, "bolt", [
            ("in", local(3, 9, 0), None), ("out", local(3, 9, 1), "block")])
        event(other.tenant_id, other.agent.id, "send_blocked", local(3, 9, 2))
        db.session.commit()
        del c4
        return History(c1=c1, c2=c2, c3=c3)


def ask(app, user_id: int, now: datetime | None = None, **args) -> dict:
    with app.app_context():
        actor = db.session.get(User, user_id)
        return stats.statistics(actor, stats.read_query({**WEEK, **args}), now=now)


def row(answer: dict, period: str, group_name: str) -> dict:
    return next(r for r in answer["rows"] if r["period"] == period and r["group_name"] == group_name)


# ---- response times, hits and buckets ------------------------------------------------------------------

def test_days_per_agent_in_shanghai(app, orgs, history):
    own, _other = orgs
    answer = ask(app, own.users["owner"].id)
    assert [g["group_name"] for g in answer["groups"]] == ["agent", "agent2"]
    assert [(r["period"], r["group_name"]) for r in answer["rows"]] == [
        ("2025-03-03", "agent"), ("2025-03-04", "agent"), ("2025-03-08", "agent2"), ("2025-03-09", "agent2")]

    monday = row(answer, "2025-03-03", "agent")
    assert monday["messages_in"] == 5 and monday["messages_out"] == 4
    assert monday["conversations"] == 2  # C1 and C4; C2's reply came on Tuesday
    assert monday["responses"] == 4 and monday["response_avg_s"] == 450.0 and monday["response_median_s"] == 390.0
    assert monday["first_responses"] == 3
    assert monday["first_response_avg_s"] == 400.0 and monday["first_response_median_s"] == 180.0
    assert (monday["answered_within_target"], monday["first_responses_due"]) == (2, 3)
    assert monday["within_target_pct"] == 66.7
    assert monday["hits"] == 2 and monday["hits_per_100"] == 50.0  # the blocked message and the blocked send

    tuesday = row(answer, "2025-03-04", "agent")
    assert (tuesday["messages_in"], tuesday["messages_out"], tuesday["conversations"]) == (1, 2, 1)
    assert tuesday["first_responses"] == 1 and tuesday["first_response_avg_s"] == 120.0
    assert tuesday["within_target_pct"] == 100.0 and tuesday["hits"] == 1 and tuesday["hits_per_100"] == 50.0

    saturday = row(answer, "2025-03-08", "agent2")
    assert (saturday["messages_in"], saturday["messages_out"], saturday["hits"]) == (2, 1, 1)
    assert saturday["hits_per_100"] == 100.0
    assert saturday["responses"] == 1 and saturday["first_response_avg_s"] == 240.0  # 15:00 is never answered
    sunday = row(answer, "2025-03-09", "agent2")
    assert sunday["first_responses"] == 0 and sunday["first_responses_due"] == 1
    assert sunday["within_target_pct"] == 0.0 and sunday["hits_per_100"] is None

    overall = answer["overall"]
    assert (overall["messages_in"], overall["messages_out"], overall["hits"]) == (9, 7, 4)
    assert overall["hits_per_100"] == 57.14
    assert overall["first_response_avg_s"] == 312.0 and overall["first_response_median_s"] == 180.0
    assert (overall["answered_within_target"], overall["first_responses_due"]) == (4, 6)
    groups = {g["group_name"]: g for g in answer["groups"]}
    assert groups["agent"]["hits_per_100"] == 50.0 and groups["agent2"]["hits_per_100"] == 100.0
    assert [t["period"] for t in answer["totals"]] == [f"2025-03-0{d}" for d in range(3, 10)]
    assert [t["messages_in"] for t in answer["totals"]] == [5, 1, 0, 0, 0, 2, 1]


def test_hours_and_weekends_follow_the_time_zone(app, orgs, history):
    own, _other = orgs
    shanghai = ask(app, own.users["owner"].id)
    hours = shanghai["hours"]
    assert (hours[9]["messages_in"], hours[9]["messages_out"], hours[9]["hits"]) == (3, 3, 2)
    assert hours[9]["response_avg_s"] == 390.0  # 09:00 (180 s) and 09:20 (600 s)
    assert (hours[7]["messages_in"], hours[0]["messages_out"], hours[0]["hits"]) == (1, 1, 1)
    assert sum(h["messages_in"] for h in hours) == 9 and hours[1]["messages_in"] == 0
    weekday, weekend = shanghai["day_types"]
    assert (weekday["day_type"], weekday["days"], weekday["messages_in"], weekday["messages_out"]) == \
        ("weekday", 5, 6, 6)
    assert weekday["messages_per_day"] == 2.4 and weekday["hits"] == 3
    assert (weekend["days"], weekend["messages_in"], weekend["messages_out"], weekend["messages_per_day"]) == \
        (2, 3, 1, 2.0)
    assert [d["messages_in"] for d in shanghai["weekdays"]] == [5, 1, 0, 0, 0, 2, 1]

    # The same history in UTC: C4 (Monday 07:30 in Shanghai) is Sunday night, 09:00 is 01:00.
    utc = ask(app, own.users["owner"].id, tz="UTC", **{"from": "2025-03-02"})
    weekday, weekend = utc["day_types"]
    assert (weekday["messages_in"], weekday["messages_out"]) == (5, 5)
    assert (weekend["messages_in"], weekend["messages_out"]) == (4, 2)
    assert utc["hours"][1]["messages_in"] == 3 and utc["hours"][9]["messages_in"] == 0


def test_weeks_and_months(app, orgs, history):
    own, _other = orgs
    weeks = ask(app, own.users["owner"].id, period="week", **{"from": "2025-03-05", "to": "2025-03-16"},
                agent=str(own.agent.id))
    assert [(p["period"], p["label"]) for p in weeks["periods"]] == [("2025-03-03", "2025-W10"),
                                                                     ("2025-03-10", "2025-W11")]
    # From Wednesday: Monday and Tuesday are outside the range, so the first week is empty for the agent.
    assert [r["period"] for r in weeks["rows"]] == ["2025-03-10"]
    weeks = ask(app, own.users["owner"].id, period="week", **{"to": "2025-03-16"}, agent=str(own.agent.id))
    first, second = weeks["rows"]
    assert (first["messages_in"], first["messages_out"], first["hits"]) == (6, 6, 3)
    # one first response per conversation and week: C2's Tuesday message is a response, not a first one
    assert first["first_responses"] == 3 and first["first_response_avg_s"] == 400.0
    assert first["responses"] == 5 and first["response_avg_s"] == 384.0 and first["response_median_s"] == 180.0
    assert (second["messages_in"], second["first_response_avg_s"]) == (1, 60.0)

    months = ask(app, own.users["owner"].id, period="month", **{"from": "2025-02-24", "to": "2025-03-31"})
    assert [p["label"] for p in months["periods"]] == ["2025-02", "2025-03"]
    february, march = months["totals"]
    assert (february["messages_in"], february["first_response_avg_s"], february["within_target_pct"]) == \
        (1, 600.0, 0.0)
    assert (march["messages_in"], march["messages_out"]) == (10, 8)


def test_departments(app, orgs, history):
    own, _other = orgs
    answer = ask(app, own.users["admin"].id, group_by="department")
    assert [g["group_name"] for g in answer["groups"]] == ["Sales", "Support"]
    sales, support = answer["groups"]
    assert (sales["messages_in"], support["messages_in"]) == (6, 3)
    assert (sales["hits_per_100"], support["hits_per_100"]) == (50.0, 100.0)
    only_support = ask(app, own.users["admin"].id, group_by="department", department=str(own.support_id))
    assert [g["group_name"] for g in only_support["groups"]] == ["Support"]
    assert only_support["overall"]["messages_in"] == 3


def test_target_is_a_parameter(app, orgs, history):
    own, _other = orgs
    relaxed = ask(app, own.users["owner"].id, target_minutes="15")
    assert relaxed["query"]["target_minutes"] == 15
    assert (relaxed["overall"]["answered_within_target"], relaxed["overall"]["first_responses_due"]) == (5, 6)


def test_a_customer_still_within_the_target_is_not_due(app, orgs, history):
    own, _other = orgs
    # Ten minutes after Sunday's unanswered message (11:00), with a target of 15 minutes: not due yet.
    early = ask(app, own.users["owner"].id, now=local(9, 11, 10), target_minutes="15")
    assert early["overall"]["first_responses_due"] == 5
    late = ask(app, own.users["owner"].id, now=local(9, 11, 20), target_minutes="15")
    assert late["overall"]["first_responses_due"] == 6


# ---- scope -------------------------------------------------------------------------------------------

def test_supervisor_sees_only_their_departments(app, orgs, history):
    own, other = orgs
    answer = ask(app, own.users["supervisor"].id)
    assert [g["group_name"] for g in answer["groups"]] == ["agent"]
    assert (answer["overall"]["messages_in"], answer["overall"]["hits"]) == (6, 3)
    by_department = ask(app, own.users["supervisor"].id, group_by="department")
    assert [g["group_name"] for g in by_department["groups"]] == ["Sales"]
    with app.app_context():
        supervisor = db.session.get(User, own.users["supervisor"].id)
        for args, status in (({"agent": str(own.other_agent.id)}, 403), ({"department": str(own.support_id)}, 403),
                             ({"agent": str(other.agent.id)}, 404), ({"department": str(other.sales_id)}, 404)):
            with pytest.raises(stats.ApiError) as raised:
                stats.statistics(supervisor, stats.read_query({**WEEK, **args}))
            assert raised.value.status == status, args


def test_agent_sees_only_themselves(app, orgs, history):
    own, _other = orgs
    mine = ask(app, own.agent.id)
    assert [g["group_name"] for g in mine["groups"]] == ["agent"]
    assert mine["overall"]["messages_in"] == 6
    assert ask(app, own.agent.id, group_by="department")["groups"][0]["group_name"] == "Sales"
    other_agent = ask(app, own.other_agent.id)
    assert [g["group_name"] for g in other_agent["groups"]] == ["agent2"]
    assert other_agent["overall"]["messages_in"] == 3
    with app.app_context():
        agent = db.session.get(User, own.agent.id)
        with pytest.raises(stats.ApiError) as raised:
            stats.statistics(agent, stats.read_query({**WEEK, "agent": str(own.other_agent.id)}))
        assert raised.value.status == 403


def test_other_tenant_is_never_counted(app, orgs, history):
    own, other = orgs
    bolt = ask(app, other.users["owner"].id)
    assert (bolt["overall"]["messages_in"], bolt["overall"]["hits"]) == (1, 2)
    acme = ask(app, own.users["owner"].id)
    assert acme["hours"][9]["messages_in"] == 3  # Bolt's 09:00 message is not among them


# ---- Home ----------------------------------------------------------------------------------------------

def overview(app, user_id: int, **kwargs) -> dict:
    with app.app_context():
        return stats.overview(db.session.get(User, user_id), tz=SHANGHAI, **kwargs)


def test_overview_so_far_today_against_yesterday_by_this_time(app, orgs, history):
    own, _other = orgs
    answer = overview(app, own.users["owner"].id, now=local(4, 10, 30))
    assert answer["day"] == "2025-03-04" and answer["so_far"] is True
    f = answer["figures"]
    assert (f["messages_in"]["today"], f["messages_in"]["yesterday"], f["messages_in"]["change_pct"]) == (1, 4, -75.0)
    assert (f["messages_out"]["today"], f["messages_out"]["yesterday"]) == (2, 4)
    assert (f["sensitive_hits"]["today"], f["sensitive_hits"]["yesterday"]) == (1, 2)
    assert (f["sensitive_hits"]["change"], f["sensitive_hits"]["change_pct"]) == (-1, -50.0)
    assert (f["blocked_sends"]["today"], f["blocked_sends"]["yesterday"], f["blocked_sends"]["change_pct"]) == \
        (0, 1, -100.0)
    assert (f["deleted_messages"]["today"], f["deleted_messages"]["yesterday"]) == (1, 1)
    assert f["deleted_messages"]["change"] == 0
    assert (f["edited_messages"]["today"], f["edited_messages"]["yesterday"]) == (1, 0)
    assert f["edited_messages"]["change_pct"] is None  # no percentage from nothing
    assert (f["new_devices"]["today"], f["new_devices"]["yesterday"]) == (1, 0)
    assert (f["conversations"]["today"], f["conversations"]["yesterday"]) == (1, 2)
    assert (f["first_response_median_s"]["today"], f["first_response_median_s"]["yesterday"]) == (120.0, 150.0)
    assert f["first_response_median_s"]["change_pct"] == -20.0
    assert (f["within_target_pct"]["today"], f["within_target_pct"]["yesterday"]) == (100.0, 100.0)
    assert (answer["agents"], answer["agents_online"]) == (2, 1)  # agent2's device, seen a minute ago


def test_overview_of_a_past_day_compares_whole_days(app, orgs, history):
    own, _other = orgs
    answer = overview(app, own.users["owner"].id, day=date(2025, 3, 3), now=local(4, 10, 30))
    assert answer["so_far"] is False
    f = answer["figures"]
    assert (f["messages_in"]["today"], f["messages_in"]["yesterday"], f["messages_in"]["change_pct"]) == (5, 0, None)
    assert f["first_response_avg_s"]["today"] == 400.0 and f["first_response_avg_s"]["change"] is None


def test_overview_scope(app, orgs, history):
    own, _other = orgs
    now = local(8, 23, 0)  # Saturday: only agent2 worked
    owner = overview(app, own.users["owner"].id, now=now)["figures"]
    supervisor = overview(app, own.users["supervisor"].id, now=now)
    agent = overview(app, own.agent.id, now=now)
    assert owner["messages_in"]["today"] == 2 and owner["sensitive_hits"]["today"] == 1
    assert supervisor["figures"]["messages_in"]["today"] == 0 and supervisor["agents"] == 1
    assert agent["figures"]["messages_in"]["today"] == 0 and agent["agents"] == 1
    assert overview(app, own.other_agent.id, now=now)["figures"]["blocked_sends"]["today"] == 1


# ---- HTTP: JSON, CSV, pages and bad parameters ---------------------------------------------------------

def bearer(org, role):
    return {"Authorization": f"Bearer {org.tokens[role]}"}


def test_api_answers_and_csv(app, client, orgs, history):
    own, _other = orgs
    with app.app_context():
        db.session.get(User, own.other_agent.id).display_name = '=HYPERLINK("http://evil.test","x")'
        db.session.commit()
    response = client.get("/api/v1/statistics", query_string=WEEK, headers=bearer(own, "owner"))
    assert response.status_code == 200
    assert response.get_json()["overall"]["messages_in"] == 9

    for path, extra in (("/api/v1/statistics.csv", {}), ("/api/v1/statistics", {"format": "csv"})):
        response = client.get(path, query_string={**WEEK, **extra}, headers=bearer(own, "owner"))
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert "attachment" in response.headers["Content-Disposition"]
        body = response.get_data()
        assert body.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        header, rows = table[0], table[1:]
        assert header[:4] == ["Period", "Period label", "Group id", "Group"]
        assert len(rows) == 4
        monday = dict(zip(header, rows[0], strict=True))
        assert (monday["Period"], monday["Group"], monday["Messages in"], monday["Messages out"]) == \
            ("2025-03-03", "agent", "5", "4")
        assert (monday["Average first response (s)"], monday["Hits per 100 outgoing messages"]) == ("400.0", "50.0")
        assert rows[2][3] == "'=HYPERLINK(\"http://evil.test\",\"x\")"  # the formula is text, not a formula

    agent = client.get("/api/v1/statistics.csv", query_string=WEEK, headers=bearer(own, "agent"))
    assert len(agent.get_data(as_text=True).strip().splitlines()) == 3  # header, Monday, Tuesday

    response = client.get("/api/v1/statistics/overview", query_string={"tz": "Asia/Shanghai"},
                          headers=bearer(own, "supervisor"))
    assert response.status_code == 200
    assert response.get_json()["tz"] == "Asia/Shanghai" and response.get_json()["agents"] == 1


def test_spreadsheet_guard():
    from backend.services.spreadsheets import spreadsheet_safe

    assert [spreadsheet_safe(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=x", "\r=x", "ok", 5, None)] == \
        ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\t=x", "'\r=x", "ok", 5, None]


@pytest.mark.parametrize("args", [
    {"tz": "Mars/Olympus_Mons"},
    {"tz": "../../etc/passwd"},
    {"from": "2025-03-09", "to": "2025-03-03"},
    {"group_by": "team"},
    {"period": "year"},
    {"from": "2025-13-01"},
    {"from": "03/03/2025"},
    {"from": "2024-01-01", "to": "2025-03-03"},
    {"target_minutes": "0"},
    {"target_minutes": "5.5"},
    {"agent": "one"},
    {"department": "-1"},
    {"format": "xlsx"},
])
def test_bad_parameters_are_400(client, orgs, args):
    own, _other = orgs
    response = client.get("/api/v1/statistics", query_string={**WEEK, **args}, headers=bearer(own, "owner"))
    assert response.status_code == 400, args
    assert response.get_json()["error"]["code"] == "invalid_parameter"


def test_bad_overview_parameters_are_400(client, orgs):
    own, _other = orgs
    for args in ({"tz": "Nowhere/City"}, {"day": "yesterday"}, {"target_minutes": "99999"}):
        response = client.get("/api/v1/statistics/overview", query_string=args, headers=bearer(own, "owner"))
        assert response.status_code == 400, args


def test_unknown_filters_answer_as_not_found_or_forbidden(client, orgs):
    own, other = orgs
    cases = ((own, "supervisor", {"department": own.support_id}, 403),
             (own, "agent", {"agent": own.other_agent.id}, 403),
             (own, "owner", {"agent": other.agent.id}, 404),
             (own, "owner", {"department": other.sales_id}, 404))
    for org, role, args, status in cases:
        response = client.get("/api/v1/statistics", query_string=args, headers=bearer(org, role))
        assert response.status_code == status, (role, args)


def test_pages(app, orgs, history):
    own, _other = orgs
    owner = app.test_client()
    sign_in(owner, own.users["owner"])
    page = owner.get("/statistics", query_string=WEEK).get_data(as_text=True)
    assert 'id="chart-messages"' in page and 'id="chart-hits"' in page
    assert ">agent2<" in page and "2025-03-08" in page
    assert "/api/v1/statistics.csv?from=2025-03-03&amp;to=2025-03-09&amp;tz=Asia/Shanghai" in page
    assert owner.get("/statistics", query_string={"tz": "Mars/Base"}).status_code == 400
    home = owner.get("/").get_data(as_text=True)
    assert 'data-figure="sensitive_hits"' in home and 'data-figure="agents_online"' in home

    agent = app.test_client()
    sign_in(agent, own.users["agent"])
    page = agent.get("/statistics", query_string=WEEK).get_data(as_text=True)
    assert ">agent2<" not in page and ">agent<" in page
    assert 'name="agent"' not in page  # no filters for other people
    home = agent.get("/").get_data(as_text=True)
    assert 'data-figure="agents_online"' not in home and 'data-figure="messages_in"' in home
    assert 'href="/statistics"' in home  # the nav item and the link, for every role
    agent.set_cookie("veil_lang", "zh")
    assert agent.get("/statistics", query_string=WEEK).status_code == 200
    assert agent.get("/").status_code == 200


def test_read_query_defaults():
    query = stats.read_query({}, now=datetime(2026, 1, 10, 20, 0, tzinfo=UTC))
    assert (query.start, query.end, query.tz.key, query.group_by, query.period, query.target_minutes) == \
        (date(2025, 12, 28), date(2026, 1, 10), "UTC", "agent", "day", 5)
    # the day is the time zone's: 20:00 UTC is already the next day in Shanghai
    assert stats.read_query({"tz": "Asia/Shanghai"}, now=datetime(2026, 1, 10, 20, 0, tzinfo=UTC)).end == \
        date(2026, 1, 11)
    assert stats.read_query({"from": "2026-01-01", "to": "2026-01-01"}).start == date(2026, 1, 1)
    assert timedelta(minutes=5) == stats.read_query({}).target
