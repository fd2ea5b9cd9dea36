"""Every route and Socket.IO event × every role (and no one) × own and other tenant.

The cases below are written independently of backend/security/policy.py: the test reads the app's own
url_map and Socket.IO handler table, so a new route or event without a case here fails the build.
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from datetime import timedelta

import pytest

from backend.extensions import db, socketio
from backend.models import Alert, AlertReceipt, BehaviourEvent, GrantSetting, Intervention, User, WebhookEndpoint
from backend.models.base import utcnow
from backend.models.retention import LegalHold
from tests.conftest import device_token, sign_in
from tests.grants_helper import issue_grant, staff_read

ROLES = ("owner", "admin", "supervisor", "agent")
ALL = set(ROLES)
STAFF = {"owner", "admin", "supervisor"}
MANAGERS = {"owner", "admin"}
PUBLIC = "public"


def _new_user_body(org, role):
    return {"email": f"new-{role}@{org.name.lower()}.test", "role": "agent"}


# endpoint -> (method, path(org), json body(org, role) or form, who may, expected success status)
# `org` is the tenant whose objects the path names: the actor's own, or the other tenant.
ROUTES = {
    "static": ("GET", lambda o: "/static/panel.css", None, PUBLIC, 200),
    "health.healthz": ("GET", lambda o: "/healthz", None, PUBLIC, 200),
    "panel.login": ("GET", lambda o: "/login", None, PUBLIC, 200),
    "panel.login#post": ("POST", lambda o: "/login", {"form": {"email": "x@y.z", "password": "wrong"}}, PUBLIC, 401),
    "panel.set_language": ("GET", lambda o: "/lang/zh?next=/", None, PUBLIC, 302),
    "panel.device_removed": ("GET", lambda o: f"/devices/removed/{o.removal_token}", None, PUBLIC, 200),
    "panel.logout": ("POST", lambda o: "/logout", {"form": {}}, ALL, 302),
    "panel.home": ("GET", lambda o: "/", None, ALL, 200),
    "panel.statistics": ("GET", lambda o: "/statistics", None, ALL, 200),
    "api.statistics_overview": ("GET", lambda o: "/api/v1/statistics/overview", None, ALL, 200),
    "api.statistics": ("GET", lambda o: "/api/v1/statistics", None, ALL, 200),
    "api.statistics_csv": ("GET", lambda o: "/api/v1/statistics.csv", None, ALL, 200),
    "panel.records": ("GET", lambda o: "/records", None, STAFF, 200),
    "panel.records_conversation": ("GET", lambda o: f"/records/conversations/{o.conversation_id}", None, STAFF, 200),
    "panel.records_export": ("GET", lambda o: f"/records/export?format=csv&agent_id={o.agent.id}", None, STAFF, 200),
    "panel.live": ("GET", lambda o: "/live", None, STAFF, 200),
    "panel.reports": ("GET", lambda o: "/reports", None, STAFF, 200),
    "panel.report_detail": ("GET", lambda o: f"/reports/{o.behaviour_event_id}", None, STAFF, 200),
    "panel.report_review": ("POST", lambda o: f"/reports/{o.behaviour_event_id}/review",
                            {"form": {"status": "confirmed"}}, STAFF, 302),
    "panel.reports_summary": ("GET", lambda o: "/reports/summary", None, STAFF, 200),
    "panel.reports_summary_csv": ("GET", lambda o: "/reports/summary.csv", None, STAFF, 200),
    "panel.rules": ("GET", lambda o: "/rules", None, MANAGERS, 200),
    "panel.keys": ("GET", lambda o: "/keys", None, MANAGERS, 200),
    "panel.settings": ("GET", lambda o: "/settings", None, MANAGERS, 200),
    "panel.department_create": ("POST", lambda o: "/settings/departments", {"form": {"name": "Night"}}, MANAGERS, 302),
    "panel.users": ("GET", lambda o: "/users", None, MANAGERS, 200),
    "panel.user_create": ("GET", lambda o: "/users/new", None, MANAGERS, 200),
    "panel.user_create#post": ("POST", lambda o: "/users/new",
                               {"form": {"email": "fresh@example.test", "role": "agent"}}, MANAGERS, 302),
    "panel.user_edit": ("GET", lambda o: f"/users/{o.agent.id}", None, MANAGERS, 200),
    "panel.user_edit#post": ("POST", lambda o: f"/users/{o.agent.id}",
                             {"form": {"display_name": "Renamed", "role": "agent", "is_active": "on"}}, MANAGERS, 302),
    "api.me": ("GET", lambda o: "/api/v1/me", None, ALL, 200),
    "api.list_users": ("GET", lambda o: "/api/v1/users", None, MANAGERS, 200),
    "api.create_user": ("POST", lambda o: "/api/v1/users", {"json": _new_user_body}, MANAGERS, 201),
    "api.get_user": ("GET", lambda o: f"/api/v1/users/{o.agent.id}", None, MANAGERS, 200),
    "api.update_user": ("PATCH", lambda o: f"/api/v1/users/{o.agent.id}", {"json": {"display_name": "R"}},
                        MANAGERS, 200),
    "api.list_departments": ("GET", lambda o: "/api/v1/departments", None, STAFF, 200),
    "api.create_department": ("POST", lambda o: "/api/v1/departments", {"json": {"name": "Night"}}, MANAGERS, 201),
    "api.create_enrolment_code": ("POST", lambda o: "/api/v1/devices/enrolment-codes",
                                  {"json": lambda o, r: {"agent_id": o.agent.id}}, ALL, 201),
    "api.enrol_device": ("POST", lambda o: "/api/v1/devices/enrol",
                         {"json": lambda o, r: {"code": o.pending_code}}, PUBLIC, 201),
    "api.list_devices": ("GET", lambda o: "/api/v1/devices", None, ALL, 200),
    "api.get_device": ("GET", lambda o: f"/api/v1/devices/{o.device_id}", None, ALL, 200),
    "api.revoke_device": ("POST", lambda o: f"/api/v1/devices/{o.device_id}/revoke", None, ALL, 200),
    "api.list_conversations": ("GET", lambda o: "/api/v1/conversations", None, STAFF, 200),
    "api.get_conversation": ("GET", lambda o: f"/api/v1/conversations/{o.conversation_id}", None, STAFF, 200),
    "api.list_messages": ("GET", lambda o: f"/api/v1/conversations/{o.conversation_id}/messages", None,
                          STAFF, 200),
    "api.live_agents": ("GET", lambda o: "/api/v1/live/agents", None, STAFF, 200),
    "api.live_agent_conversations": ("GET", lambda o: f"/api/v1/live/agents/{o.agent.id}/conversations", None,
                                     STAFF, 200),
    "api.live_conversation": ("GET", lambda o: f"/api/v1/live/conversations/{o.conversation_id}", None, STAFF, 200),
    "api.create_intervention": ("POST", lambda o: f"/api/v1/live/conversations/{o.conversation_id}/interventions",
                                {"json": {"text": "matrix reply"}}, STAFF, 201),
    "api.search_messages": ("GET", lambda o: f"/api/v1/messages/search?q=hello&agent_id={o.agent.id}", None,
                            STAFF, 200),
    "api.search_conversations": ("GET", lambda o: f"/api/v1/conversations/search?agent_id={o.agent.id}", None,
                                 STAFF, 200),
    "api.conversation_records": ("GET", lambda o: f"/api/v1/conversations/{o.conversation_id}/records", None,
                                 STAFF, 200),
    "api.export_records": ("GET", lambda o: f"/api/v1/records/export?format=jsonl&agent_id={o.agent.id}", None,
                           STAFF, 200),
    "api.list_behaviour_events": ("GET", lambda o: "/api/v1/behaviour-events", None, STAFF, 200),
    "api.get_behaviour_event": ("GET", lambda o: f"/api/v1/behaviour-events/{o.behaviour_event_id}", None,
                                STAFF, 200),
    "api.review_behaviour_event": ("POST", lambda o: f"/api/v1/behaviour-events/{o.behaviour_event_id}/review",
                                   {"json": {"status": "dismissed"}}, STAFF, 200),
    "api.behaviour_summary": ("GET", lambda o: "/api/v1/behaviour-events/summary", None, STAFF, 200),
    "api.get_rules": ("GET", lambda o: "/api/v1/rules", None, ALL, 200),
    "api.get_rules_source": ("GET", lambda o: "/api/v1/rules/source", None, MANAGERS, 200),
    "api.save_rules": ("PUT", lambda o: "/api/v1/rules",
                       {"json": {"categories": {"private_deal": ["私下交易"]}, "note": "matrix"}}, MANAGERS, 200),
    "api.rules_history": ("GET", lambda o: "/api/v1/rules/history", None, MANAGERS, 200),
    "api.export_rules": ("GET", lambda o: "/api/v1/rules/export", None, MANAGERS, 200),
    "api.import_rules": ("POST", lambda o: "/api/v1/rules/import", {"file": "rules.zip"}, MANAGERS, 201),
    "panel.rules_save": ("POST", lambda o: "/rules", {"form": {"words__abuse": "idiot", "action__abuse": "warn",
                                                               "allow": "", "note": "matrix"}}, MANAGERS, 302),
    "panel.rules_import": ("POST", lambda o: "/rules/import", {"form": {}}, MANAGERS, 302),
    "panel.rules_consoles_save": ("POST", lambda o: "/rules/consoles", {"form": {}}, MANAGERS, 302),
    "panel.alerts_page": ("GET", lambda o: "/alerts", None, STAFF, 200),
    "panel.alerts_read": ("POST", lambda o: "/alerts/read", {"form": {}}, STAFF, 302),
    "panel.settings_alerts": ("GET", lambda o: "/settings/alerts", None, MANAGERS, 200),
    "panel.alert_rules_save": ("POST", lambda o: "/settings/alerts/rules",
                               {"form": {"present__new_device": "1", "enabled__new_device": "on",
                                         "severity__new_device": "critical"}}, MANAGERS, 302),
    "panel.webhook_create": ("POST", lambda o: "/settings/alerts/webhooks",
                             {"form": {"url": "https://93.184.215.14/hook"}}, MANAGERS, 200),
    "panel.webhook_toggle": ("POST", lambda o: f"/settings/alerts/webhooks/{o.webhook_id}/enabled", {"form": {}},
                             MANAGERS, 302),
    "panel.webhook_delete": ("POST", lambda o: f"/settings/alerts/webhooks/{o.webhook_id}/delete", {"form": {}},
                             MANAGERS, 302),
    "panel.webhook_test": ("POST", lambda o: f"/settings/alerts/webhooks/{o.webhook_id}/test", {"form": {}},
                           MANAGERS, 302),
    "api.list_alerts": ("GET", lambda o: "/api/v1/alerts", None, STAFF, 200),
    "api.mark_alerts_read": ("POST", lambda o: "/api/v1/alerts/read", {"json": lambda o, r: {"ids": [o.alert_id]}},
                             STAFF, 200),
    "api.get_alert_rules": ("GET", lambda o: "/api/v1/alert-rules", None, MANAGERS, 200),
    "api.save_alert_rules": ("PUT", lambda o: "/api/v1/alert-rules",
                             {"json": {"rules": [{"type": "new_device", "severity": "critical"}]}}, MANAGERS, 200),
    "api.list_webhooks": ("GET", lambda o: "/api/v1/webhooks", None, MANAGERS, 200),
    "api.create_webhook": ("POST", lambda o: "/api/v1/webhooks", {"json": {"url": "https://93.184.215.14/hook"}},
                           MANAGERS, 201),
    "api.delete_webhook": ("DELETE", lambda o: f"/api/v1/webhooks/{o.webhook_id}", None, MANAGERS, 200),
    "panel.audit": ("GET", lambda o: "/audit?action=auth.", None, MANAGERS, 200),
    "panel.audit_verify": ("POST", lambda o: "/audit/verify", {"form": {}}, MANAGERS, 200),
    "api.list_audit": ("GET", lambda o: "/api/v1/audit?limit=5", None, MANAGERS, 200),
    # customers' data requests: an empty value is refused (400) before the key-holder check (owner, or an
    # admin the owner allows) and the password; tests/test_customer_data.py covers the rest
    "panel.customer_data_page": ("GET", lambda o: "/customer-data", None, MANAGERS, 200),
    "panel.customer_data_find": ("POST", lambda o: "/customer-data", {"form": {"value": ""}}, MANAGERS, 400),
    "panel.customer_data_download": ("POST", lambda o: "/customer-data/export", {"form": {"value": ""}},
                                     MANAGERS, 400),
    "panel.customer_data_remove": ("POST", lambda o: "/customer-data/erase",
                                   {"form": {"value": "", "confirm": "ERASE"}}, MANAGERS, 400),
    "api.customer_data_lookup": ("POST", lambda o: "/api/v1/customer-data/lookup", {"json": {"value": ""}},
                                 MANAGERS, 400),
    "api.customer_data_export": ("POST", lambda o: "/api/v1/customer-data/export",
                                 {"json": {"value": "", "password": "x"}}, MANAGERS, 400),
    "api.customer_data_erase": ("POST", lambda o: "/api/v1/customer-data/erase",
                                {"json": {"value": "", "password": "x", "confirm": "ERASE"}}, MANAGERS, 400),
    "panel.settings_retention": ("GET", lambda o: "/settings/retention", None, MANAGERS, 200),
    "panel.retention_save": ("POST", lambda o: "/settings/retention",
                             {"form": {"messages_days": "30", "behaviour_days": ""}}, MANAGERS, 302),
    # Neither an agent nor a conversation named: the page comes back with the error (400).
    "panel.hold_place": ("POST", lambda o: "/settings/retention/holds", {"form": {"reason": "matrix"}}, MANAGERS, 400),
    "panel.hold_release": ("POST", lambda o: f"/settings/retention/holds/{o.hold_id}/release", {"form": {}},
                           MANAGERS, 302),
    "api.get_retention": ("GET", lambda o: "/api/v1/retention", None, MANAGERS, 200),
    "api.save_retention": ("PUT", lambda o: "/api/v1/retention", {"json": {"messages_days": 30}}, MANAGERS, 200),
    "api.place_hold": ("POST", lambda o: "/api/v1/retention/holds",
                       {"json": lambda o, r: {"agent_id": o.agent.id, "reason": "matrix"}}, MANAGERS, 201),
    "api.release_hold": ("POST", lambda o: f"/api/v1/retention/holds/{o.hold_id}/release", None, MANAGERS, 200),
    # grants: issuing and revoking also need the owner (or an allowed admin), refused in the service (403)
    "panel.keys_issue": ("POST", lambda o: "/keys", {"form": {}}, MANAGERS, 400),
    "panel.keys_revoke": ("POST", lambda o: f"/keys/{o.revocable_grant_id}/revoke", {"form": {}}, MANAGERS, 302),
    "panel.keys_setting": ("POST", lambda o: "/keys/setting", {"form": {}}, MANAGERS, 302),
    "api.list_grants": ("GET", lambda o: "/api/v1/grants", None, ALL, 200),
    "api.issue_grant": ("POST", lambda o: "/api/v1/grants", {"json": {}}, MANAGERS, 400),
    "api.revoke_grant": ("POST", lambda o: f"/api/v1/grants/{o.revocable_grant_id}/revoke", None, MANAGERS, 200),
}

# Cases whose path or body names an object of a tenant: the other tenant's object must be "not found".
OBJECT_ROUTES = {
    "panel.user_edit", "panel.user_edit#post", "api.get_user", "api.update_user", "api.create_enrolment_code",
    "api.get_device", "api.revoke_device", "api.get_conversation", "api.list_messages",
    "api.live_agent_conversations", "api.live_conversation", "api.create_intervention",
    "panel.records_conversation", "panel.records_export", "api.search_messages", "api.search_conversations",
    "api.conversation_records", "api.export_records",
    "panel.report_detail", "panel.report_review#post", "api.get_behaviour_event", "api.review_behaviour_event",
    "panel.webhook_toggle", "panel.webhook_delete", "panel.webhook_test", "api.delete_webhook", "api.mark_alerts_read",
    "panel.hold_release", "api.place_hold", "api.release_hold", "api.revoke_grant",
    "panel.keys_revoke",
}


@pytest.fixture
def orgs(orgs, app):
    """conftest's two tenants, each also with a behaviour event of its supervised agent (Reports routes)."""
    with app.app_context():
        for org in orgs:
            event = BehaviourEvent(tenant_id=org.tenant_id, agent_id=org.agent.id, device_id=org.device_id,
                                   conversation_id=org.conversation_id, type="send_blocked",
                                   details={"console": "whatsapp", "text": "matrix"}, occurred_at=utcnow())
            db.session.add(event)
            db.session.flush()
            org.behaviour_event_id = event.id
            intervention = Intervention(tenant_id=org.tenant_id, conversation_id=org.conversation_id,
                                        agent_id=org.agent.id, author_id=org.users["supervisor"].id, text="matrix",
                                        expires_at=utcnow() + timedelta(minutes=10))
            db.session.add(intervention)
            db.session.flush()
            org.intervention_id = intervention.id
            alert = Alert(tenant_id=org.tenant_id, behaviour_event_id=event.id, agent_id=org.agent.id,
                          type=event.type, severity="warning", summary="", facts={}, occurred_at=event.occurred_at)
            db.session.add(alert)
            db.session.flush()
            db.session.add_all([AlertReceipt(alert_id=alert.id, user_id=org.users[r].id) for r in STAFF])
            org.alert_id = alert.id
            webhook = WebhookEndpoint(tenant_id=org.tenant_id, url="http://127.0.0.1:9/matrix", sealed_secret="")
            db.session.add(webhook)
            db.session.flush()
            org.webhook_id = webhook.id
            hold = LegalHold(tenant_id=org.tenant_id, conversation_id=org.conversation_id, reason="matrix")
            db.session.add(hold)
            db.session.flush()
            org.hold_id = hold.id
        db.session.commit()
        for org in orgs:
            db.session.add(GrantSetting(tenant_id=org.tenant_id, admins_may_issue=True))
        db.session.commit()
        for org in orgs:
            # Reading records needs a private key, revealing a restore key (tests/test_grants.py).
            staff_read(app, org)
            issue_grant(org, org.agent.id, "restore", agent_ids=[org.agent.id])
            org.revocable_grant_id = issue_grant(org, org.other_agent.id, "restore",
                                                 agent_ids=[org.other_agent.id])
    return orgs


