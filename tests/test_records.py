"""Records: search by text (Chinese, every version, literal), scope, keyset paging, reading, export."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from backend.extensions import db
from backend.models import AuditLogEntry, ChatAccount, Conversation, Message, MessageRevision, User
from backend.security.identifiers import identifier_key
from backend.services.conversations import find_or_create_conversation
from tests.conftest import sign_in
from tests.grants_helper import revoke_grants_of, staff_read

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

@pytest.fixture
def orgs(orgs, app):
    """conftest's tenants, whose staff hold private keys: reading records needs one (tests/test_grants.py)."""
    for org in orgs:
        staff_read(app, org)
    return orgs



def bearer(org, role="supervisor"):
    return {"Authorization": f"Bearer {org.tokens[role]}"}


def add_message(app, conversation_id: int, body: str, at: datetime, *, direction: str = "in",
                edits: tuple[tuple[str, datetime], ...] = (), deleted: tuple[str, datetime] | None = None,
                author_id: int | None = None) -> int:
    with app.app_context():
        conversation = db.session.get(Conversation, conversation_id)
        message = Message(tenant_id=conversation.tenant_id, conversation=conversation, direction=direction,
                          text=body, sent_at=at, author_user_id=author_id)
        db.session.add(message)
        db.session.flush()
        for new_text, when in edits:
            db.session.add(MessageRevision(tenant_id=conversation.tenant_id, message_id=message.id, kind="edit",
                                           text=new_text, occurred_at=when))
            message.edited_at = when
        if deleted:
            db.session.add(MessageRevision(tenant_id=conversation.tenant_id, message_id=message.id,
                                           kind="delete", text=deleted[0], occurred_at=deleted[1]))
            message.deleted_at = deleted[1]
        conversation.last_message_at = max(conversation.last_message_at or at, at)
        db.session.commit()
        return message.id


def support_conversation(app, org) -> int:
    """A conversation of the agent in Support, a department the supervisor does not supervise."""
    with app.app_context():
        agent = db.session.get(User, org.other_agent.id)
        account = ChatAccount(tenant_id=org.tenant_id, agent=agent, platform="telegram", handle="support line")
        db.session.add(account)
        db.session.flush()
        conversation = find_or_create_conversation(identifier_key(), account, "someone@example.com")
        db.session.commit()
        return conversation.id


def search(client, org, role="supervisor", **params):
    return client.get("/api/v1/messages/search", query_string=params, headers=bearer(org, role))


def found(client, org, role="supervisor", **params) -> list[int]:
    response = search(client, org, role, **params)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return [m["id"] for m in response.get_json()["messages"]]


# ---- text ------------------------------------------------------------------------------------------------

def test_chinese_phrase_inside_a_sentence(app, client, orgs):
    own, _other = orgs
    cid = own.conversation_id
    hit = add_message(app, cid, "您好，我们可以私下交易吗？价格好商量", T0)
    add_message(app, cid, "私下说一句：交易请走平台", T0 + timedelta(minutes=1))  # both words, not the phrase
    add_message(app, cid, "正常的售后问题", T0 + timedelta(minutes=2))
    assert found(client, own, q="私下交易") == [hit]
    body = search(client, own, q="私下交易").get_json()
    assert body["text_indexed"] is True
    assert body["messages"][0]["text"] == "您好，我们可以私下交易吗？价格好商量"
    assert body["messages"][0]["customer_pseudonym"].startswith("客户-")


def test_english_is_case_insensitive(app, client, orgs):
    own, _other = orgs
    hit = add_message(app, own.conversation_id, "Please send the INVOICE today", T0)
    assert found(client, own, q="invoice") == [hit]


@pytest.mark.parametrize("query,expected", [("价", {"price"}), ("ok", {"ok"}), ("OK", {"ok"}), ("%", {"percent"}),
                                            ("_", {"underscore"}), ("下交", {"phrase"})])
