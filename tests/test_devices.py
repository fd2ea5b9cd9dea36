"""Devices: one-time codes, expiry, revocation, and what the server notices about them (the behaviour watch)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from backend.errors import ApiError
from backend.extensions import db, socketio
from backend.models import BehaviourEvent, Device, User
from backend.models.base import utcnow
from backend.models.behaviour import (
    EXTENSION_REMOVED,
    HEARTBEAT_MISSING,
    HEARTBEAT_RESUMED,
    NEW_DEVICE,
    REPORTED_KINDS,
)
from backend.security.secrets import hash_token
from backend.services.devices import (
    SILENCE_THRESHOLD,
    create_enrolment_code,
    device_for_token,
    enrol_device,
    notice_silent_devices,
    record_heartbeat,
    revoke_device,
)
from tests.conftest import device_token


def test_codes_expire(ctx, orgs):
    own, _other = orgs
    agent = db.session.get(User, own.agent.id)
    device, code = create_enrolment_code(None, agent, 3600)
    device.enrolment_code_expires_at -= timedelta(hours=2)
    db.session.commit()
    with pytest.raises(ApiError) as err:
        enrol_device(code)
    assert err.value.code == "invalid_code"


def test_only_hashes_are_stored(ctx, orgs):
    own, _other = orgs
    agent = db.session.get(User, own.agent.id)
    device, code = create_enrolment_code(None, agent, 3600)
    device, token, removal_token = enrol_device(code)
    db.session.commit()
    assert device.token_hash != token and token not in device.token_hash
    assert device.removal_token_hash == hash_token(removal_token) and removal_token != token
    assert device.enrolment_code_hash is None, "a used code is forgotten"
    assert device_for_token(token).id == device.id
    revoke_device(agent, device)
    db.session.commit()
    assert device_for_token(token) is None


def test_disabled_agent_device_stops_working(ctx, orgs):
    own, _other = orgs
    agent = db.session.get(User, own.agent.id)
    device, code = create_enrolment_code(None, agent, 3600)
    _device, token, _removal = enrol_device(code)
    agent.is_active = False
    db.session.commit()
    assert device_for_token(token) is None
    assert db.session.get(Device, device.id).revoked_at is None


def test_agent_revoking_their_own_device_is_reported(ctx, orgs):
    own, _other = orgs
    agent = db.session.get(User, own.agent.id)
    revoke_device(agent, db.session.get(Device, own.device_id))
    db.session.commit()
    assert db.session.query(BehaviourEvent).filter_by(agent_id=agent.id, type="device_revoked_by_agent").count() == 1


def test_pseudonyms_are_stable_and_distinct():
    from backend.security.identifiers import customer_pseudonym, customer_ref

    ref = customer_ref("k", 1, "+86 138 0013 8000")
    assert ref == customer_ref("k", 1, "+8613800138000"), "same number, same customer, however it is written"
    assert customer_pseudonym(ref) == customer_pseudonym(customer_ref("k", 1, "+86-138-0013-8000"))
    assert customer_ref("k", 2, "+86 138 0013 8000") != ref, "refs are keyed per tenant"
    names = {customer_pseudonym(customer_ref("k", 1, f"+86 139 {n:04d} 0000")) for n in range(2000)}
    assert len(names) == 2000
    assert all(name.startswith("客户-") and len(name) == 9 for name in names)


def events_of(kind: str, **where) -> list[BehaviourEvent]:
    query = select(BehaviourEvent).where(BehaviourEvent.type == kind).order_by(BehaviourEvent.id)
    for name, value in where.items():
        query = query.where(getattr(BehaviourEvent, name) == value)
    return list(db.session.scalars(query))


def test_the_server_types_cannot_be_reported_by_a_device():
    for kind in (NEW_DEVICE, EXTENSION_REMOVED, HEARTBEAT_MISSING, HEARTBEAT_RESUMED, "device_revoked_by_agent"):
        assert kind not in REPORTED_KINDS


# ---- a new device for the same agent --------------------------------------------------------------

def test_a_second_device_names_the_agents_other_active_devices(ctx, orgs):
    own, _other = orgs
    agent = db.session.get(User, own.agent.id)  # has the fixture's "laptop" and a pending code
    device, code = create_enrolment_code(None, agent, 3600)
    enrol_device(code, label="home PC", user_agent="Chrome/130")
    db.session.commit()
    [event] = events_of(NEW_DEVICE, agent_id=agent.id)
    assert (event.device_id, event.tenant_id) == (device.id, own.tenant_id)
    assert event.details == {"label": "home PC", "user_agent": "Chrome/130",
                             "other_devices": [{"id": own.device_id, "label": "laptop"}]}


def test_a_first_device_is_not_news(ctx, orgs):
    own, _other = orgs
    agent = db.session.get(User, own.other_agent.id)  # no device yet
    create_enrolment_code(None, agent, 3600)  # a pending device is not an active one
    _device, code = create_enrolment_code(None, agent, 3600)
    enrol_device(code)
    db.session.commit()
    assert events_of(NEW_DEVICE) == []


def test_a_revoked_device_does_not_count(ctx, orgs):
    own, _other = orgs
    owner = db.session.get(User, own.users["owner"].id)
    revoke_device(owner, db.session.get(Device, own.device_id))
    _device, code = create_enrolment_code(None, db.session.get(User, own.agent.id), 3600)
    enrol_device(code)
    db.session.commit()
    assert events_of(NEW_DEVICE) == []


# ---- the removal link -------------------------------------------------------------------------------

def enrol_over_http(client, code: str) -> dict:
    response = client.post("/api/v1/devices/enrol", json={"code": code, "label": "desk"})
    assert response.status_code == 201
    return response.get_json()


def test_the_removal_link_records_extension_removed_once(app, orgs):
    own, _other = orgs
    client = app.test_client()
    enrolled = enrol_over_http(client, own.pending_code)
    link = urlsplit(enrolled["uninstall_url"])
    assert link.scheme == "http" and link.netloc == "localhost"  # the server the extension enrolled with
    assert link.path.startswith("/devices/removed/") and enrolled["token"] not in link.path
    first = client.get(link.path, headers={"Accept-Language": "en"})
    assert first.status_code == 200 and first.mimetype == "text/html"
    assert "Veil was removed from this browser" in first.get_data(as_text=True)
    again = client.get(link.path)
    assert again.status_code == 200, "a reload shows the same page"
    with app.app_context():
        [event] = events_of(EXTENSION_REMOVED)
        assert (event.tenant_id, event.agent_id, event.device_id) == (own.tenant_id, own.agent.id,
                                                                      enrolled["device"]["id"])
        assert event.details == {"label": "desk", "last_seen_at": None}


@pytest.mark.parametrize("token", ["A" * 43, "short", "A" * 44, "%3Cscript%3Ealert(1)" + "A" * 20])
def test_an_unknown_or_malformed_removal_link_records_nothing(app, orgs, token):
    response = app.test_client().get(f"/devices/removed/{token}", headers={"Accept-Language": "en"})
    body = response.get_data(as_text=True)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "Nothing was recorded" in body and "<script>" not in body
    with app.app_context():
        assert events_of(EXTENSION_REMOVED) == []


def test_the_removal_page_speaks_the_visitors_language(app, orgs):
    own, _other = orgs
    response = app.test_client().get(f"/devices/removed/{own.removal_token}",
                                     headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and 'lang="zh-CN"' in body
    assert "已从此浏览器移除 Veil" in body and "was removed" not in body


# ---- missing heartbeats ------------------------------------------------------------------------------

def fall_silent(device_id: int, for_: timedelta) -> None:
    db.session.get(Device, device_id).last_seen_at = utcnow() - for_
    db.session.commit()


def test_a_silent_device_is_reported_once_per_silence(ctx, orgs):
    own, _other = orgs
    fall_silent(own.device_id, SILENCE_THRESHOLD + timedelta(minutes=1))
    now = utcnow()
    [event] = notice_silent_devices(now)
    db.session.commit()
    assert (event.type, event.device_id, event.agent_id, event.tenant_id) == (
        HEARTBEAT_MISSING, own.device_id, own.agent.id, own.tenant_id)
    assert event.details["minutes"] == 11 and event.details["label"] == "laptop"
    assert notice_silent_devices(now + timedelta(minutes=5)) == [], "one report per silence"

    record_heartbeat(db.session.get(Device, own.device_id))
    db.session.commit()
    [resumed] = events_of(HEARTBEAT_RESUMED)
    assert resumed.device_id == own.device_id and resumed.details["minutes"] == 11
    record_heartbeat(db.session.get(Device, own.device_id))
    db.session.commit()
    assert len(events_of(HEARTBEAT_RESUMED)) == 1, "only the first heartbeat after a silence ends it"

    fall_silent(own.device_id, SILENCE_THRESHOLD * 2)
    assert len(notice_silent_devices(utcnow())) == 1, "a new silence is reported again"


def test_short_silences_and_revoked_devices_are_not_reported(ctx, orgs):
    own, _other = orgs
    fall_silent(own.device_id, SILENCE_THRESHOLD - timedelta(minutes=1))
    assert notice_silent_devices(utcnow()) == []
    fall_silent(own.device_id, SILENCE_THRESHOLD * 3)
    revoke_device(db.session.get(User, own.users["owner"].id), db.session.get(Device, own.device_id))
    assert notice_silent_devices(utcnow()) == []


def test_a_disabled_agents_devices_are_not_reported(ctx, orgs):
    own, _other = orgs
    fall_silent(own.device_id, SILENCE_THRESHOLD * 3)
    db.session.get(User, own.agent.id).is_active = False
    assert notice_silent_devices(utcnow()) == []


def test_a_removed_extension_is_not_also_reported_silent_unless_heard_from_since(app, orgs):
    own, _other = orgs
    client = app.test_client()
    assert client.get(f"/devices/removed/{own.removal_token}").status_code == 200
    with app.app_context():
        fall_silent(own.device_id, SILENCE_THRESHOLD * 3)  # seen before the removal
        assert notice_silent_devices(utcnow()) == []
        device = db.session.get(Device, own.device_id)
        device.last_seen_at = device.removal_reported_at + timedelta(seconds=1)  # a "removed" device heartbeats
        db.session.commit()
        later = notice_silent_devices(device.last_seen_at + SILENCE_THRESHOLD * 2)
        assert own.device_id in [e.device_id for e in later]


def test_every_tenant_hears_of_its_own_silent_devices(ctx, orgs):
    for org in orgs:
        fall_silent(org.device_id, SILENCE_THRESHOLD * 2)
    recorded = notice_silent_devices(utcnow())
    assert sorted((e.tenant_id, e.agent_id, e.device_id) for e in recorded) == sorted(
        (org.tenant_id, org.agent.id, org.device_id) for org in orgs)


def test_a_silent_device_that_reconnects_records_the_end_of_its_silence(app, orgs):
    own, _other = orgs
    token = device_token(app, own.device_id)
    with app.app_context():
        fall_silent(own.device_id, SILENCE_THRESHOLD * 2)
        notice_silent_devices(utcnow())
        db.session.commit()
    sio = socketio.test_client(app, namespace="/agent", auth={"token": token})
    assert sio.is_connected("/agent")
    with app.app_context():
        [resumed] = events_of(HEARTBEAT_RESUMED)
        assert resumed.device_id == own.device_id and resumed.details["minutes"] == 20
        assert db.session.get(Device, own.device_id).silence_reported_at is None
    sio.disconnect(namespace="/agent")
