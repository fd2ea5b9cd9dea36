"""Interventions: a supervisor's reply, written in the panel, sent from the agent's console.

The way of one reply (docs/protocol.md, "Intervention"):
1. `create_intervention` (a staff member who may read the conversation) stores it `queued`;
   `backend.realtime` hands it to the agent's connected devices as `/agent` `intervene`, and to devices
   that connect later while it is still open.
2. A device that has it says so (`delivered`). A content script that finds the conversation open in its
   console (`resolve_chats` tells it which logged conversation the open chat is) claims it (`sending`):
   only one device may, so two browsers of one agent never both send it. It then puts the text in the
   composer, sends it, and reports `sent` or `failed`.
3. The outgoing message the console then shows is logged with `intervention_id`; ingest attributes it
   to the supervisor (`attribute_message`) only when the claim, the conversation and the text agree.
Open replies expire after `EXPIRES_AFTER`, so an agent who comes back hours later is not made to send
something stale.

Nothing here emits to sockets: changes are announced with the signals below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from blinker import Namespace
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select, update

from backend.errors import ApiError, forbidden, not_found
from backend.extensions import db
from backend.models import ChatAccount, Conversation, Device, Message, User
from backend.models.base import utcnow
from backend.models.interventions import (
    DELIVERED,
    EXPIRED,
    FAILED,
    MAX_ERROR_CHARS,
    MAX_TEXT_CHARS,
    OPEN_STATUSES,
    QUEUED,
    SENT,
    Intervention,
)
from backend.security.policy import STAFF
from backend.security.rate_limit import TokenBuckets, whole_seconds
from backend.services import vault
from backend.services.audit import record_audit
from backend.services.conversations import refs_of
from backend.services.rule_sets import compiled_payload, current_rule_set
from backend.services.visibility import can_read_message_text, get_visible_conversation

EXPIRES_AFTER = timedelta(minutes=10)
# Per supervisor: a burst of replies, then one every few seconds. More is not a person typing.
creations = TokenBuckets(rate=1 / 3, burst=10)
# Per device: a console asks when its open chat changes; far faster is someone trying identifiers.
chat_lookups = TokenBuckets(rate=5, burst=50)
MAX_RESOLVE_CHATS = 20
MAX_NAME_CHARS = 200
# What a device may report about an intervention (`sending` is its claim).
REPORTS = ("delivered", "sending", "sent", "failed")

_signals = Namespace()
# sender: the Intervention just stored (before the commit); `backend.realtime` delivers it.
intervention_created = _signals.signal("intervention-created")
# sender: an Intervention whose status or attribution changed (before the commit).
intervention_changed = _signals.signal("intervention-changed")


# ---- the panel's side -----------------------------------------------------------------------------

def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be %(expected)s.", name="text",
                                            expected=_("a string")), field="text")
    if len(text) > MAX_TEXT_CHARS:
        raise ApiError(400, "too_long", _("The field '%(name)s' is longer than %(n)d.", name="text",
                                          n=MAX_TEXT_CHARS), field="text")
    if "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text):
        raise ApiError(400, "invalid_text", _("The field '%(name)s' is not valid Unicode text.", name="text"),
                       field="text")
    if not text.strip():
        raise ApiError(400, "missing_field", _("The field '%(name)s' is required.", name="text"), field="text")
    return text.strip()


def create_intervention(actor: User, conversation_id: int, text: object, *, remote_addr: str = "") -> Intervention:
    """A reply for the agent's console, written by `actor`. Scope: 404 for another tenant's conversation,
    403 outside the actor's departments or without the right to read its messages."""
    if not STAFF.allows(actor.role):
        raise forbidden()
    conversation = get_visible_conversation(actor, conversation_id)
    if not can_read_message_text(actor, conversation):
        raise forbidden()
    text = _check_text(text)
    wait = creations.take(actor.id, 1)
    if wait:
        seconds = whole_seconds(wait)
        raise ApiError(429, "rate_limited", _("Too many replies. Try again in %(n)d seconds.", n=seconds),
                       retry_after=seconds)
    now = utcnow()
    row = Intervention(tenant_id=conversation.tenant_id, conversation_id=conversation.id,
                       agent_id=conversation.agent_id, author_id=actor.id,
                       text=vault.protect(conversation.tenant_id, text), status=QUEUED,
                       created_at=now, expires_at=now + EXPIRES_AFTER)
    db.session.add(row)
    db.session.flush()
    record_audit("intervention.create", actor=actor, target_type="intervention", target_id=row.id,
                 details={"conversation_id": conversation.id, "agent_id": conversation.agent_id,
                          "length": len(text)}, remote_addr=remote_addr)
    intervention_created.send(row)
    return row


def interventions_for_conversation(actor: User, conversation: Conversation, *, limit: int = 50) -> list[Intervention]:
    """The latest replies written for a conversation, oldest first (the caller checked the scope)."""
    if not can_read_message_text(actor, conversation):
        raise forbidden()
    expire_due(agent_id=conversation.agent_id)
    rows = db.session.scalars(select(Intervention).where(Intervention.conversation_id == conversation.id)
                              .order_by(Intervention.id.desc()).limit(limit))
    return list(reversed(list(rows)))


