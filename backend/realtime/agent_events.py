"""`/agent` namespace: the extension's connection. The device token is checked on connect."""

from __future__ import annotations

from flask_socketio import join_room

from backend.extensions import db, socketio
from backend.models import Device
from backend.models.base import utcnow
from backend.realtime.guard import forget_connection, guarded, refuse, remember_device
from backend.services.devices import device_for_token, record_heartbeat

NAMESPACE = "/agent"


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
