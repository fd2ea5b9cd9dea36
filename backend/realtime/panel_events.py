"""`/panel` namespace: signed-in panel pages listening for live updates.

Rooms, joined at connect: `user:<id>` for everyone; `department:<id>` for each department of a staff
member; `managers:<tenant id>` for owners and admins, who see the whole tenant. A supervisor is in no
tenant-wide room, so news about another department's agents never reaches them. `conversation:<id>`
is joined with `watch_conversation`, after the message-text check. What is pushed to these rooms is
decided in `backend.realtime.panel_push`.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_socketio import join_room, leave_room

from backend.errors import ApiError, forbidden
from backend.extensions import socketio
from backend.models import User
from backend.realtime.guard import guarded, refuse
from backend.security.authentication import user_for_session
from backend.security.policy import MANAGERS, STAFF
from backend.services.visibility import can_read_message_text, get_visible_conversation

NAMESPACE = "/panel"


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def department_room(department_id: int) -> str:
    return f"department:{department_id}"


def managers_room(tenant_id: int) -> str:
    return f"managers:{tenant_id}"


def conversation_room(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


def agent_rooms(tenant_id: int, department_ids) -> list[str]:
    """Everyone who may hear about an agent: their departments' staff and the tenant's managers."""
    return [*(department_room(d) for d in sorted(department_ids)), managers_room(tenant_id)]


@socketio.on("connect", namespace=NAMESPACE)
@guarded(NAMESPACE, "connect")
def connect(auth=None):
    user = user_for_session()
    if user is None:
        refuse("sign in to the panel first")
    join_room(user_room(user.id))
    # Only staff hear department-wide news, and only managers tenant-wide news; an agent in the panel
    # sees just their own.
    if STAFF.allows(user.role):
        for department_id in user.department_ids:
            join_room(department_room(department_id))
    if MANAGERS.allows(user.role):
        join_room(managers_room(user.tenant_id))


@socketio.on("watch_conversation", namespace=NAMESPACE)
@guarded(NAMESPACE, "watch_conversation")
def watch_conversation(user: User, payload=None):
    conversation_id = payload.get("conversation_id") if isinstance(payload, dict) else None
    if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be a number.", name="conversation_id"))
    conversation = get_visible_conversation(user, conversation_id)
    if not can_read_message_text(user, conversation):
        raise forbidden()
    join_room(conversation_room(conversation.id))
    return {"ok": True, "room": conversation_room(conversation.id)}


@socketio.on("unwatch_conversation", namespace=NAMESPACE)
@guarded(NAMESPACE, "unwatch_conversation")
def unwatch_conversation(user: User, payload=None):
    conversation_id = payload.get("conversation_id") if isinstance(payload, dict) else None
    if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be a number.", name="conversation_id"))
    leave_room(conversation_room(conversation_id))  # leaving needs no rights: it only stops pushes
    return {"ok": True}
