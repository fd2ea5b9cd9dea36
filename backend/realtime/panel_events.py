"""`/panel` namespace: signed-in panel pages listening for live updates."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_socketio import join_room

from backend.errors import ApiError, forbidden
from backend.extensions import socketio
from backend.models import User
from backend.realtime.guard import guarded, refuse
from backend.security.authentication import user_for_session
from backend.security.policy import STAFF
from backend.services.visibility import can_read_message_text, get_visible_conversation

NAMESPACE = "/panel"


@socketio.on("connect", namespace=NAMESPACE)
@guarded(NAMESPACE, "connect")
def connect(auth=None):
    user = user_for_session()
    if user is None:
        refuse("sign in to the panel first")
    join_room(f"user:{user.id}")
    # Only staff hear tenant- and department-wide news; an agent in the panel sees just their own.
    if STAFF.allows(user.role):
        join_room(f"tenant:{user.tenant_id}")
        for department_id in user.department_ids:
            join_room(f"department:{department_id}")


@socketio.on("watch_conversation", namespace=NAMESPACE)
@guarded(NAMESPACE, "watch_conversation")
def watch_conversation(user: User, payload=None):
    conversation_id = payload.get("conversation_id") if isinstance(payload, dict) else None
    if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be a number.", name="conversation_id"))
    conversation = get_visible_conversation(user, conversation_id)
    if not can_read_message_text(user, conversation):
        raise forbidden()
    join_room(f"conversation:{conversation.id}")
    return {"ok": True, "room": f"conversation:{conversation.id}"}
