"""Alerts: raised by the server's own check (through the real ingest) and by device signals, heard in the
panel by the right people only, read and counted per user, and sent to webhooks signed and retried."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import re
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from backend import cli
from backend.extensions import db, socketio
from backend.models import (
    Alert,
    AlertReceipt,
    AuditLogEntry,
    BehaviourEvent,
    Department,
    Role,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.models.base import utcnow
from backend.security import sealed
from backend.security.rate_limit import TokenBuckets
from backend.services import alerts, ingest, rule_sets, webhooks
from backend.services.devices import enrol_device
from tests.conftest import UserRef, device_token, sign_in

SENSITIVE = "放心，这个产品保证收益"  # "guaranteed returns": the default compliance words block it


@pytest.fixture(autouse=True)
def _fresh_process_state(monkeypatch):
    """Flood buckets and engines live in the process; ids restart after each test's cleanup."""
    monkeypatch.setattr(ingest, "flood_control", TokenBuckets(ingest.FLOOD_RATE, ingest.FLOOD_BURST))
    monkeypatch.setattr(rule_sets, "_ENGINES", {})


@pytest.fixture
def allow_private(app, monkeypatch):
    """The local test server is on 127.0.0.1, which production refuses."""
    monkeypatch.setitem(app.config, "VEIL_WEBHOOK_ALLOW_PRIVATE", True)