def test_one_and_two_character_queries(app, client, orgs, query, expected):
    own, _other = orgs
    ids = {name: add_message(app, own.conversation_id, body, T0 + timedelta(minutes=i)) for i, (name, body) in
           enumerate([("price", "价格"), ("ok", "that is ok"), ("percent", "50% off"), ("underscore", "a_b"),
                      ("phrase", "私下交易")])}
    body = search(client, own, q=query).get_json()
    assert {m["id"] for m in body["messages"]} == {ids[name] for name in expected}
    assert body["text_indexed"] is False


@pytest.mark.parametrize("query,hit,miss", [
    ("100%", "it is 100% real", "it is 1000 real"),
    ("a_b_c", "key a_b_c here", "key aXbYc here"),
    ("50%_", "50%_ off", "500 off"),
    ("a/b%", "path a/b% x", "path a/bc x"),
    ("foo OR bar", "say foo OR bar", "just foo here"),
    ("abc*", "literal abc* star", "abcdef prefix"),
    ('say "hi"', 'I say "hi" to you', "I say hi to you"),
    ("NEAR(x y)", "NEAR(x y) typed", "x y near"),
    ("col:val", "col:val text", "col val text"),
    ("^start", "a ^start b", "start here"),
    ("-minus", "x -minus y", "minus y"),
])
def test_wildcards_and_fts_syntax_are_literal(app, client, orgs, query, hit, miss):
    own, _other = orgs
    hit_id = add_message(app, own.conversation_id, hit, T0)
    add_message(app, own.conversation_id, miss, T0 + timedelta(minutes=1))
    assert found(client, own, q=query) == [hit_id]


def test_edited_message_is_found_by_every_version(app, client, orgs):
    own, _other = orgs
    edited = add_message(app, own.conversation_id, "call me on my private number", T0, direction="out",
                         edits=(("call me via the platform", T0 + timedelta(minutes=1)),
                                ("thanks, see you", T0 + timedelta(minutes=2))))
    for query in ("private number", "via the platform", "see you"):
        assert found(client, own, q=query) == [edited], query
    record = search(client, own, q="private number").get_json()["messages"][0]
    assert record["text"] == "call me on my private number"
    assert [(r["kind"], r["text"], r["at"]) for r in record["revisions"]] == [
        ("edit", "call me via the platform", (T0 + timedelta(minutes=1)).isoformat()),
        ("edit", "thanks, see you", (T0 + timedelta(minutes=2)).isoformat())]
    assert record["edited_at"] == (T0 + timedelta(minutes=2)).isoformat()


def test_deleted_message_keeps_its_last_content(app, client, orgs):
    own, _other = orgs
    deleted = add_message(app, own.conversation_id, "first words", T0,
                          edits=(("second words", T0 + timedelta(minutes=1)),),
                          deleted=("second words", T0 + timedelta(minutes=5)))
    record = search(client, own, q="second words").get_json()["messages"][0]
    assert record["id"] == deleted
    assert record["deleted_at"] == (T0 + timedelta(minutes=5)).isoformat()
    assert record["revisions"][-1] == {"kind": "delete", "text": "second words",
                                       "at": (T0 + timedelta(minutes=5)).isoformat()}


def test_search_index_follows_inserts_and_deletes(app, client, orgs):
    """Rows removed with DELETE (as the tests' cleanup does) leave nothing behind in the index."""
    own, _other = orgs
    gone = add_message(app, own.conversation_id, "ephemeral zebra text", T0, edits=(("zebra edited", T0),))
    with app.app_context():
        db.session.execute(text("DELETE FROM message_revision WHERE message_id = :id"), {"id": gone})
        db.session.execute(text("DELETE FROM message WHERE id = :id"), {"id": gone})
        db.session.commit()
    assert found(client, own, q="zebra") == []
    kept = add_message(app, own.conversation_id, "a plain giraffe", T0)
    assert found(client, own, q="giraffe") == [kept] and found(client, own, q="zebra") == []
    if app.config["DB_KIND"] == "sqlite":
        with app.app_context():  # FTS5 compares its index with the content tables; raises if they differ
            for table in ("search_index_message", "search_index_revision"):
                db.session.execute(text(f"INSERT INTO {table}({table}) VALUES ('integrity-check')"))