def route_keys_from_app(app) -> set[str]:
    keys = set()
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            keys.add(rule.endpoint if method == "GET" or rule.methods & {"GET"} == set() else
                     f"{rule.endpoint}#{method.lower()}")
    return keys


def test_every_route_has_a_case(app):
    from_app = route_keys_from_app(app)
    assert sorted(from_app - ROUTES.keys()) == [], "routes without an access-matrix case"
    assert sorted(ROUTES.keys() - from_app) == [], "cases for routes that no longer exist"


def test_every_route_is_in_the_policy_table(app):
    from backend.security.policy import ROUTES as POLICY

    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert sorted(endpoints - POLICY.keys()) == []


def rules_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("sensitive/private_deal.txt", "私下交易\n")
        archive.writestr("allow.txt", "")
    return buffer.getvalue()


def login_page_csrf(client) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _request(client, case, org, role, *, as_api: bool, token: str | None, csrf: str | None):
    method, path_of, body, _who, _ok = case
    kwargs: dict = {}
    if body:
        if "json" in body:
            payload = body["json"]
            kwargs["json"] = payload(org, role) if callable(payload) else payload
        elif "file" in body:
            kwargs["data"] = {"file": (io.BytesIO(rules_zip()), body["file"])}
            kwargs["content_type"] = "multipart/form-data"
        else:
            kwargs["data"] = dict(body["form"], csrf_token=csrf or "")
    elif method != "GET":
        kwargs["json"] = {}
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif csrf and "json" in kwargs:
        headers["X-CSRFToken"] = csrf
    return client.open(path_of(org), method=method, headers=headers, **kwargs)