@pytest.fixture
def receiver():
    """A local HTTP endpoint that records each request (headers, exact body) and answers `status`."""
    received: list[tuple[dict, bytes]] = []
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state["status"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/hook", received=received, state=state)
    server.shutdown()
    server.server_close()
    thread.join()


def support_supervisor(app, org) -> UserRef:
    """A supervisor of the other department (Support), who does not supervise the org's agent."""
    with app.app_context():
        user = User(tenant_id=org.tenant_id, email=f"support-boss@{org.name.lower()}.test",
                    display_name="support boss", role=Role.SUPERVISOR)
        user.departments = [db.session.get(Department, org.support_id)]
        db.session.add(user)
        db.session.commit()
        return UserRef.of(user)


def panel_socket(app, user):
    flask_client = app.test_client()
    sign_in(flask_client, user)
    sio = socketio.test_client(app, namespace="/panel", flask_test_client=flask_client)
    assert sio.is_connected("/panel")
    sio.get_received("/panel")
    return sio


def received(sio, name: str) -> list:
    return [packet["args"][0] for packet in sio.get_received("/panel") if packet["name"] == name]


def send_outgoing(app, org, text: str = SENSITIVE, n: int = 1) -> dict:
    """An agent's outgoing message through the real ingest, as the extension sends it."""
    sio = socketio.test_client(app, namespace="/agent", auth={"token": device_token(app, org.device_id)})
    assert sio.is_connected("/agent")
    at = int(utcnow().timestamp() * 1000)
    event = {"id": f"alert-event-{n:04d}", "type": "message", "at": at, "console": "whatsapp", "account": "shop",
             "conversation": {"key": "chat-1", "customer": "+86 139 0000 1111"}, "message_id": f"row-{n}",
             "direction": "out", "text": text}
    ack = sio.emit("events", {"v": 1, "events": [event]}, namespace="/agent", callback=True)
    assert ack["ok"] is True and ack["acked"] == [event["id"]], ack
    sio.disconnect(namespace="/agent")
    return ack


def bearer(org, role: str) -> dict:
    return {"Authorization": f"Bearer {org.tokens[role]}"}


def only_alert(app) -> dict:
    with app.app_context():
        alert = db.session.scalars(select(Alert)).one()
        return {"id": alert.id, "event_id": alert.behaviour_event_id, "type": alert.type, "summary": alert.summary,
                "severity": alert.severity,
                "recipients": set(db.session.scalars(select(AlertReceipt.user_id)
                                                     .where(AlertReceipt.alert_id == alert.id)))}


# ---- who hears -----------------------------------------------------------------------------------------

def test_a_server_rule_hit_alerts_the_agents_supervisor_and_the_managers_only(app, orgs):
    own, other = orgs
    outsider = support_supervisor(app, own)
    listening = {name: panel_socket(app, user) for name, user in {
        "supervisor": own.users["supervisor"], "owner": own.users["owner"], "agent": own.users["agent"],
        "support supervisor": outsider, "other owner": other.users["owner"],
        "other supervisor": other.users["supervisor"]}.items()}

    send_outgoing(app, own)

    alert = only_alert(app)
    assert alert["type"] == "server_rule_hit" and alert["severity"] == "warning"
    assert alert["recipients"] == {own.users[r].id for r in ("owner", "admin", "supervisor")}
    assert "保证收益" not in alert["summary"] and "compliance" in alert["summary"], "rules named, no chat text"
    with app.app_context():
        event = db.session.get(BehaviourEvent, alert["event_id"])
        assert event.type == "server_rule_hit" and event.agent_id == own.agent.id

    heard = {name: sio.get_received("/panel") for name, sio in listening.items()}
    for name in ("supervisor", "owner"):
        pushed = {p["name"]: p["args"][0] for p in heard[name]}
        assert pushed["alert"]["id"] == alert["id"] and pushed["alert"]["type"] == "server_rule_hit"
        assert pushed["alert"]["url"] == f"/reports/{alert['event_id']}"
        assert pushed["alert"]["agent"]["name"] == "agent"
        assert pushed["alert"]["conversation_id"] is not None
        assert pushed["alert_count"] == {"unread": 1}
    for name in ("agent", "support supervisor", "other owner", "other supervisor"):
        assert [p["name"] for p in heard[name]] == [], f"{name} must not hear of it"


def test_device_signals_alert_too_outside_any_request(app, orgs):
    """A second browser for the agent (new_device) is on by default; raised in a plain app context."""
    own, _other = orgs
    sio = panel_socket(app, own.users["supervisor"])
    with app.app_context():
        enrol_device(own.pending_code, label="home pc")
        db.session.commit()
    alert = only_alert(app)
    assert alert["type"] == "new_device" and own.users["supervisor"].id in alert["recipients"]
    assert "home pc" in alert["summary"]
    assert [a["type"] for a in received(sio, "alert")] == ["new_device"]


def test_rules_decide_what_alerts(app, orgs):
    own, _other = orgs
    client = app.test_client()
    # A manager turns the server's check off and sends warned sends to one supervisor only, in red.
    answer = client.put("/api/v1/alert-rules", headers=bearer(own, "owner"), json={"rules": [
        {"type": "server_rule_hit", "enabled": False},
        {"type": "send_warned", "enabled": True, "severity": "critical", "managers": False, "supervisors": False,
         "user_ids": [own.users["supervisor"].id]},
    ]})
    assert answer.status_code == 200, answer.get_json()
    rules = {r["type"]: r for r in answer.get_json()["rules"]}
    assert rules["server_rule_hit"]["enabled"] is False and rules["send_warned"]["severity"] == "critical"
    assert rules["message_deleted"]["enabled"] is True, "untouched types keep the defaults"
    with app.app_context():
        entry = db.session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == "alerts.rules_save")).one()
        assert set(entry.details["rules"]) == {"server_rule_hit", "send_warned"}

    send_outgoing(app, own)
    with app.app_context():
        assert db.session.scalars(select(Alert)).all() == [], "a disabled type makes no alert"
        assert db.session.scalars(select(BehaviourEvent).where(BehaviourEvent.type == "server_rule_hit")).one()

    sio = socketio.test_client(app, namespace="/agent", auth={"token": device_token(app, own.device_id)})
    at = int(utcnow().timestamp() * 1000)
    sio.emit("events", {"v": 1, "events": [{"id": "warned-0001", "type": "behaviour", "at": at, "console": "whatsapp",
                                            "kind": "send_warned", "text": "secret customer words",
                                            "rule": "abuse", "reason": "he asked"}]},
             namespace="/agent", callback=True)
    alert = only_alert(app)
    assert alert["type"] == "send_warned" and alert["severity"] == "critical"
    assert alert["recipients"] == {own.users["supervisor"].id}
    assert "secret customer words" not in alert["summary"] and "abuse" in alert["summary"]