# ---- scope -------------------------------------------------------------------------------------------

def test_supervisor_sees_only_their_departments(app, client, orgs):
    own, other = orgs
    support = support_conversation(app, own)
    sales_hit = add_message(app, own.conversation_id, "refund request alpha", T0)
    support_hit = add_message(app, support, "refund request beta", T0)
    add_message(app, other.conversation_id, "refund request gamma", T0)
    assert found(client, own, q="refund request") == [sales_hit]
    assert set(found(client, own, "owner", q="refund request")) == {sales_hit, support_hit}
    assert search(client, own, agent_id=own.other_agent.id).status_code == 403
    assert search(client, own, department_id=own.support_id).status_code == 403
    assert found(client, own, department_id=own.sales_id, q="refund") == [sales_hit]
    assert found(client, own, "admin", department_id=own.support_id, q="refund") == [support_hit]
    conversations = client.get("/api/v1/conversations/search", query_string={"q": "refund"},
                               headers=bearer(own)).get_json()["conversations"]
    assert [c["id"] for c in conversations] == [own.conversation_id]


def test_agents_are_refused_and_other_tenants_are_not_found(app, client, orgs):
    own, other = orgs
    add_message(app, own.conversation_id, "secret plan", T0)
    assert search(client, own, "agent", q="secret").status_code == 403
    assert client.get("/api/v1/records/export?format=csv", headers=bearer(own, "agent")).status_code == 403
    for params in ({"agent_id": other.agent.id}, {"department_id": other.sales_id},
                   {"conversation_id": other.conversation_id}):
        response = search(client, own, **params)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found", params
    sign_in(client, own.users["supervisor"])
    assert client.get(f"/records/conversations/{other.conversation_id}").status_code == 404


def test_text_search_hides_rows_the_actor_may_not_read(app, client, orgs):
    """The text rule lives in visibility.can_read_message_text: without a private grant a hit is never
    listed, and no text is shown or exported."""
    own, _other = orgs
    add_message(app, own.conversation_id, "bank account 6222", T0)
    assert found(client, own, q="bank account"), "with the grant the hit is found"
    revoke_grants_of(app, own, own.users["supervisor"].id)
    assert found(client, own, q="bank account") == []
    listed = search(client, own).get_json()["messages"]  # no text filter: listed, text withheld
    assert listed and all(m["text"] is None and m["text_hidden"] for m in listed)
    lines = client.get("/api/v1/records/export?format=jsonl", headers=bearer(own)).get_data(as_text=True)
    assert "6222" not in lines


# ---- paging ------------------------------------------------------------------------------------------