CASES = list(itertools.product(sorted(ROUTES), (*ROLES, None)))


@pytest.mark.parametrize("key,role", CASES, ids=[f"{k}-{r or 'anonymous'}" for k, r in CASES])
def test_route_access(app, orgs, key, role):
    own, other = orgs
    case = ROUTES[key]
    _method, path_of, _body, who, ok = case
    is_api = path_of(own).startswith("/api/")
    client = app.test_client()
    token = csrf = None
    if role is not None:
        if is_api:
            token = own.tokens[role]
        else:
            csrf = sign_in(client, own.users[role])
    elif not is_api:
        csrf = login_page_csrf(client)

    response = _request(client, case, own, role, as_api=is_api, token=token, csrf=csrf)
    if who == PUBLIC or (role is not None and role in who):
        assert response.status_code == ok, response.get_data(as_text=True)[:300]
    elif role is None:
        if is_api:
            assert response.status_code == 401
            assert response.get_json()["error"]["code"] == "sign_in_required"
        else:
            assert response.status_code == 302 and "/login" in response.headers["Location"]
    else:
        assert response.status_code == 403, response.get_data(as_text=True)[:300]

    if key in OBJECT_ROUTES and role is not None and role in who:
        if not token and key == "panel.logout":
            csrf = sign_in(client, own.users[role])
        response = _request(client, case, other, role, as_api=is_api, token=token, csrf=csrf)
        assert response.status_code == 404, f"{key} as {role} reached another tenant's object"


