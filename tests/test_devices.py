"""Device enrolment: one-time codes, expiry, revocation and the new-device behaviour event."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.errors import ApiError
from backend.extensions import db
from backend.models import BehaviourEvent, Device, User
from backend.services.devices import create_enrolment_code, device_for_token, enrol_device, revoke_device


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
    device, token = enrol_device(code)
    db.session.commit()
    assert device.token_hash != token and token not in device.token_hash
    assert device.enrolment_code_hash is None, "a used code is forgotten"
    assert device_for_token(token).id == device.id
    revoke_device(agent, device)
    db.session.commit()
    assert device_for_token(token) is None


def test_second_device_for_an_agent_is_reported(ctx, orgs):
    own, _other = orgs
    agent = db.session.get(User, own.agent.id)  # already has one enrolled device
    before = db.session.query(BehaviourEvent).filter_by(agent_id=agent.id, type="new_device").count()
    device, code = create_enrolment_code(None, agent, 3600)
    enrol_device(code, label="home PC")
    db.session.commit()
    events = db.session.query(BehaviourEvent).filter_by(agent_id=agent.id, type="new_device").all()
    assert len(events) == before + 1
    assert events[-1].device_id == device.id and events[-1].details == {"label": "home PC"}


def test_disabled_agent_device_stops_working(ctx, orgs):
    own, _other = orgs
    agent = db.session.get(User, own.agent.id)
    device, code = create_enrolment_code(None, agent, 3600)
    _device, token = enrol_device(code)
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