@pytest.mark.parametrize("rule,code", [
    ({"type": "screenshot"}, "invalid_alert_rule"),
    ({"type": "send_warned", "severity": "loud"}, "invalid_alert_rule"),
    ({"type": "send_warned", "enabled": "yes"}, "invalid_alert_rule"),
    ({"type": "send_warned", "user_ids": ["1"]}, "invalid_alert_rule"),
    ("send_warned", "invalid_alert_rule"),
])
def test_bad_rules_are_refused(app, orgs, rule, code):
    own, _other = orgs
    answer = app.test_client().put("/api/v1/alert-rules", headers=bearer(own, "owner"), json={"rules": [rule]})
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == code


def test_rules_name_only_staff_of_the_tenant(app, orgs):
    own, other = orgs
    client = app.test_client()
    for user_id in (own.agent.id, other.users["supervisor"].id):
        answer = client.put("/api/v1/alert-rules", headers=bearer(own, "owner"),
                            json={"rules": [{"type": "send_warned", "user_ids": [user_id]}]})
        assert answer.status_code == 400


# ---- reading and counting ------------------------------------------------------------------------------

def test_unread_counter_and_marking_read(app, orgs):
    own, other = orgs
    send_outgoing(app, own, n=1)
    send_outgoing(app, own, "我们私下交易吧", n=2)
    client = app.test_client()
    listing = client.get("/api/v1/alerts", headers=bearer(own, "supervisor")).get_json()
    assert listing["unread"] == 2 and [a["read"] for a in listing["alerts"]] == [False, False]
    newest, oldest = listing["alerts"]
    assert newest["id"] > oldest["id"] and newest["label"] and newest["summary"]

    # The top bar renders the count for the first paint.
    panel = app.test_client()
    sign_in(panel, own.users["supervisor"])
    assert 'data-unread="2"' in panel.get("/").get_data(as_text=True)

    sio = panel_socket(app, own.users["supervisor"])
    answer = client.post("/api/v1/alerts/read", headers=bearer(own, "supervisor"), json={"ids": [oldest["id"]]})
    assert answer.status_code == 200 and answer.get_json() == {"unread": 1}
    assert received(sio, "alert_count") == [{"unread": 1}], "the user's other tabs follow"
    only_unread = client.get("/api/v1/alerts?unread=1", headers=bearer(own, "supervisor")).get_json()
    assert [a["id"] for a in only_unread["alerts"]] == [newest["id"]]
    # Reading is per user: the owner still has both unread.
    assert client.get("/api/v1/alerts", headers=bearer(own, "owner")).get_json()["unread"] == 2

    # Someone else's alert, or an unknown id, is "not found"; a bad body is a 400.
    assert client.post("/api/v1/alerts/read", headers=bearer(other, "owner"),
                       json={"ids": [newest["id"]]}).status_code == 404
    assert client.post("/api/v1/alerts/read", headers=bearer(own, "supervisor"),
                       json={"ids": [999999]}).status_code == 404
    assert client.post("/api/v1/alerts/read", headers=bearer(own, "supervisor"),
                       json={"ids": ["x"]}).status_code == 400
    assert client.post("/api/v1/alerts/read", headers=bearer(own, "supervisor"), json={}).status_code == 400

    # The panel page lists them and its form marks all read.
    page = panel.get("/alerts").get_data(as_text=True)
    assert page.count('class="unread"') == 1 and "保证收益" not in page
    csrf = sign_in(panel, own.users["supervisor"])
    assert panel.post("/alerts/read", data={"csrf_token": csrf}).status_code == 302
    assert client.get("/api/v1/alerts", headers=bearer(own, "supervisor")).get_json()["unread"] == 0
    assert 'data-unread="0"' in panel.get("/alerts").get_data(as_text=True)


def test_a_supervisor_moved_away_no_longer_sees_the_departments_alerts(app, orgs):
    own, _other = orgs
    send_outgoing(app, own)
    client = app.test_client()
    assert client.get("/api/v1/alerts", headers=bearer(own, "supervisor")).get_json()["unread"] == 1
    with app.app_context():
        supervisor = db.session.get(User, own.users["supervisor"].id)
        supervisor.departments = [db.session.get(Department, own.support_id)]
        db.session.commit()
    listing = client.get("/api/v1/alerts", headers=bearer(own, "supervisor")).get_json()
    assert listing == {"alerts": [], "unread": 0, "next_before_id": None}


