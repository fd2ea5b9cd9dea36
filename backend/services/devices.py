"""Enrolling, authenticating and revoking agents' browser devices, and what the server notices about them.

The behaviour watch's device signals live here, because only the server can be trusted with them: a
`new_device` when an agent enrols another browser, `extension_removed` when Chrome opens the removal link
of a device whose extension was removed, and `heartbeat_missing` / `heartbeat_resumed` around a silence.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import NamedTuple

from flask_babel import gettext as _
from sqlalchemy import func, or_, select, update

from backend.errors import ApiError, forbidden
from backend.extensions import db
from backend.models import BehaviourEvent, Device, Role, User
from backend.models.base import iso, utcnow
from backend.models.behaviour import (
    DEVICE_REVOKED_BY_AGENT,
    EXTENSION_REMOVED,
    HEARTBEAT_MISSING,
    HEARTBEAT_RESUMED,
    NEW_DEVICE,
)
from backend.security import throttle
from backend.security.secrets import hash_enrolment_code, hash_token, new_enrolment_code, new_token
from backend.services.audit import record_audit
from backend.services.signals import behaviour_recorded
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


class Enrolment(NamedTuple):
    """What enrolment hands the extension once: its token, and the token of its removal link."""

    device: Device
    token: str
    removal_token: str


def enrol_device(code: str, label: str = "", user_agent: str = "", remote_addr: str = "") -> Enrolment:
    """Trade a one-time code for a device token and a removal link. A used or expired code is refused;
    guessing is throttled."""
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
    removal_token = new_token()
    now = utcnow()
    device.token_hash = hash_token(token)
    device.removal_token_hash = hash_token(removal_token)
    device.enrolment_code_hash = None  # single use
    device.enrolled_at = now
    device.label = label.strip()[:120]
    device.user_agent = user_agent[:400]
    device.last_seen_at = None
    report_new_device(device, now)
    record_audit("device.enrol", tenant_id=device.tenant_id, target_type="device", target_id=device.id,
                 details={"agent_id": device.agent_id, "label": device.label}, remote_addr=remote_addr)
    db.session.flush()
    return Enrolment(device, token, removal_token)


# A `new_device` event names at most this many of the agent's other devices (its details stay small).
NEW_DEVICE_LISTED = 20


def record_device_event(device: Device, kind: str, at: datetime, details: dict) -> BehaviourEvent:
    """A behaviour event about one device, in its own tenant and for its own agent."""
    event = BehaviourEvent(tenant_id=device.tenant_id, agent_id=device.agent_id, device_id=device.id, type=kind,
                           occurred_at=at, details=details)
    db.session.add(event)
    db.session.flush()
    behaviour_recorded.send(None, tenant_id=event.tenant_id, agent_id=event.agent_id, conversation_id=None,
                            event_id=event.id, type=kind, at=at)
    return event


def claim(device: Device, unclaimed, **values) -> bool:
    """Sets `values` on the device only while `unclaimed` holds, in one conditional UPDATE: of two
    requests or server processes doing this at once, exactly one gets True (and records the event)."""
    return bool(db.session.execute(
        update(Device).where(Device.id == device.id, unclaimed).values(**values)
    ).rowcount)


def report_new_device(device: Device, now: datetime) -> None:
    """Another browser for an agent who still has an active one is worth a supervisor's look."""
    others = db.session.scalars(
        select(Device)
        .where(Device.agent_id == device.agent_id, Device.id != device.id, Device.enrolled_at.is_not(None),
               Device.revoked_at.is_(None))
        .order_by(Device.id)
        .limit(NEW_DEVICE_LISTED)
    ).all()
    if not others:
        return
    record_device_event(device, NEW_DEVICE, now, {
        "label": device.label, "user_agent": device.user_agent,
        "other_devices": [{"id": d.id, "label": d.label} for d in others]})


