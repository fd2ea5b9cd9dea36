"""Grants on the sockets: the extension's `reveal` request, and `grants_changed` pushes.

`grants_changed` {grant_id, kind} goes, once the change is committed, to the grantee's devices (`/agent`
room `agent:<id>`, where the extension drops every revealed identifier at once) and to their panel pages
(`/panel` room `user:<id>`).
"""

from __future__ import annotations

from flask import request
from flask_babel import gettext as _

from backend.extensions import db, socketio
from backend.models import Device
from backend.realtime.broadcast import after_commit
from backend.realtime.guard import error_ack, guarded
from backend.realtime.panel_events import NAMESPACE as PANEL
from backend.realtime.panel_events import user_room
from backend.services import grants, reveals

AGENT = "/agent"


@socketio.on("reveal", namespace=AGENT)
@guarded(AGENT, "reveal")
def reveal(device: Device, payload=None, *_extra):
    try:
        answer = reveals.reveal(device, payload, remote_addr=request.remote_addr or "")
    except reveals.NoGrant:
        db.session.commit()  # the refused attempt stays in the audit trail
        return error_ack("no_grant", _("You need a restore key for this chat. Ask the owner for one."))
    db.session.commit()
    return {"ok": True, **answer}


@grants.grants_changed.connect
def announce_grant(grant, **_extra) -> None:
    payload = {"grant_id": grant.id, "kind": grant.kind}
    agent_room, panel_room = f"agent:{grant.grantee_id}", user_room(grant.grantee_id)

    def push() -> None:
        socketio.emit("grants_changed", payload, namespace=AGENT, to=agent_room)
        socketio.emit("grants_changed", payload, namespace=PANEL, to=panel_room)

    after_commit(push)
