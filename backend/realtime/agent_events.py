"""`/agent` namespace: the extension's connection. The device token is checked on connect.

Rooms: `device:<id>`, `agent:<id>` and `tenant:<id>` (every device of the tenant; rooms are per
namespace, so this is not the panel's staff-only room of the same name).
"""

from __future__ import annotations

from itertools import count

from flask import current_app
from flask_socketio import join_room
from sqlalchemy.exc import IntegrityError, OperationalError

from backend.extensions import db, socketio
from backend.models import Device
from backend.models.base import utcnow
from backend.realtime.broadcast import after_commit
from backend.realtime.guard import forget_connection, guarded, refuse, remember_device
from backend.services import conversations, ingest
from backend.services.devices import device_for_token, record_heartbeat
from backend.services.signals import rule_set_saved

NAMESPACE = "/agent"


def tenant_room(tenant_id: int) -> str:
    return f"tenant:{tenant_id}"


@socketio.on("connect", namespace=NAMESPACE)
@guarded(NAMESPACE, "connect")
def connect(auth=None):
    token = auth.get("token") if isinstance(auth, dict) else None
    device = device_for_token(token)
    if device is None:
        refuse("unknown or revoked device token")
    remember_device(device, NAMESPACE)
    join_room(f"device:{device.id}")
    join_room(f"agent:{device.agent_id}")
    join_room(tenant_room(device.tenant_id))
    record_heartbeat(device)
    db.session.commit()


@socketio.on("disconnect", namespace=NAMESPACE)
@guarded(NAMESPACE, "disconnect")
def disconnect(reason=None):
    forget_connection(NAMESPACE)


@socketio.on("heartbeat", namespace=NAMESPACE)
@guarded(NAMESPACE, "heartbeat")
def heartbeat(device: Device, payload=None):
    record_heartbeat(device)
    db.session.commit()
    return {"ok": True, "server_time": utcnow().isoformat()}


@socketio.on("events", namespace=NAMESPACE)
@guarded(NAMESPACE, "events")
def events(device: Device, payload=None, *_extra):
    ingest.admit_batch(device, payload)
    items = ingest.read_batch(payload)
    for attempt in count(1):
        try:
            ack = ingest.store_batch(device, items)
            db.session.commit()
            return {"ok": True, **ack}
        except (IntegrityError, OperationalError):
            # Lost a race with another copy of this batch (deadlock, busy SQLite); what it stored is
            # found as "stored before" on the next attempt.
            db.session.rollback()
            if attempt >= ingest.STORE_ATTEMPTS:
                raise


@socketio.on("pseudonyms", namespace=NAMESPACE)
@guarded(NAMESPACE, "pseudonyms")
def pseudonyms(device: Device, payload=None, *_extra):
    identifiers = payload.get("identifiers") if isinstance(payload, dict) else None
    found = conversations.pseudonyms_for(current_app.config["SECRET_KEY"], device.tenant_id, device.id, identifiers)
    return {"ok": True, "pseudonyms": found}


@rule_set_saved.connect
def announce_rules(row, *, tenant_id: int, version_hash: str, **_extra) -> None:
    """Every device of the tenant refetches GET /api/v1/rules once the new version is committed."""
    after_commit(lambda: socketio.emit("rules_changed", {"version": version_hash}, namespace=NAMESPACE,
                                       to=tenant_room(tenant_id)))