# A removal token as enrolment makes it (secrets.token_urlsafe(32)); anything else is not looked up.
REMOVAL_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def report_extension_removed(removal_token: str) -> Device | None:
    """Chrome opened a device's removal link: the extension was removed from that browser.

    The first visit records `extension_removed`; later ones (a reload, a second tab) record nothing more.
    Answers the device, or None for a token that is not a device's.
    """
    if not REMOVAL_TOKEN.fullmatch(removal_token):
        return None
    device = db.session.scalar(select(Device).where(Device.removal_token_hash == hash_token(removal_token)))
    if device is None:
        return None
    now = utcnow()
    if claim(device, Device.removal_reported_at.is_(None), removal_reported_at=now):  # two visits: one event
        record_device_event(device, EXTENSION_REMOVED, now,
                            {"label": device.label, "last_seen_at": iso(device.last_seen_at)})
    db.session.flush()
    return device


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
            record_device_event(device, DEVICE_REVOKED_BY_AGENT, device.revoked_at, {"label": device.label})
    db.session.flush()
    return device


# The extension heartbeats every 20 s while Chrome runs; this long without one is a silence worth reporting.
SILENCE_THRESHOLD = timedelta(minutes=10)


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def record_heartbeat(device: Device) -> None:
    """The device was heard from (connect or heartbeat). Ends a reported silence with `heartbeat_resumed`."""
    now = utcnow()
    if device.silence_reported_at is not None:
        silent_since = device.last_seen_at or device.enrolled_at
        # a connect and a heartbeat racing record one event
        if claim(device, Device.silence_reported_at.is_not(None), silence_reported_at=None):
            record_device_event(device, HEARTBEAT_RESUMED, now,
                                {"last_seen_at": iso(silent_since), "minutes": _minutes(now - silent_since)})
    device.last_seen_at = now
    db.session.flush()


def notice_silent_devices(now: datetime) -> list[BehaviourEvent]:
    """A `heartbeat_missing` for every device that has been silent past the threshold, once per silence.

    Counted are enrolled, unrevoked devices of active agents (a disabled agent's devices are refused, so
    their silence says nothing), except a device whose removal was reported and that has not been heard
    from since: it is gone, and `extension_removed` said so. The silence starts at the last heartbeat (or
    at enrolment, for a device never heard from). `veil serve` calls this every minute.
    """
    last_heard = func.coalesce(Device.last_seen_at, Device.enrolled_at)
    silent = db.session.scalars(
        select(Device)
        .join(User, User.id == Device.agent_id)
        .where(Device.enrolled_at.is_not(None), Device.revoked_at.is_(None), Device.silence_reported_at.is_(None),
               User.is_active.is_(True), last_heard < now - SILENCE_THRESHOLD,
               or_(Device.removal_reported_at.is_(None), Device.last_seen_at > Device.removal_reported_at))
        .order_by(Device.id)
    ).all()
    recorded = []
    for device in silent:
        # claimed one by one: two server processes checking at once record each silence once
        if not claim(device, Device.silence_reported_at.is_(None), silence_reported_at=now):
            continue
        since = device.last_seen_at or device.enrolled_at
        recorded.append(record_device_event(device, HEARTBEAT_MISSING, now, {
            "label": device.label, "last_seen_at": iso(since), "minutes": _minutes(now - since)}))
    db.session.flush()
    return recorded


def devices_visible_to(actor: User) -> list[Device]:
    return list(
        db.session.scalars(
            select(Device)
            .where(Device.tenant_id == actor.tenant_id, Device.agent_id.in_(visible_agent_ids_query(actor)))
            .order_by(Device.id)
        )
    )


def stored_counts(device: Device) -> dict:
    """How much of what this device sent the server holds (`veil simulate` compares it with what it sent).

    `events`: distinct event ids of the device across messages, revisions and behaviour events (an edit
    is a revision and a behaviour event under one id); rows the server made itself carry no event id.
    """
    from sqlalchemy import union_all

    from backend.models import Message, MessageRevision

    def count(model) -> int:
        return db.session.scalar(select(func.count()).select_from(model).where(model.device_id == device.id)) or 0

    ids = union_all(*(select(m.client_event_id.label("id")).where(m.device_id == device.id,
                                                                  m.client_event_id.is_not(None))
                      for m in (Message, MessageRevision, BehaviourEvent))).subquery()
    events = db.session.scalar(select(func.count(func.distinct(ids.c.id)))) or 0
    return {"events": events, "messages": count(Message), "revisions": count(MessageRevision),
            "behaviour_events": count(BehaviourEvent)}
