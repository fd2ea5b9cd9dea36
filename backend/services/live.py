"""The Live page's reading: the agents an actor supervises, what they are doing, and one conversation.

Scope as everywhere: `visibility` decides whose agents (a supervisor: their departments'; owners and
admins: the whole tenant), and message text is shown only where `can_read_message_text` says so.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select

from backend.errors import forbidden
from backend.extensions import db
from backend.models import BehaviourEvent, Conversation, Device, Message, Role, User
from backend.models.base import iso, utcnow
from backend.services.grants import use_grant
from backend.services.interventions import interventions_for_conversation
from backend.services.visibility import (
    can_see_agent,
    get_user_in_tenant,
    get_visible_conversation,
    private_grant_for,
    visible_agent_ids_query,
)

# A device heard from (connect or heartbeat, every 20 s) this recently counts as online; the page then
# follows `agent_status` pushes for connects and disconnects as they happen.
ONLINE_WINDOW = timedelta(minutes=2)
MESSAGES_SHOWN = 200
CONVERSATIONS_SHOWN = 50


def _later(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def agents_overview(actor: User, now: datetime | None = None) -> list[dict]:
    """Each active agent in scope: devices and whether one is online, the conversation they were last
    in, when they last did something, and today's counts (UTC day). No message text."""
    now = now or utcnow()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    scope = visible_agent_ids_query(actor)
    agents = list(db.session.scalars(select(User).where(
        User.tenant_id == actor.tenant_id, User.role == Role.AGENT, User.is_active.is_(True), User.id.in_(scope))
        .order_by(User.display_name, User.id)))
    ids = [a.id for a in agents]
    if not ids:
        return []

    devices: dict[int, list[Device]] = defaultdict(list)
    for device in db.session.scalars(select(Device).where(
            Device.agent_id.in_(ids), Device.revoked_at.is_(None), Device.enrolled_at.is_not(None))
            .order_by(Device.id)):
        devices[device.agent_id].append(device)

    latest = (select(Conversation.agent_id, func.max(Conversation.last_message_at).label("at"))
              .where(Conversation.agent_id.in_(ids)).group_by(Conversation.agent_id).subquery())
    current: dict[int, Conversation] = {}
    for conversation in db.session.scalars(select(Conversation).join(latest, and_(
            Conversation.agent_id == latest.c.agent_id, Conversation.last_message_at == latest.c.at))
            .order_by(Conversation.id.desc())):
        current.setdefault(conversation.agent_id, conversation)

    last_behaviour = dict(db.session.execute(
        select(BehaviourEvent.agent_id, func.max(BehaviourEvent.occurred_at))
        .where(BehaviourEvent.agent_id.in_(ids)).group_by(BehaviourEvent.agent_id)).all())
    today: dict[int, dict[str, int]] = defaultdict(lambda: {"messages_in": 0, "messages_out": 0, "behaviour": 0})
    for agent_id, direction, count in db.session.execute(
            select(Conversation.agent_id, Message.direction, func.count(Message.id))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.agent_id.in_(ids), Message.sent_at >= day_start)
            .group_by(Conversation.agent_id, Message.direction)):
        today[agent_id][f"messages_{direction}"] = count
    for agent_id, count in db.session.execute(
            select(BehaviourEvent.agent_id, func.count(BehaviourEvent.id))
            .where(BehaviourEvent.agent_id.in_(ids), BehaviourEvent.occurred_at >= day_start)
            .group_by(BehaviourEvent.agent_id)):
        today[agent_id]["behaviour"] = count

    overview = []
    for agent in agents:
        own = [{"id": d.id, "label": d.label, "last_seen_at": iso(d.last_seen_at),
                "online": d.last_seen_at is not None and d.last_seen_at >= now - ONLINE_WINDOW}
               for d in devices[agent.id]]
        conversation = current.get(agent.id)
        overview.append({
            "id": agent.id,
            "display_name": agent.display_name,
            "departments": [{"id": d.id, "name": d.name} for d in agent.departments],
            "online": any(d["online"] for d in own),
            "devices": own,
            "last_seen_at": iso(_later(*(d.last_seen_at for d in devices[agent.id]))),
            "current_conversation": {
                "id": conversation.id, "customer_pseudonym": conversation.customer_pseudonym,
                "platform": conversation.chat_account.platform,
            } if conversation else None,
            "last_activity_at": iso(_later(conversation.last_message_at if conversation else None,
                                           last_behaviour.get(agent.id))),
            "today": dict(today[agent.id]),
        })
    return overview


def agent_conversations(actor: User, agent_id: int, *, limit: int = CONVERSATIONS_SHOWN) -> list[Conversation]:
    """An agent's conversations, most recently active first: 404 across tenants, 403 outside scope."""
    agent = get_user_in_tenant(actor, agent_id)
    if not can_see_agent(actor, agent):
        raise forbidden()
    return list(db.session.scalars(
        select(Conversation).where(Conversation.tenant_id == actor.tenant_id, Conversation.agent_id == agent.id)
        .order_by(Conversation.last_message_at.desc().nulls_last(), Conversation.id.desc())
        .limit(min(max(limit, 1), CONVERSATIONS_SHOWN))))


def _message(message: Message, authors: dict[int, User], readable: bool) -> dict:
    data = message.to_dict()
    author = authors.get(message.author_user_id) if message.author_user_id else None
    data["author"] = {"id": author.id, "display_name": author.display_name} if author else None
    if not readable:
        data["text"] = None
        data["revisions"] = [dict(r, text=None) for r in data["revisions"]]
    return data


def conversation_view(actor: User, conversation_id: int) -> dict:
    """One conversation for the Live page: its latest messages (oldest first) and the replies written
    for it. Without the right to read its text, the messages come without text and no replies."""
    conversation = get_visible_conversation(actor, conversation_id)
    grant = private_grant_for(actor, conversation)
    readable = grant is not None
    if grant is not None:
        use_grant(grant, "live_view", conversation, actor=actor)
    rows = list(db.session.scalars(select(Message).where(Message.conversation_id == conversation.id)
                                   .order_by(Message.id.desc()).limit(MESSAGES_SHOWN)))
    rows.reverse()
    author_ids = {m.author_user_id for m in rows if m.author_user_id}
    authors = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(author_ids)))} if author_ids else {}
    return {
        "conversation": conversation.to_dict(),
        "agent": {"id": conversation.agent.id, "display_name": conversation.agent.display_name},
        "text_hidden": not readable,
        "can_intervene": readable,
        "messages": [_message(m, authors, readable) for m in rows],
        "interventions": [i.to_dict() for i in interventions_for_conversation(actor, conversation)]
        if readable else [],
    }