# ---- Socket.IO ----------------------------------------------------------------------------------

EVENTS = {
    ("/agent", "connect"): "device",
    ("/agent", "disconnect"): "device",
    ("/agent", "heartbeat"): "device",
    ("/agent", "events"): "device",
    ("/agent", "pseudonyms"): "device",
    ("/agent", "pending_interventions"): "device",
    ("/agent", "intervention_status"): "device",
    ("/agent", "resolve_chats"): "device",
    ("/agent", "reveal"): "device",
    ("/panel", "connect"): ALL,
    ("/panel", "watch_conversation"): STAFF,
    ("/panel", "unwatch_conversation"): STAFF,
}


def test_every_event_has_a_case(app):
    from backend.security.policy import EVENTS as POLICY

    registered = {
        (namespace, event)
        for namespace, handlers in socketio.server.handlers.items()
        for event in handlers
    }
    assert sorted(registered - EVENTS.keys()) == [], "Socket.IO events without an access-matrix case"
    assert sorted(registered - POLICY.keys()) == []


# What each device event is sent in the matrix; its answer must be ok for a live device.
DEVICE_EVENT_PAYLOADS = {
    "heartbeat": {"sent_at": "2026-01-01T00:00:00Z"},
    "events": {"v": 1, "events": []},
    "pseudonyms": {"identifiers": ["+86 138 1234 5678"]},
    "pending_interventions": None,
    "intervention_status": lambda o: {"id": o.intervention_id, "status": "delivered"},
    "resolve_chats": {"chats": [{"console": "whatsapp", "key": "8613800138000@c.us"}]},
    "reveal": lambda o: {"chat": {"console": "whatsapp", "account": f"{o.name} sales", "key": "8613800138000@c.us",
                                  "customer": "+86 138 0013 8000"}, "span_hash": "0" * 64},
}


