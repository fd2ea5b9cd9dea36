"""`/agent` namespace: the extension's connection. The device token is checked on connect.

Rooms: `device:<id>`, `agent:<id>` and `tenant:<id>` (every device of the tenant; rooms are per
namespace). Supervisor replies (interventions) reach the agent's devices here as `intervene`; a device
asks for the waiting ones at every connect (`pending_interventions`), since Chrome may have stopped its
worker in between.
"""

from __future__ import annotations

import threading
from itertools import count

from flask_socketio import join_room
from sqlalchemy.exc import IntegrityError, OperationalError

from backend.extensions import db, socketio
from backend.models import Device
from backend.models.base import utcnow
from backend.realtime import panel_push
from backend.realtime.broadcast import after_commit
from backend.realtime.guard import current_device, forget_connection, guarded, refuse, remember_device
from backend.security.identifiers import identifier_key
from backend.services import conversations, ingest, interventions
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
    panel_push.announce_device(device, online=True)


@socketio.on("disconnect", namespace=NAMESPACE)
@guarded(NAMESPACE, "disconnect")
def disconnect(reason=None):
    device = current_device(NAMESPACE)
    forget_connection(NAMESPACE)
    if device is not None:
        panel_push.announce_device(device, online=False)


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
    # Wait for a slot holding no database connection: the guard's read of the device ends here.
    db.session.commit()
    with _ingest_slots:
        return _store(device, items)


# Batches stored at once by one server process. Every Socket.IO event runs in a thread of its own, so a
# thousand devices sending together would otherwise want a thousand connections: the pool ran dry and
# heartbeats, sign-ins and enrolments failed with it (bench/bench_ingest.py). SQLite has one writer anyway.
INGEST_CONCURRENCY = 4
_ingest_slots = threading.BoundedSemaphore(INGEST_CONCURRENCY)


def _store(device: Device, items: list) -> dict:
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
    found = conversations.pseudonyms_for(identifier_key(), device.tenant_id, device.id, identifiers)
    return {"ok": True, "pseudonyms": found}


@socketio.on("pending_interventions", namespace=NAMESPACE)
@guarded(NAMESPACE, "pending_interventions")
def pending_interventions(device: Device, payload=None, *_extra):
    """Asked at every connect: the supervisor replies waiting for this device's agent."""
    rows = interventions.open_for_device(device)
    answer = {"ok": True, "interventions": [interventions.intervene_payload(row) for row in rows]}
    db.session.commit()
    return answer


@socketio.on("intervention_status", namespace=NAMESPACE)
@guarded(NAMESPACE, "intervention_status")
def intervention_status(device: Device, payload=None, *_extra):
    answer = interventions.report_status(device, payload)
    db.session.commit()
    return {"ok": True, **answer}


@socketio.on("resolve_chats", namespace=NAMESPACE)
@guarded(NAMESPACE, "resolve_chats")
def resolve_chats(device: Device, payload=None, *_extra):
    found = interventions.resolve_chats(identifier_key(), device, payload)
    return {"ok": True, "conversation_ids": found}


@interventions.intervention_created.connect
def deliver_intervention(row, **_extra) -> None:
    """Every connected device of the agent hears of a new reply once it is committed."""
    payload, room = interventions.intervene_payload(row), f"agent:{row.agent_id}"
    after_commit(lambda: socketio.emit("intervene", payload, namespace=NAMESPACE, to=room))


@rule_set_saved.connect
def announce_rules(row, *, tenant_id: int, version_hash: str, **_extra) -> None:
    """Every device of the tenant refetches GET /api/v1/rules once the new version is committed."""
    after_commit(lambda: socketio.emit("rules_changed", {"version": version_hash}, namespace=NAMESPACE,
                                       to=tenant_room(tenant_id)))
