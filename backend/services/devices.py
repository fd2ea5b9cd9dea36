"""Enrolling, authenticating and revoking agents' browser devices."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from backend.errors import ApiError, forbidden
from backend.extensions import db
from backend.models import BehaviourEvent, Device, Role, User
from backend.models.base import utcnow
from backend.security import throttle
from backend.security.secrets import hash_enrolment_code, hash_token, new_enrolment_code, new_token
from backend.services.audit import record_audit
from backend.services.visibility import can_see_agent, visible_agent_ids_query


def create_enrolment_code(actor: User | None, agent: User, ttl_seconds: int) -> tuple[Device, str]:
    """A pending device and its one-time code (shown once; only its hash is stored)."""
    if agent.role != Role.AGENT:
        raise ApiError(400, "not_an_agent", _("Devices are enrolled for agents only."))
    if actor is not None and not can_see_agent(actor, agent):
        raise forbidden()
    code = new_enrolment_code()
    device = Device(
        tenant_id=agent.tenant_id,
        agent=agent,
        enrolment_code_hash=hash_enrolment_code(code),
        enrolment_code_expires_at=utcnow() + timedelta(seconds=ttl_seconds),
    )
    db.session.add(device)
    db.session.flush()
    record_audit("device.code_create", actor=actor, tenant_id=agent.tenant_id, target_type="device",
                 target_id=device.id, details={"agent_id": agent.id})
    return device, code


# Guessing codes from one address: this many failures per window, then wait.
ENROLMENT_MAX_FAILURES = 10
ENROLMENT_WINDOW_SECONDS = 15 * 60


def enrol_device(code: str, label: str = "", user_agent: str = "", remote_addr: str = "") -> tuple[Device, str]:
    """Trade a one-time code for a device token. A used or expired code is refused; guessing is throttled."""
    wait = throttle.seconds_until_allowed(throttle.ENROLMENT, ENROLMENT_WINDOW_SECONDS, remote_addr=remote_addr,
                                          address_limit=ENROLMENT_MAX_FAILURES)
    if wait:
        raise ApiError(429, "too_many_attempts",
                       _("Too many wrong codes from this address. Try again in %(minutes)d minutes.",
                         minutes=max(1, (wait + 59) // 60)), retry_after=wait)
    device = db.session.scalar(select(Device).where(Device.enrolment_code_hash == hash_enrolment_code(code)))
    if (device is None or device.revoked_at is not None or device.enrolment_code_expires_at < utcnow()
            or not device.agent.is_active):
        throttle.record_failure("", remote_addr, "invalid_code", kind=throttle.ENROLMENT)
        raise ApiError(400, "invalid_code", _("That enrolment code is wrong, used or expired. Ask for a new one."))
    token = new_token()
    now = utcnow()
    device.token_hash = hash_token(token)
    device.enrolment_code_hash = None  # single use
    device.enrolled_at = now
    device.label = label.strip()[:120]
    device.user_agent = user_agent[:400]
    device.last_seen_at = None
    earlier = db.session.scalar(
        select(Device.id).where(Device.agent_id == device.agent_id, Device.enrolled_at.is_not(None),
                                Device.id != device.id).limit(1)
    )
    if earlier is not None:
        # A second browser for the same agent is worth a supervisor's look (issue: behaviour watch).
        db.session.add(BehaviourEvent(tenant_id=device.tenant_id, agent_id=device.agent_id, device_id=device.id,
                                      type="new_device", details={"label": device.label}, occurred_at=now))
    record_audit("device.enrol", tenant_id=device.tenant_id, target_type="device", target_id=device.id,
                 details={"agent_id": device.agent_id, "label": device.label}, remote_addr=remote_addr)
    db.session.flush()
    return device, token


def device_for_token(token: str | None) -> Device | None:
    if not token or not isinstance(token, str):
        return None
    device = db.session.scalar(select(Device).where(Device.token_hash == hash_token(token)))
    if device is None or device.revoked_at is not None or not device.agent.is_active:
        return None
    return device


def revoke_device(actor: User, device: Device) -> Device:
    if device.revoked_at is None:
        device.revoked_at = utcnow()
        device.enrolment_code_hash = None
        record_audit("device.revoke", actor=actor, target_type="device", target_id=device.id)
        if actor.id == device.agent_id:
            # An agent switching their own guard off is exactly what supervisors want to hear about.
            db.session.add(BehaviourEvent(tenant_id=device.tenant_id, agent_id=device.agent_id, device_id=device.id,
                                          type="device_revoked_by_agent", details={"label": device.label},
                                          occurred_at=device.revoked_at))
    db.session.flush()
    return device


def record_heartbeat(device: Device) -> None:
    device.last_seen_at = utcnow()
    db.session.flush()


def devices_visible_to(actor: User) -> list[Device]:
    return list(
        db.session.scalars(
            select(Device)
            .where(Device.tenant_id == actor.tenant_id, Device.agent_id.in_(visible_agent_ids_query(actor)))
            .order_by(Device.id)
        )
    )
