"""Every Socket.IO handler goes through `guarded`, which applies the policy table's rule for it.

A handler whose (namespace, event) is not in the table fails at import time, so none can be added
without a rule; the test matrix then checks the rule is the one intended.
"""

from __future__ import annotations

import logging
from functools import wraps

from flask import request
from flask_babel import gettext as _
from flask_socketio import ConnectionRefusedError, disconnect

from backend.errors import ApiError
from backend.extensions import db
from backend.models import Device, User
from backend.security.authentication import user_for_session
from backend.security.policy import event_access

log = logging.getLogger(__name__)


# Which device each connection of this process belongs to. A connection lives in one process, so a
# process-local map is enough; it is keyed by (namespace, sid) and emptied on disconnect.
_connection_devices: dict[tuple[str, str], int] = {}


def remember_device(device: Device, namespace: str) -> None:
    _connection_devices[(namespace, request.sid)] = device.id


def forget_connection(namespace: str) -> None:
    _connection_devices.pop((namespace, request.sid), None)


def current_device(namespace: str) -> Device | None:
    device_id = _connection_devices.get((namespace, request.sid))
    device = db.session.get(Device, device_id) if isinstance(device_id, int) else None
    # Looked up on every event, so a revoked device is cut off at its next event.
    if device is None or device.revoked_at is not None or not device.agent.is_active:
        return None
    return device


def error_ack(code: str, message: str, details: dict | None = None) -> dict:
    error = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"ok": False, "error": error}


def guarded(namespace: str, event: str):
    access = event_access(namespace, event)
    if access is None:
        raise LookupError(f"Socket.IO event {namespace} {event} has no entry in security.policy.EVENTS")

    def decorate(handler):
        @wraps(handler)
        def wrapper(*args):
            if event in ("connect", "disconnect"):
                return handler(*args)  # connect handlers authenticate themselves and refuse by raising
            actor: Device | User | None = current_device(namespace) if access.device else user_for_session()
            if actor is None:
                # Signed out, disabled or revoked since connecting: answer, then drop the connection.
                disconnect()
                return error_ack("unauthorized", _("Not signed in, or the device was revoked."))
            if not access.device and not access.allows(actor.role):
                return error_ack("forbidden", _("Your role does not allow this."))
            try:
                return handler(actor, *args)
            except ApiError as err:
                db.session.rollback()
                return error_ack(err.code, err.message, err.details)
            except Exception:
                db.session.rollback()
                log.exception("Socket.IO handler %s %s failed", namespace, event)
                return error_ack("internal_error", _("Something went wrong on the server. It was logged."))

        return wrapper

    return decorate


def refuse(message: str) -> None:
    raise ConnectionRefusedError({"code": "unauthorized", "message": message})