def test_agents_get_no_alerts(app, orgs):
    own, _other = orgs
    assert app.test_client().get("/api/v1/alerts", headers=bearer(own, "agent")).status_code == 403
    panel = app.test_client()
    sign_in(panel, own.users["agent"])
    assert 'id="alert-badge"' not in panel.get("/").get_data(as_text=True)


# ---- webhooks ------------------------------------------------------------------------------------------

def create_webhook(app, org, url: str, **fields) -> tuple[int, str]:
    answer = app.test_client().post("/api/v1/webhooks", headers=bearer(org, "owner"), json={"url": url, **fields})
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    return body["webhook"]["id"], body["secret"]


def run_worker(app, now, **kwargs) -> webhooks.PassSummary:
    with app.app_context():
        return webhooks.deliver_due(now, **kwargs)


def test_a_delivery_carries_a_valid_signature_over_the_exact_body(app, orgs, allow_private, receiver):
    own, _other = orgs
    endpoint_id, secret = create_webhook(app, own, receiver.url, description="to WeCom via our relay")
    assert secret.startswith("whsec_")
    send_outgoing(app, own)
    alert = only_alert(app)

    summary = run_worker(app, utcnow())
    assert (summary.delivered, summary.retrying, summary.failed) == (1, 0, 0)
    [(headers, body)] = receiver.received
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-veil-signature"], expected)
    payload = json.loads(body)
    assert payload["id"] == alert["id"] and payload["type"] == "server_rule_hit"
    assert payload["severity"] == "warning" and payload["tenant"] == {"id": own.tenant_id, "name": "Acme"}
    assert payload["agent"] == {"id": own.agent.id, "name": "agent"} and payload["summary"] == alert["summary"]
    assert payload["occurred_at"] and payload["links"]["report"].endswith(f"/reports/{alert['event_id']}")
    assert "保证收益" not in body.decode()
    assert headers["x-veil-delivery"] == payload["delivery"]
    assert int(headers["x-veil-timestamp"]) == int(datetime.fromisoformat(payload["sent_at"]).timestamp())
    with app.app_context():
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
        assert delivery.endpoint_id == endpoint_id and str(delivery.id) == headers["x-veil-delivery"]
    # Nothing is sent twice.
    assert run_worker(app, utcnow() + timedelta(days=1)).delivered == 0 and len(receiver.received) == 1
    # The check docs/protocol.md gives receivers accepts it, and refuses a body changed by one byte.
    verify = documented_verify()
    signed = {"X-Veil-Signature": headers["x-veil-signature"]}
    assert verify(secret, body, signed)["id"] == alert["id"]
    with pytest.raises(ValueError, match="signature"):
        verify(secret, body.replace(b'"warning"', b'"critical"'), signed)


