"""What `/panel` hears: chat records, agents' activity and interventions, pushed after the commit.

Events (docs/protocol.md, "Panel live events"):
- `message` / `message_changed` {conversation_id, message, author} to `conversation:<id>`: only panel
  users who passed the message-text check in `watch_conversation` are in that room.
- `activity` {agent_id, conversation_id, customer_pseudonym, kind, type, at, count, since} to the agent's
  department rooms and the tenant's managers room. It never carries text: a supervisor's live list
  shows that an agent is busy and with whom (by pseudonym), not what they write.
- `agent_status` {agent_id, device_id, online, at} to the same rooms, when a device connects or leaves.
- `intervention` {intervention} to its author's `user:<id>` and to `conversation:<id>`.

The signals arrive inside the ingest transaction. What they name is gathered per transaction and read
once, after the commit, in a session of its own (the committed session may not run SQL any more), so a
batch of a hundred messages costs one read, and a rolled-back batch pushes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from backend.extensions import db, socketio
from backend.models import Conversation, Device, Message, User, department_members
from backend.models.base import utcnow
from backend.models.behaviour import MESSAGE_DELETED, MESSAGE_EDITED
from backend.models.interventions import Intervention
from backend.realtime.broadcast import after_commit
from backend.realtime.panel_events import NAMESPACE, agent_rooms, conversation_room, user_room
from backend.services.interventions import intervention_changed, intervention_created
from backend.services.signals import behaviour_recorded, message_changed, message_stored

log = logging.getLogger(__name__)
_PENDING = "veil_panel_push"


@dataclass
class _Pending:
    """What one transaction announced, in order."""

    messages: list[tuple[str, int, int]] = field(default_factory=list)  # (event, conversation_id, message_id)
    # (tenant_id, agent_id, conversation_id, kind, type) -> count
    activity: dict[tuple, int] = field(default_factory=lambda: defaultdict(int))
    # the same key -> when the oldest of those events happened (the device's time)
    since: dict[tuple, datetime] = field(default_factory=dict)
    interventions: list[int] = field(default_factory=list)


def _count(pending: _Pending, key: tuple, at: datetime | None) -> None:
    pending.activity[key] += 1
    if at is not None and (key not in pending.since or at < pending.since[key]):
        pending.since[key] = at


def _pending() -> _Pending:
    info = db.session().info
    pending = info.get(_PENDING)
    if pending is None:
        pending = info[_PENDING] = _Pending()

        def run() -> None:
            info.pop(_PENDING, None)
            push(pending)

        after_commit(run)
    return pending


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


# ---- listening --------------------------------------------------------------------------------------

@message_stored.connect
def on_message_stored(_sender, *, tenant_id: int, agent_id: int, conversation_id: int, message_id: int,
                      direction: str, at: datetime | None = None, **_extra) -> None:
    pending = _pending()
    pending.messages.append(("message", conversation_id, message_id))
    _count(pending, (tenant_id, agent_id, conversation_id, f"message_{direction}", "message"), at)


@message_changed.connect
def on_message_changed(_sender, *, tenant_id: int, agent_id: int, conversation_id: int, message_id: int,
                       kind: str, at: datetime | None = None, **_extra) -> None:
    pending = _pending()
    pending.messages.append(("message_changed", conversation_id, message_id))
    kind = "message_edited" if kind == "edit" else "message_deleted"
    _count(pending, (tenant_id, agent_id, conversation_id, kind, kind), at)


@behaviour_recorded.connect
def on_behaviour(_sender, *, tenant_id: int, agent_id: int, conversation_id: int | None, type: str,
                 at: datetime | None = None, **_extra) -> None:
    if type in (MESSAGE_EDITED, MESSAGE_DELETED) and conversation_id is not None:
        return  # told as the message's own change; an unknown message's change is behaviour only
    _count(_pending(), (tenant_id, agent_id, conversation_id, "behaviour", type), at)


@intervention_created.connect
@intervention_changed.connect
def on_intervention(row: Intervention, **_extra) -> None:
    _pending().interventions.append(row.id)


# ---- pushing ----------------------------------------------------------------------------------------

def _departments(session: Session, agent_ids) -> dict[int, set[int]]:
    found: dict[int, set[int]] = defaultdict(set)
    members = department_members.c
    for user_id, department_id in session.execute(select(members.user_id, members.department_id)
                                                  .where(members.user_id.in_(set(agent_ids)))):
        found[user_id].add(department_id)
    return found


def _author(user: User | None) -> dict | None:
    return {"id": user.id, "display_name": user.display_name} if user else None


def push(pending: _Pending) -> None:
    """Reads what was announced, now committed, and emits it; one session for the lot."""
    with Session(db.engine) as session:
        if pending.messages:
            ids = {message_id for _e, _c, message_id in pending.messages}
            rows = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)))}
            authors = {u.id: u for u in session.scalars(select(User).where(
                User.id.in_({m.author_user_id for m in rows.values() if m.author_user_id})))}
            for name, conversation_id, message_id in pending.messages:
                row = rows.get(message_id)
                if row is None:
                    continue
                socketio.emit(name, {"conversation_id": conversation_id, "message": row.to_dict(),
                                     "author": _author(authors.get(row.author_user_id))},
                              namespace=NAMESPACE, to=conversation_room(conversation_id))
        if pending.activity:
            departments = _departments(session, {key[1] for key in pending.activity})
            pseudonyms = dict(session.execute(select(Conversation.id, Conversation.customer_pseudonym).where(
                Conversation.id.in_({key[2] for key in pending.activity if key[2] is not None}))).all())
            at = utcnow().isoformat()
            for key, count in pending.activity.items():
                tenant_id, agent_id, conversation_id, kind, type_ = key
                since = pending.since.get(key)
                socketio.emit("activity", {"agent_id": agent_id, "conversation_id": conversation_id,
                                           "customer_pseudonym": pseudonyms.get(conversation_id), "kind": kind,
                                           "type": type_, "at": at, "count": count,
                                           "since": since.isoformat() if since else None},
                              namespace=NAMESPACE, to=agent_rooms(tenant_id, departments[agent_id]))
        for intervention_id in dict.fromkeys(pending.interventions):
            row = session.get(Intervention, intervention_id)
            if row is not None:
                rooms = [conversation_room(row.conversation_id)]
                if row.author_id:
                    rooms.append(user_room(row.author_id))
                socketio.emit("intervention", {"intervention": row.to_dict()}, namespace=NAMESPACE, to=rooms)


def announce_device(device: Device, *, online: bool) -> None:
    """`agent_status` for a device that connected or left (called by `/agent`, after its commit)."""
    payload = {"agent_id": device.agent_id, "device_id": device.id, "online": online, "at": utcnow().isoformat()}
    socketio.emit("agent_status", payload, namespace=NAMESPACE,
                  to=agent_rooms(device.tenant_id, device.agent.department_ids))
