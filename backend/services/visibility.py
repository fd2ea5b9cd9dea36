"""Tenant and department scope: which users, devices and conversations an actor may see.

Objects of another tenant are reported as not found, so ids cannot be probed across tenants.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import Select, select

from backend.errors import forbidden, not_found
from backend.extensions import db
from backend.models import Conversation, Device, Grant, Role, User, department_members
from backend.models.grants import PRIVATE
from backend.security.policy import RECORD_READERS
from backend.services.grants import has_grant


def sees_whole_tenant(actor: User) -> bool:
    return actor.role in (Role.OWNER, Role.ADMIN)


def visible_agent_ids_query(actor: User) -> Select:
    """The ids of the agents whose data `actor` may see (a subquery, for filters)."""
    if sees_whole_tenant(actor):
        return select(User.id).where(User.tenant_id == actor.tenant_id, User.role == Role.AGENT)
    if actor.role == Role.SUPERVISOR:
        return (
            select(department_members.c.user_id)
            .join(User, User.id == department_members.c.user_id)
            .where(
                User.tenant_id == actor.tenant_id,
                User.role == Role.AGENT,
                department_members.c.department_id.in_(
                    select(department_members.c.department_id).where(department_members.c.user_id == actor.id)
                ),
            )
        )
    return select(User.id).where(User.id == actor.id)


def can_see_agent(actor: User, agent: User) -> bool:
    if agent.tenant_id != actor.tenant_id:
        return False
    if agent.id == actor.id or sees_whole_tenant(actor):
        return True
    if actor.role == Role.SUPERVISOR and agent.role == Role.AGENT:
        return bool(actor.department_ids & agent.department_ids)
    return False


def get_user_in_tenant(actor: User, user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or user.tenant_id != actor.tenant_id:
        raise not_found(_("user"))
    return user


def _get_agent_scoped(model, object_id: int, what: str, actor: User):
    """Load a tenant object that belongs to an agent: 404 across tenants, 403 outside the actor's scope."""
    obj = db.session.get(model, object_id)
    if obj is None or obj.tenant_id != actor.tenant_id:
        raise not_found(what)
    if not can_see_agent(actor, obj.agent):
        raise forbidden()
    return obj


def get_visible_device(actor: User, device_id: int) -> Device:
    return _get_agent_scoped(Device, device_id, _("device"), actor)


def get_visible_conversation(actor: User, conversation_id: int) -> Conversation:
    return _get_agent_scoped(Conversation, conversation_id, _("conversation"), actor)


def private_grant_for(actor: User, conversation: Conversation) -> Grant | None:
    """The private grant under which `actor` reads this conversation's text: the conversation must be in
    the actor's tenant and scope, the actor's role one that reads records, and a valid (signed, current,
    unrevoked, not used up) private grant must cover it. Owners too: see docs/security.md, "Grants"."""
    if conversation.tenant_id != actor.tenant_id or not RECORD_READERS.allows(actor.role):
        return None
    if not can_see_agent(actor, conversation.agent):
        return None
    return has_grant(actor, PRIVATE, conversation)


def can_read_message_text(actor: User, conversation: Conversation) -> bool:
    """The one place that decides whether message text may be shown."""
    return private_grant_for(actor, conversation) is not None