def expire_due(*, agent_id: int, now: datetime | None = None) -> list[Intervention]:
    """Open replies of one agent past their time become `expired` (each announced once)."""
    now = now or utcnow()
    due = list(db.session.scalars(select(Intervention).where(
        Intervention.agent_id == agent_id, Intervention.status.in_(OPEN_STATUSES), Intervention.expires_at <= now)))
    expired = []
    for row in due:
        # Conditional, so a racing claim or a second server process expires it once.
        done = db.session.execute(update(Intervention).where(
            Intervention.id == row.id, Intervention.status.in_(OPEN_STATUSES)).values(status=EXPIRED))
        if done.rowcount:
            db.session.refresh(row)
            intervention_changed.send(row)
            expired.append(row)
    return expired


def expire_all_due(now: datetime | None = None) -> int:
    """`veil serve`'s minute loop: every agent's replies past their time expire, so the author sees it
    even if no device of that agent ever connects again."""
    now = now or utcnow()
    agent_ids = db.session.scalars(select(Intervention.agent_id).where(
        Intervention.status.in_(OPEN_STATUSES), Intervention.expires_at <= now).distinct()).all()
    return sum(len(expire_due(agent_id=agent_id, now=now)) for agent_id in agent_ids)


# ---- the device's side ----------------------------------------------------------------------------

def open_for_device(device: Device) -> list[Intervention]:
    """What a connecting device of the agent should have: open replies nobody has claimed. A claimed one
    is not handed out again, not even to its claimer: that browser may have sent it just before its
    worker stopped, and a reply sent twice is worse than one that expires."""
    expire_due(agent_id=device.agent_id)
    return list(db.session.scalars(select(Intervention).where(
        Intervention.tenant_id == device.tenant_id, Intervention.agent_id == device.agent_id,
        Intervention.status.in_(OPEN_STATUSES), Intervention.device_id.is_(None),
    ).order_by(Intervention.id)))


def intervene_payload(row: Intervention) -> dict:
    """`/agent` `intervene`: what the extension needs to find the chat and send the reply."""
    conversation = row.conversation
    return {
        "id": row.id,
        "conversation": {
            "id": conversation.id,
            "platform": conversation.chat_account.platform,
            "account": conversation.chat_account.handle,
            "customer_pseudonym": conversation.customer_pseudonym,
        },
        # The agent's console sends it to the customer: the one place stored text goes out in clear.
        "text": vault.reveal_text(row.tenant_id, row.text),
        "expires_at": row.expires_at.isoformat(),
    }


@dataclass(frozen=True)
class StatusReport:
    intervention_id: int
    status: str
    error: str | None


def read_report(payload: object) -> StatusReport:
    """`/agent` `intervention_status`: {id, status, error?}."""
    if not isinstance(payload, dict):
        raise ApiError(400, "wrong_type", _("Send an object."))
    ident = payload.get("id")
    if isinstance(ident, bool) or not isinstance(ident, int) or not 0 < ident < 2**31:
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be a number.", name="id"), field="id")
    status = payload.get("status")
    if status not in REPORTS:
        raise ApiError(400, "invalid_value", _("The field '%(name)s' has a value Veil does not accept.",
                                               name="status"), field="status")
    error = payload.get("error")
    if error is not None and not isinstance(error, str):
        raise ApiError(400, "wrong_type", _("The field '%(name)s' must be %(expected)s.", name="error",
                                            expected=_("a string")), field="error")
    if error is not None:
        error = "".join(ch for ch in error if ch.isprintable() and not "\ud800" <= ch <= "\udfff")
        error = error[:MAX_ERROR_CHARS] or None
    return StatusReport(ident, status, error)


def report_status(device: Device, payload: object) -> dict:
    """A device says where an intervention of its agent stands. Answers {status, claimed}."""
    report = read_report(payload)
    row = db.session.get(Intervention, report.intervention_id)
    if row is None or row.tenant_id != device.tenant_id or row.agent_id != device.agent_id:
        raise not_found(_("intervention"))
    expire_due(agent_id=device.agent_id)
    now = utcnow()
    mine = or_(Intervention.device_id.is_(None), Intervention.device_id == device.id)
    values: dict
    if report.status == "delivered":
        # Any device of the agent: the reply reached the agent's browser.
        condition = and_(Intervention.status == QUEUED)
        values = {"status": DELIVERED, "delivered_at": now}
    elif report.status == "sending":
        # The claim: one device only, and only while the reply is open. Claiming again changes nothing.
        condition = and_(Intervention.status.in_(OPEN_STATUSES), Intervention.expires_at > now,
                         Intervention.device_id.is_(None))
        values = {"status": DELIVERED, "device_id": device.id,
                  "delivered_at": row.delivered_at or now}
    elif report.status == "sent":
        condition = and_(Intervention.status == DELIVERED, Intervention.device_id == device.id)
        values = {"status": SENT, "sent_at": now, "error": None}
    else:
        condition = and_(Intervention.status.in_(OPEN_STATUSES), mine)
        values = {"status": FAILED, "device_id": device.id, "error": report.error}
    done = db.session.execute(update(Intervention).where(Intervention.id == row.id, condition).values(**values))
    db.session.refresh(row)
    if done.rowcount:
        intervention_changed.send(row)
    claimed = (report.status == "sending" and row.device_id == device.id and row.status == DELIVERED
               and row.expires_at > now)
    return {"status": row.status, "claimed": claimed}