def test_keyset_paging_over_ties_has_no_duplicates_or_gaps(app, client, orgs):
    own, _other = orgs
    ids = [add_message(app, own.conversation_id, f"tick {i}", T0 + timedelta(seconds=i // 5)) for i in range(23)]
    expected = sorted(ids, key=lambda i: (ids.index(i) // 5, i), reverse=True)
    seen, pages, before = [], [], None
    while True:
        params = {"q": "tick", "limit": 4} | ({"before": before} if before else {})
        body = search(client, own, **params).get_json()
        pages.append([m["id"] for m in body["messages"]])
        seen += pages[-1]
        before = body["older"]
        if before is None:
            break
    assert seen == expected
    # and back: "newer" from the last page walks the same pages in reverse
    after, back = body["newer"], []
    while after:
        body = search(client, own, q="tick", limit=4, after=after).get_json()
        back.append([m["id"] for m in body["messages"]])
        after = body["newer"]
    assert back == list(reversed(pages[:-1]))


def test_filters_combine(app, client, orgs):
    own, _other = orgs
    with app.app_context():
        pseudonym = db.session.get(Conversation, own.conversation_id).customer_pseudonym
    early = add_message(app, own.conversation_id, "order one", T0, direction="in")
    late_out = add_message(app, own.conversation_id, "order two", T0 + timedelta(days=2), direction="out")
    assert found(client, own, q="order", direction="out") == [late_out]
    assert found(client, own, q="order", **{"from": "2026-11-21"}) == [late_out]
    assert found(client, own, q="order", to="2026-11-20") == [early]  # a date as the end: the whole day
    assert found(client, own, q="order", to="2026-11-20T09:00") == [early]  # a time as the end: inclusive
    assert found(client, own, q="order", agent_id=own.agent.id, customer=pseudonym.removeprefix("客户-")[:3].lower(),
                 **{"from": "2026-11-20T08:00:00+08:00"}) == [late_out, early]
    assert found(client, own, q="order", customer="客户-ZZZZZZ") == []


@pytest.mark.parametrize("params,field", [
    ({"from": "yesterday"}, "from"), ({"to": "2026-13-01"}, "to"), ({"from": "2026-11-21", "to": "2026-11-20"}, "to"),
    ({"agent_id": "abc"}, "agent_id"), ({"agent_id": "99999999999"}, "agent_id"), ({"direction": "up"}, "direction"),
    ({"q": "x" * 201}, "q"), ({"q": "a\x00b"}, "q"), ({"before": "not-a-cursor"}, "before"),
    ({"before": "1.2", "after": "1.2"}, "after"), ({"limit": "0"}, "limit"), ({"limit": "100000"}, "limit"),
    ({"before": "-99999999999999999.1"}, "before"), ({"after": "1.9999999999"}, "after"),
])
def test_bad_parameters_are_400_json(client, orgs, params, field):
    own, _other = orgs
    response = search(client, own, **params)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_value" and error["details"]["field"] == field and error["message"]


def test_unknown_ids_are_404(client, orgs):
    own, _other = orgs
    for name in ("agent_id", "department_id", "chat_account_id", "conversation_id"):
        response = search(client, own, **{name: 987654})
        assert response.status_code == 404, name


# ---- panel -------------------------------------------------------------------------------------------

def test_panel_marks_hits_and_escapes_chat_text(app, client, orgs):
    own, _other = orgs
    add_message(app, own.conversation_id, "<script>alert(1)</script> 私下交易 now", T0)
    sign_in(client, own.users["supervisor"])
    page = client.get("/records", query_string={"q": "私下交易"}).get_data(as_text=True)
    assert "<mark>私下交易</mark>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    short = client.get("/records", query_string={"q": "私下"}).get_data(as_text=True)
    assert "<mark>私下</mark>" in short and "cannot use the search index" in short


def test_panel_pages_older_and_newer(app, client, orgs):
    own, _other = orgs
    for i in range(60):
        add_message(app, own.conversation_id, f"line {i}", T0 + timedelta(minutes=i))
    sign_in(client, own.users["supervisor"])
    first = client.get("/records", query_string={"q": "line"}).get_data(as_text=True)
    shown = re.findall(r"<mark>line</mark> (\d+)</div>", first)
    assert shown == [str(i) for i in range(59, 9, -1)] and "after=" not in first
    older = client.get("/records", query_string={"q": "line", "before": re.search(r"before=([\d.]+)", first)[1]})
    body = older.get_data(as_text=True)
    assert re.findall(r"<mark>line</mark> (\d+)</div>", body) == [str(i) for i in range(9, -1, -1)]
    assert "after=" in body and "before=" not in body


def test_panel_bad_filter_shows_the_form_with_the_error(client, orgs):
    own, _other = orgs
    sign_in(client, own.users["supervisor"])
    response = client.get("/records", query_string={"from": "soon"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "2026-11-23T14:30" in body and 'name="q"' in body


def test_conversation_page_shows_versions_deletion_and_author(app, client, orgs):
    own, _other = orgs
    with app.app_context():
        supervisor_name = db.session.get(User, own.users["supervisor"].id).display_name
    add_message(app, own.conversation_id, "original wording", T0, direction="out",
                edits=(("better wording", T0 + timedelta(minutes=3)),),
                deleted=("better wording", T0 + timedelta(minutes=7)))
    add_message(app, own.conversation_id, "a word from the supervisor", T0 + timedelta(minutes=8), direction="out",
                author_id=own.users["supervisor"].id)
    sign_in(client, own.users["supervisor"])
    page = client.get(f"/records/conversations/{own.conversation_id}").get_data(as_text=True)
    for expected in ("original wording", "better wording", "2026-11-20 09:03:00", "2026-11-20 09:07:00",
                     "Deletion (last content)", f"Written by {supervisor_name} in the panel"):
        assert expected in page, expected
    api = client.get(f"/api/v1/conversations/{own.conversation_id}/records", headers=bearer(own)).get_json()
    by_text = {m["text"]: m for m in api["messages"]}
    assert by_text["a word from the supervisor"]["author"]["id"] == own.users["supervisor"].id
    assert by_text["original wording"]["deleted_at"] == (T0 + timedelta(minutes=7)).isoformat()


def test_conversation_page_opens_at_a_search_hit(app, client, orgs):
    own, _other = orgs
    ids = [add_message(app, own.conversation_id, f"turn {i:03d}", T0 + timedelta(minutes=i)) for i in range(250)]
    body = client.get(f"/api/v1/conversations/{own.conversation_id}/records",
                      query_string={"focus": ids[120]}, headers=bearer(own)).get_json()
    shown = [m["id"] for m in body["messages"]]
    assert shown[:6] == ids[115:121] and body["earlier"] and body["later"]
    earlier = client.get(f"/api/v1/conversations/{own.conversation_id}/records",
                         query_string={"before": body["earlier"]}, headers=bearer(own)).get_json()
    assert [m["id"] for m in earlier["messages"]] == ids[15:115]


# ---- export ------------------------------------------------------------------------------------------

def test_export_csv_is_excel_ready_and_formula_safe(app, client, orgs):
    own, _other = orgs
    support = support_conversation(app, own)
    add_message(app, own.conversation_id, "=HYPERLINK(\"http://evil.test\",\"点我\")", T0)
    add_message(app, own.conversation_id, "价格私下交易", T0 + timedelta(minutes=1), edits=(("+86 138", T0),))
    add_message(app, own.conversation_id, "@SUM(A1)", T0 + timedelta(minutes=2))
    add_message(app, support, "support only", T0)
    response = client.get("/api/v1/records/export", query_string={"format": "csv"}, headers=bearer(own))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    texts = [r["text"] for r in rows]
    assert "support only" not in texts  # the supervisor's scope
    assert "'=HYPERLINK(\"http://evil.test\",\"点我\")" in texts and "'@SUM(A1)" in texts and "价格私下交易" in texts
    assert next(r for r in rows if r["text"] == "价格私下交易")["revisions"].endswith("edit: +86 138")
    with app.app_context():
        entry = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == "records.export")).one()
        assert entry.actor_user_id == own.users["supervisor"].id
        assert entry.details["format"] == "csv" and entry.details["count"] == len(rows) == 4


def test_export_jsonl_follows_the_filters(app, client, orgs):
    own, _other = orgs
    hit = add_message(app, own.conversation_id, "需要发票 please", T0, edits=(("需要发票 now", T0 + timedelta(1)),))
    add_message(app, own.conversation_id, "unrelated", T0)
    response = client.get("/api/v1/records/export", query_string={"format": "jsonl", "q": "发票"},
                          headers=bearer(own))
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [line["id"] for line in lines] == [hit]
    assert lines[0]["text"] == "需要发票 please" and lines[0]["revisions"][0]["text"] == "需要发票 now"


def test_export_refuses_a_bad_format_and_too_large_a_selection(app, client, orgs, monkeypatch):
    own, _other = orgs
    response = client.get("/api/v1/records/export", query_string={"format": "xlsx"}, headers=bearer(own))
    assert response.status_code == 400 and response.get_json()["error"]["details"]["field"] == "format"
    for i in range(3):
        add_message(app, own.conversation_id, f"bulk {i}", T0)
    monkeypatch.setattr("backend.services.records.EXPORT_MAX", 2)
    response = client.get("/api/v1/records/export", query_string={"format": "csv"}, headers=bearer(own))
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "export_too_large"
    sign_in(client, own.users["supervisor"])
    page = client.get("/records/export", query_string={"format": "jsonl"})
    assert page.status_code == 400 and "Narrow it" in page.get_data(as_text=True)


@pytest.mark.parametrize("lookup_max", [1_000, 0], ids=["hits-first", "hits-many"])
@pytest.mark.parametrize("narrow", [False, True], ids=["tenant", "agent"])
def test_every_search_route_finds_the_same_rows(app, client, orgs, monkeypatch, lookup_max, narrow):
    """On SQLite a search starts from the hits, the conversations or the newest messages depending on how
    many hits there are and how narrow the filters are; each way gives the same answer."""
    own, _other = orgs
    monkeypatch.setattr("backend.services.records.hit_lookup_limit", lambda: lookup_max)
    hit = add_message(app, own.conversation_id, "old 私下交易 wording", T0, edits=(("new wording", T0),))
    wild = add_message(app, own.conversation_id, "100% a_b", T0 + timedelta(minutes=1))
    add_message(app, own.conversation_id, "1000 axb", T0 + timedelta(minutes=2))
    scope = {"agent_id": own.agent.id} if narrow else {}
    assert found(client, own, q="私下交易", **scope) == [hit]
    assert found(client, own, q="NEW WORDING", **scope) == [hit]
    assert found(client, own, q="100% a_b", **scope) == [wild]
    assert found(client, own, q="wording", to="2026-11-20T08:59", **scope) == []


def test_conversation_search_pages_by_latest_message(app, client, orgs):
    own, _other = orgs
    with app.app_context():
        agent = db.session.get(User, own.agent.id)
        account = db.session.scalars(select(ChatAccount).where(ChatAccount.agent_id == agent.id)).first()
        ids = [find_or_create_conversation(identifier_key(), account, f"+86 139 0000 {i:04d}").id
               for i in range(7)]
        db.session.commit()
    for i, cid in enumerate(ids):
        add_message(app, cid, "hello" if i % 2 else "price?", T0 + timedelta(hours=i),
                    edits=(("hello there", T0 + timedelta(hours=i, minutes=1)),) if i == 2 else ())

    def search_ids(**params):
        body = client.get("/api/v1/conversations/search", query_string=params, headers=bearer(own)).get_json()
        return [c["id"] for c in body["conversations"]], body

    newest_first = list(reversed(ids))
    seen, before = [], None
    while True:
        page, body = search_ids(limit=3, **({"before": before} if before else {}))
        seen += page
        before = body["older"]
        if not before:
            break
    assert seen == newest_first  # the fixture's conversation has no last message time: not a record yet
    hello, _ = search_ids(q="hello")
    assert hello == [ids[5], ids[3], ids[2], ids[1]]  # ids[2] only by its edit
    assert search_ids(q="hello", **{"from": (T0 + timedelta(hours=3)).isoformat()})[0] == [ids[5], ids[3]]
    assert search_ids(q="hello", direction="out")[0] == []
    page, body = search_ids(limit=2, after=search_ids(limit=2)[1]["older"])  # back from the second row
    assert page == newest_first[:1] and body["newer"] is None and body["older"]
    assert body["conversations"][0]["message_count"] == 1
