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