def documented_verify():
    """The receiver's check, as docs/protocol.md ("Checking a delivery") prints it."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    code = re.search(r"\*\*Checking a delivery\*\*.*?```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102  (our own documentation)
    return namespace["verify"]


def test_a_failing_endpoint_is_retried_with_growing_pauses_then_given_up(app, orgs, allow_private, receiver):
    own, _other = orgs
    receiver.state["status"] = 500
    create_webhook(app, own, receiver.url)
    send_outgoing(app, own)
    now = utcnow()
    rng = random.Random(5)
    pauses = []
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        early = run_worker(app, now - timedelta(seconds=1), rng=rng)
        assert early.delivered + early.retrying + early.failed == 0, "nothing is sent before it is due"
        summary = run_worker(app, now, rng=rng)
        with app.app_context():
            delivery = db.session.scalars(select(WebhookDelivery)).one()
            assert delivery.attempts == attempt and delivery.last_status_code == 500
            assert delivery.last_error == "HTTP 500"
            if attempt < webhooks.MAX_ATTEMPTS:
                assert summary.retrying == 1 and delivery.status == "pending"
                pauses.append((delivery.next_attempt_at - now).total_seconds())
                now = delivery.next_attempt_at
            else:
                assert summary.failed == 1 and delivery.status == "failed"
    assert len(receiver.received) == webhooks.MAX_ATTEMPTS
    assert pauses == sorted(pauses) and len(set(pauses)) == len(pauses), "each pause is longer than the last"
    for pause, base in zip(pauses, webhooks.BACKOFF_SECONDS, strict=False):
        assert base * (1 - webhooks.JITTER) <= pause <= base * (1 + webhooks.JITTER)
    assert run_worker(app, now + timedelta(days=30)).failed == 0 and len(receiver.received) == webhooks.MAX_ATTEMPTS


def test_an_endpoint_that_recovers_gets_the_delivery(app, orgs, allow_private, receiver):
    own, _other = orgs
    receiver.state["status"] = 503
    create_webhook(app, own, receiver.url)
    send_outgoing(app, own)
    now = utcnow()
    assert run_worker(app, now).retrying == 1
    receiver.state["status"] = 204
    with app.app_context():
        due_at = db.session.scalars(select(WebhookDelivery)).one().next_attempt_at
    assert run_worker(app, due_at).delivered == 1
    with app.app_context():
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert (delivery.status, delivery.attempts, delivery.delivered_at) == ("delivered", 2, due_at)


def test_a_claimed_delivery_is_not_sent_by_a_second_worker(app, orgs, allow_private):
    own, _other = orgs
    create_webhook(app, own, "http://127.0.0.1:9/hook")
    send_outgoing(app, own)
    now = utcnow()
    sent_by_second: list = []
    second: dict = {}

    def second_worker():
        second["summary"] = run_worker(app, now, send=lambda *a, **k: sent_by_second.append(a) or 200)

    def first_sender(url, body, headers, *, allow_private):
        # While the first worker is sending, a second one (another process) looks for due deliveries.
        thread = threading.Thread(target=second_worker)
        thread.start()
        thread.join()
        return 200

    first = run_worker(app, now, send=first_sender)
    assert first.delivered == 1
    assert sent_by_second == [] and second["summary"].delivered == 0

    # Two workers that both listed the delivery: only one claim succeeds.
    with app.app_context():
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        delivery.status, delivery.next_attempt_at = "pending", now
        db.session.commit()
        assert webhooks.claim(delivery.id, now) is True
        db.session.commit()
        assert webhooks.claim(delivery.id, now) is False


def test_the_cli_runs_one_pass(app, orgs, allow_private, receiver, monkeypatch):
    own, _other = orgs
    create_webhook(app, own, receiver.url)
    send_outgoing(app, own)
    monkeypatch.setattr(cli, "make_app", lambda: app)
    result = CliRunner().invoke(cli.main, ["webhooks", "deliver"])
    assert result.exit_code == 0, result.output
    assert "delivered 1," in result.output and len(receiver.received) == 1


def test_endpoints_filter_by_type_and_chat_formats_carry_text(app, orgs, allow_private, receiver):
    own, _other = orgs
    create_webhook(app, own, receiver.url, event_types=["new_device"])
    create_webhook(app, own, receiver.url + "?bot=wecom", format="wecom", locale="zh")
    send_outgoing(app, own)
    with app.app_context():
        deliveries = db.session.scalars(select(WebhookDelivery)).all()
        assert [d.endpoint.format for d in deliveries] == ["wecom"], "the first endpoint wants new_device only"
    run_worker(app, utcnow())
    [(_headers, body)] = receiver.received
    payload = json.loads(body)
    assert payload["msgtype"] == "text" and payload["text"]["content"].startswith("[Veil] ")
    assert "保证收益" not in payload["text"]["content"]
    # Deleting an endpoint takes its deliveries with it.
    with app.app_context():
        wecom_id = db.session.scalars(select(WebhookDelivery.endpoint_id)).one()
    assert app.test_client().delete(f"/api/v1/webhooks/{wecom_id}", headers=bearer(own, "owner")).status_code == 200
    with app.app_context():
        assert db.session.scalars(select(WebhookDelivery)).all() == []
        assert len(db.session.scalars(select(WebhookEndpoint)).all()) == 1


@pytest.mark.parametrize("url", [
    "ftp://93.184.215.14/hook",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "http://10.0.0.5/hook",
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://user:pw@93.184.215.14/hook",
    "http://93.184.215.14:99999/hook",
    "",
    "https://" + "a" * 2000 + ".example/",
])
def test_addresses_that_are_refused(app, orgs, url):
    own, _other = orgs
    answer = app.test_client().post("/api/v1/webhooks", headers=bearer(own, "owner"), json={"url": url})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] in ("invalid_url", "too_long")


def test_private_addresses_need_the_flag(app, orgs, monkeypatch):
    own, _other = orgs
    client = app.test_client()
    assert client.post("/api/v1/webhooks", headers=bearer(own, "owner"),
                       json={"url": "https://93.184.215.14/hook"}).status_code == 201, "a public address"
    assert client.post("/api/v1/webhooks", headers=bearer(own, "owner"),
                       json={"url": "http://127.0.0.1:8080/hook"}).status_code == 400
    monkeypatch.setitem(app.config, "VEIL_WEBHOOK_ALLOW_PRIVATE", True)
    assert client.post("/api/v1/webhooks", headers=bearer(own, "owner"),
                       json={"url": "http://127.0.0.1:8080/hook"}).status_code == 201
    assert client.post("/api/v1/webhooks", headers=bearer(own, "owner"),
                       json={"url": "ftp://127.0.0.1/hook"}).status_code == 400, "the flag allows no other scheme"
    # Without the flag, sending refuses a private address too (the check is made again at each send).
    with pytest.raises(webhooks.DeliveryError, match="private"):
        webhooks.post("http://127.0.0.1:9/hook", b"{}", {}, allow_private=False)


def test_webhook_settings_in_the_panel(app, orgs, allow_private, receiver):
    own, other = orgs
    panel = app.test_client()
    csrf = sign_in(panel, own.users["admin"])
    page = panel.get("/settings/alerts").get_data(as_text=True)
    assert 'name="enabled__server_rule_hit" aria-label' in page and "checked" in page

    created = panel.post("/settings/alerts/webhooks", data={"csrf_token": csrf, "url": receiver.url,
                                                            "event_types": ["server_rule_hit"]})
    assert created.status_code == 200
    with app.app_context():
        endpoint = db.session.scalars(select(WebhookEndpoint)).one()
        endpoint_id, secret = endpoint.id, webhooks.endpoint_secret(endpoint)
        assert endpoint.event_types == ["server_rule_hit"] and endpoint.created_by_id == own.users["admin"].id
    assert secret in created.get_data(as_text=True), "the secret is shown once"
    assert secret not in panel.get("/settings/alerts").get_data(as_text=True), "and never again"

    refused = panel.post("/settings/alerts/webhooks", data={"csrf_token": csrf, "url": "ftp://x.example/"})
    assert refused.status_code == 400 and "http" in refused.get_data(as_text=True)

    tested = panel.post(f"/settings/alerts/webhooks/{endpoint_id}/test", data={"csrf_token": csrf},
                        follow_redirects=True)
    assert tested.status_code == 200 and "HTTP 200" in tested.get_data(as_text=True)
    [(headers, body)] = receiver.received
    assert json.loads(body)["test"] is True
    assert headers["x-veil-signature"] == webhooks.sign(secret, body)

    assert panel.post(f"/settings/alerts/webhooks/{endpoint_id}/enabled", data={"csrf_token": csrf}).status_code == 302
    send_outgoing(app, own)
    with app.app_context():
        assert db.session.scalars(select(WebhookDelivery)).all() == [], "a disabled endpoint gets nothing"
    client = app.test_client()
    assert client.delete(f"/api/v1/webhooks/{endpoint_id}", headers=bearer(other, "owner")).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{endpoint_id}", headers=bearer(own, "owner")).status_code == 200
    listing = client.get("/api/v1/webhooks", headers=bearer(own, "owner")).get_json()
    assert listing == {"webhooks": []}
    with app.app_context():
        actions = set(db.session.scalars(select(AuditLogEntry.action).where(AuditLogEntry.action.like("webhook.%"))))
        assert actions == {"webhook.create", "webhook.test", "webhook.disable", "webhook.delete"}


# ---- sealed secrets -----------------------------------------------------------------------------------

def stored_database_text(app) -> bytes:
    """Everything a database thief gets of the webhook table: the SQLite files' bytes (with the WAL), or
    each PostgreSQL row as text."""
    with app.app_context():
        if app.config["DB_KIND"] == "postgres":
            rows = db.session.execute(text("SELECT webhook_endpoint::text FROM webhook_endpoint")).scalars().all()
            return "\n".join(rows).encode()
        path = Path(db.engine.url.database)
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def test_a_webhook_secret_is_stored_sealed_and_still_signs(app, orgs, allow_private, receiver):
    own, _other = orgs
    endpoint_id, secret = create_webhook(app, own, receiver.url)
    raw = stored_database_text(app)
    assert receiver.url.encode() in raw, "the search does see the table"
    assert secret.encode() not in raw and secret.removeprefix("whsec_").encode() not in raw
    with app.app_context():
        stored = db.session.get(WebhookEndpoint, endpoint_id).sealed_secret
        assert stored.startswith("v1.") and secret not in stored
    send_outgoing(app, own)
    assert run_worker(app, utcnow()).delivered == 1
    [(headers, body)] = receiver.received
    assert headers["x-veil-signature"] == webhooks.sign(secret, body)


@pytest.mark.parametrize("tamper", ["moved", "url_changed"])
def test_a_sealed_secret_out_of_its_row_does_not_open(app, orgs, allow_private, receiver, tamper):
    own, _other = orgs
    victim_id, _secret = create_webhook(app, own, receiver.url + "?victim")
    attacker_id, _secret = create_webhook(app, own, receiver.url)
    with app.app_context():
        if tamper == "moved":  # the victim's sealed secret copied onto the attacker's row
            db.session.execute(text("UPDATE webhook_endpoint SET sealed_secret = "
                                    "(SELECT sealed_secret FROM webhook_endpoint WHERE id = :victim) WHERE id = :id"),
                               {"victim": victim_id, "id": attacker_id})
        else:  # the attacker's own endpoint pointed at another address, to collect its signatures there
            db.session.execute(text("UPDATE webhook_endpoint SET url = :url WHERE id = :id"),
                               {"url": receiver.url + "?elsewhere", "id": attacker_id})
        db.session.execute(text("DELETE FROM webhook_endpoint WHERE id = :victim"), {"victim": victim_id})
        db.session.commit()
        with pytest.raises(sealed.SealError):
            webhooks.endpoint_secret(db.session.get(WebhookEndpoint, attacker_id))
    send_outgoing(app, own)
    summary = run_worker(app, utcnow())
    assert (summary.delivered, summary.retrying, summary.failed) == (0, 0, 1), "failed for good: retrying cannot help"
    assert receiver.received == [], "nothing is signed with a secret that does not belong to the row"
    with app.app_context():
        delivery = db.session.scalars(select(WebhookDelivery)).one()
        assert delivery.status == "failed" and "does not open" in delivery.last_error
    panel = app.test_client()
    csrf = sign_in(panel, own.users["owner"])
    tested = panel.post(f"/settings/alerts/webhooks/{attacker_id}/test", data={"csrf_token": csrf},
                        follow_redirects=True)
    assert tested.status_code == 200 and "does not open" in tested.get_data(as_text=True)
    assert receiver.received == []


def test_rules_form_in_the_panel(app, orgs):
    own, _other = orgs
    panel = app.test_client()
    csrf = sign_in(panel, own.users["owner"])
    answer = panel.post("/settings/alerts/rules", data={
        "csrf_token": csrf, "present__server_rule_hit": "1", "severity__server_rule_hit": "critical",
        "enabled__server_rule_hit": "on", "managers__server_rule_hit": "on",
        "users__server_rule_hit": [str(own.users["supervisor"].id)]})
    assert answer.status_code == 302
    with app.app_context():
        rule = alerts.rules_for_tenant(own.tenant_id)["server_rule_hit"]
        assert (rule.enabled, rule.severity, rule.supervisors, rule.managers, rule.webhooks) == (
            True, "critical", False, True, False)
        assert rule.user_ids == (own.users["supervisor"].id,)
        assert alerts.rules_for_tenant(own.tenant_id)["new_device"].enabled is True, "not in the form: unchanged"
