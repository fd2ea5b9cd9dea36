"""Conversations and messages: reading them within the actor's scope, and finding where a new one goes."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update

from backend.errors import ApiError, forbidden
from backend.extensions import db
from backend.models import ChatAccount, Conversation, Message, User
from backend.models.base import insert_if_absent, utcnow
from backend.security.identifiers import customer_pseudonym, customer_ref
from backend.security.rate_limit import TokenBuckets, whole_seconds
from backend.services.grants import use_grant
from backend.services.visibility import private_grant_for, visible_agent_ids_query

PAGE_SIZE_MAX = 200
MAX_PSEUDONYM_LOOKUPS = 50  # identifiers per request: one screen of a chat list
MAX_IDENTIFIER_LENGTH = 200
# An extension asks when a chat list shows customers by number; a device asking much faster than any
# screen could is trying identifiers, and waits.
pseudonym_lookups = TokenBuckets(rate=20, burst=200)


def list_conversations(actor: User, *, before_id: int | None = None, limit: int = 50) -> list[Conversation]:
    query = (
        select(Conversation)
        .where(Conversation.tenant_id == actor.tenant_id, Conversation.agent_id.in_(visible_agent_ids_query(actor)))
        .order_by(Conversation.id.desc())
        .limit(min(max(limit, 1), PAGE_SIZE_MAX))
    )
    if before_id is not None:
        query = query.where(Conversation.id < before_id)
    return list(db.session.scalars(query))


def list_messages(actor: User, conversation: Conversation, *, after_id: int = 0, limit: int = 100) -> list[Message]:
    grant = private_grant_for(actor, conversation)
    if grant is None:
        raise forbidden()
    use_grant(grant, "record_view", conversation, actor=actor)
    query = (
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.id > after_id)
        .order_by(Message.id)
        .limit(min(max(limit, 1), PAGE_SIZE_MAX))
    )
    return list(db.session.scalars(query))


def find_or_create_chat_account(agent: User, platform: str, handle: str) -> ChatAccount:
    """The agent's own account row for `handle` on `platform`; another agent's row is never returned.
    Looked up first: it exists for all but an agent's first message on an account, and a read is cheaper
    than an insert that does nothing."""
    query = select(ChatAccount).where(ChatAccount.tenant_id == agent.tenant_id, ChatAccount.agent_id == agent.id,
                                      ChatAccount.platform == platform, ChatAccount.handle == handle)
    found = db.session.scalars(query).first()
    if found is not None:
        return found
    insert_if_absent(ChatAccount, {"tenant_id": agent.tenant_id, "agent_id": agent.id, "platform": platform,
                                   "handle": handle, "created_at": utcnow()})
    return db.session.scalars(query).one()


def legacy_customer_ref(tenant_id: int, raw_customer_id: str) -> str | None:
    """The ref a conversation made before the master key existed holds: keyed by the instance's secret key
    (docs/security.md). None when there is no secret key to make it with."""
    secret = current_app.config.get("SECRET_KEY")
    return customer_ref(secret, tenant_id, raw_customer_id) if secret else None


def refs_of(secret: bytes | str, tenant_id: int, raw_customer_id: str) -> tuple[str, ...]:
    """Every ref the customer's conversation may be stored under: the current one, then the legacy one."""
    ref = customer_ref(secret, tenant_id, raw_customer_id)
    legacy = legacy_customer_ref(tenant_id, raw_customer_id)
    return (ref,) if legacy is None or legacy == ref else (ref, legacy)


def find_or_create_conversation(secret: str, account: ChatAccount, raw_customer_id: str) -> Conversation:
    """The customer's identifier is turned into a keyed ref here and never stored as given.

    Two devices logging a new customer at once both end up with the one row. A conversation stored under
    the legacy ref is re-keyed the first time its customer is seen again, so upgrading does not split a
    customer's history in two (its pseudonym becomes the one the extension computes from the new ref).
    """
    ref, *legacy = refs_of(secret, account.tenant_id, raw_customer_id)
    found = db.session.scalars(select(Conversation).where(Conversation.chat_account_id == account.id,
                                                          Conversation.customer_ref == ref)).first()
    if found is not None:
        return found
    if legacy:
        db.session.execute(update(Conversation).where(
            Conversation.chat_account_id == account.id, Conversation.customer_ref == legacy[0],
        ).values(customer_ref=ref, customer_pseudonym=customer_pseudonym(ref))
            .execution_options(synchronize_session="fetch"))
    insert_if_absent(Conversation, {
        "tenant_id": account.tenant_id, "chat_account_id": account.id, "agent_id": account.agent_id,
        "customer_ref": ref, "customer_pseudonym": customer_pseudonym(ref), "started_at": utcnow(),
    })
    return db.session.scalars(
        select(Conversation).where(Conversation.chat_account_id == account.id, Conversation.customer_ref == ref)
    ).one()


def pseudonyms_for(secret: str, tenant_id: int, device_id: int, identifiers: object) -> dict[str, str]:
    """The pseudonym each customer identifier is known by in this tenant (`客户-7F3AK9`), for the extension
    to show a customer named by their number under the same name the panel uses. Nothing is stored."""
    if not isinstance(identifiers, list) or not 0 < len(identifiers) <= MAX_PSEUDONYM_LOOKUPS:
        raise ApiError(400, "invalid_value", _("Ask for 1 to %(n)d identifiers at a time.", n=MAX_PSEUDONYM_LOOKUPS),
                       field="identifiers")
    if not all(isinstance(i, str) and 0 < len(i) <= MAX_IDENTIFIER_LENGTH and i.isprintable() and
               not any("\ud800" <= ch <= "\udfff" for ch in i) for i in identifiers):
        raise ApiError(400, "invalid_value", _("Each identifier must be text of 1 to %(n)d characters.",
                                               n=MAX_IDENTIFIER_LENGTH), field="identifiers")
    wait = pseudonym_lookups.take(device_id, len(identifiers))
    if wait:
        seconds = whole_seconds(wait)
        raise ApiError(429, "rate_limited", _("Too many lookups. Try again in %(n)d seconds.", n=seconds),
                       retry_after=seconds)
    return {i: customer_pseudonym(customer_ref(secret, tenant_id, i)) for i in identifiers}