def _same_text(a: str, b: str) -> bool:
    """Consoles may trim or re-wrap what was typed; the words must be the same."""
    return " ".join(a.split()) == " ".join(b.split())


def attribute_message(device: Device, conversation_id: int, message_id: int, text: str, intervention_id: int) -> bool:
    """An outgoing message logged with `intervention_id`: it becomes the supervisor's only if this device
    claimed that intervention, for this conversation, with this text, and no message has it yet.
    `text` is the message as stored (protected), like the intervention's.
    A forged, foreign or reused id leaves the message the agent's."""
    row = db.session.scalar(select(Intervention).where(
        Intervention.id == intervention_id, Intervention.tenant_id == device.tenant_id,
        Intervention.agent_id == device.agent_id, Intervention.conversation_id == conversation_id,
        Intervention.device_id == device.id, Intervention.message_id.is_(None),
        Intervention.status.in_((DELIVERED, SENT, FAILED))))
    if row is None or not _same_text(row.text, text):
        return False
    now = utcnow()
    done = db.session.execute(update(Intervention).where(
        Intervention.id == row.id, Intervention.message_id.is_(None),
    ).values(message_id=message_id, status=SENT, sent_at=row.sent_at or now, error=None))
    if not done.rowcount:
        return False  # another message took it first
    db.session.execute(update(Message).where(Message.id == message_id).values(author_user_id=row.author_id))
    db.session.refresh(row)
    intervention_changed.send(row)
    return True


def _platforms(device: Device) -> dict[str, str]:
    """Console profile id → platform, as ingest files chat accounts (`ingest._Batch.platform`)."""
    payload, _text = compiled_payload(current_rule_set(device.agent.tenant))
    return {p["id"]: p["platform"] for p in payload.get("consoles") or []
            if isinstance(p, dict) and isinstance(p.get("id"), str) and isinstance(p.get("platform"), str)}


def _name(chat: dict, name: str, *, required: bool) -> str | None:
    value = chat.get(name)
    if value is None or (value == "" and name == "account"):
        if required:
            raise ApiError(400, "missing_field", _("The field '%(name)s' is required.", name=f"chats.{name}"),
                           field=f"chats.{name}")
        return None
    if (not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_CHARS or "\x00" in value
            or any("\ud800" <= ch <= "\udfff" for ch in value)):
        raise ApiError(400, "invalid_value", _("Each identifier must be text of 1 to %(n)d characters.",
                                               n=MAX_NAME_CHARS), field=f"chats.{name}")
    return value


def resolve_chats(secret: str, device: Device, payload: object) -> list[int | None]:
    """Which of this device's agent's logged conversations each chat is, the way ingest would file it
    (chat account by platform and handle, customer by keyed hash), without storing anything. A chat
    the agent never logged is None; another agent's conversations are never found."""
    chats = payload.get("chats") if isinstance(payload, dict) else None
    if not isinstance(chats, list) or not 0 < len(chats) <= MAX_RESOLVE_CHATS:
        raise ApiError(400, "invalid_value", _("Ask for 1 to %(n)d chats at a time.", n=MAX_RESOLVE_CHATS),
                       field="chats")
    if not all(isinstance(chat, dict) for chat in chats):
        raise ApiError(400, "wrong_type", _("Each chat must be an object."), field="chats")
    read = [(_name(c, "console", required=True), _name(c, "account", required=False) or "",
             _name(c, "key", required=True), _name(c, "customer", required=False)) for c in chats]
    wait = chat_lookups.take(device.id, len(read))
    if wait:
        seconds = whole_seconds(wait)
        raise ApiError(429, "rate_limited", _("Too many lookups. Try again in %(n)d seconds.", n=seconds),
                       retry_after=seconds)
    platforms = _platforms(device)
    found: list[int | None] = []
    for console, account, key, customer in read:
        refs = refs_of(secret, device.tenant_id, customer or key)
        found.append(db.session.scalar(
            select(Conversation.id).join(ChatAccount, ChatAccount.id == Conversation.chat_account_id).where(
                ChatAccount.tenant_id == device.tenant_id, ChatAccount.agent_id == device.agent_id,
                ChatAccount.platform == platforms.get(console, console)[:32], ChatAccount.handle == account,
                Conversation.customer_ref.in_(refs)).limit(1)))
    return found