def test_every_device_event_has_a_payload():
    device_events = {event for (namespace, event), who in EVENTS.items()
                     if who == "device" and event not in ("connect", "disconnect")}
    assert sorted(device_events ^ DEVICE_EVENT_PAYLOADS.keys()) == []


def test_agent_namespace_needs_a_live_device_token(app, orgs):
    own, _other = orgs
    token = device_token(app, own.device_id)
    refused = [None, {}, {"token": "nope"}, {"token": 42}]
    for auth in refused:
        sio = socketio.test_client(app, namespace="/agent", auth=auth)
        assert not sio.is_connected("/agent"), auth

    # a signed-in panel user (even the owner) is not a device
    flask_client = app.test_client()
    sign_in(flask_client, own.users["owner"])
    sio = socketio.test_client(app, namespace="/agent", flask_test_client=flask_client)
    assert not sio.is_connected("/agent")

    sio = socketio.test_client(app, namespace="/agent", auth={"token": token})
    assert sio.is_connected("/agent")
    ack = sio.emit("heartbeat", {"sent_at": "2026-01-01T00:00:00Z"}, namespace="/agent", callback=True)
    assert ack["ok"] is True and ack["server_time"]

    # revocation cuts the open connection off at its next event
    client = app.test_client()
    response = client.post(f"/api/v1/devices/{own.device_id}/revoke",
                           headers={"Authorization": f"Bearer {own.tokens['owner']}"})
    assert response.status_code == 200
    ack = sio.emit("heartbeat", {}, namespace="/agent", callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "unauthorized"
    assert not sio.is_connected("/agent"), "a revoked device's connection is dropped"
    again = socketio.test_client(app, namespace="/agent", auth={"token": token})
    assert not again.is_connected("/agent")


@pytest.mark.parametrize("event", sorted(DEVICE_EVENT_PAYLOADS))
def test_device_events_need_a_live_device(app, orgs, event):
    own, _other = orgs
    payload = DEVICE_EVENT_PAYLOADS[event]
    payload = payload(own) if callable(payload) else payload
    sio = socketio.test_client(app, namespace="/agent", auth={"token": device_token(app, own.device_id)})
    assert sio.emit(event, payload, namespace="/agent", callback=True)["ok"] is True
    # a panel socket (even the owner's) has no such event
    flask_client = app.test_client()
    sign_in(flask_client, own.users["owner"])
    panel = socketio.test_client(app, namespace="/panel", flask_test_client=flask_client)
    assert panel.emit(event, payload, namespace="/panel", callback=True) is None
    with app.app_context():
        db.session.get(User, own.agent.id).is_active = False
        db.session.commit()
    ack = sio.emit(event, payload, namespace="/agent", callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "unauthorized"
    assert not sio.is_connected("/agent")


@pytest.mark.parametrize("role", (*ROLES, None))
def test_panel_namespace(app, orgs, role):
    own, other = orgs
    flask_client = app.test_client()
    if role is not None:
        sign_in(flask_client, own.users[role])
    sio = socketio.test_client(app, namespace="/panel", flask_test_client=flask_client)
    if role is None:
        assert not sio.is_connected("/panel")
        return
    assert sio.is_connected("/panel")
    ack = sio.emit("watch_conversation", {"conversation_id": own.conversation_id}, namespace="/panel",
                   callback=True)
    if role in STAFF:
        assert ack == {"ok": True, "room": f"conversation:{own.conversation_id}"}
    else:
        assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    ack = sio.emit("watch_conversation", {"conversation_id": other.conversation_id}, namespace="/panel",
                   callback=True)
    assert ack["ok"] is False
    assert ack["error"]["code"] == ("not_found" if role in STAFF else "forbidden")
    ack = sio.emit("watch_conversation", {"conversation_id": "1; drop"}, namespace="/panel", callback=True)
    assert ack["ok"] is False


def test_object_routes_list_every_route_with_an_id(app):
    with_ids = {rule.endpoint for rule in app.url_map.iter_rules() if "<int:" in rule.rule}
    covered = {key.split("#")[0] for key in OBJECT_ROUTES}
    assert sorted(with_ids - covered) == []


def test_panel_socket_loses_its_rights_at_sign_out(app, orgs):
    own, _other = orgs
    flask_client = app.test_client()
    csrf = sign_in(flask_client, own.users["supervisor"])
    sio = socketio.test_client(app, namespace="/panel", flask_test_client=flask_client)
    ask = {"conversation_id": own.conversation_id}
    assert sio.emit("watch_conversation", ask, namespace="/panel", callback=True)["ok"] is True
    assert flask_client.post("/logout", data={"csrf_token": csrf}).status_code == 302
    ack = sio.emit("watch_conversation", ask, namespace="/panel", callback=True)
    assert ack["ok"] is False and ack["error"]["code"] == "unauthorized"
    assert not sio.is_connected("/panel"), "the server drops a connection whose user signed out"


def test_only_managers_join_the_tenant_wide_room(app, orgs):
    own, _other = orgs
    rooms = {}
    for role in ROLES:
        flask_client = app.test_client()
        sign_in(flask_client, own.users[role])
        sio = socketio.test_client(app, namespace="/panel", flask_test_client=flask_client)
        sid = socketio.server.manager.sid_from_eio_sid(sio.eio_sid, "/panel")
        rooms[role] = set(socketio.server.manager.get_rooms(sid, "/panel"))
    managers = f"managers:{own.tenant_id}"
    assert managers in rooms["owner"] and managers in rooms["admin"]
    # a supervisor hears their departments only, never the whole tenant
    assert managers not in rooms["supervisor"] and f"department:{own.sales_id}" in rooms["supervisor"]
    assert f"department:{own.support_id}" not in rooms["supervisor"]
    assert not any(room.startswith(("tenant:", "managers:", "department:")) for room in rooms["agent"])
