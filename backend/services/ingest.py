"""Ingest: event batches from a device's outbox, checked one event at a time and stored in one transaction.

Event protocol v1 is specified in docs/protocol.md (`/agent`, event `events`). In short: a batch is
`{"v": 1, "events": [...]}`; every event carries an id made on the device, and the answer lists the ids
stored now or before (`acked`) and the events that can never be stored (`errors`). A device writes only
into its own tenant and its own agent's chat accounts: nothing in an event can name another.

The work is split so the caller can retry the storing alone: `admit_batch` (flood control), `read_batch`
(shape and per-event checks), then `store_batch` (flushes, never commits).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from flask_babel import gettext as _
from sqlalchemy import or_, select

from backend.errors import ApiError
from backend.extensions import db
from backend.models import BehaviourEvent, Conversation, Device, Message, MessageRevision
from backend.models.base import insert_if_absent, utcnow
from backend.models.behaviour import MESSAGE_DELETED, MESSAGE_EDITED, REPORTED_KINDS, SERVER_RULE_HIT
from backend.security.identifiers import console_message_ref, identifier_key
from backend.security.rate_limit import TokenBuckets, whole_seconds
from backend.services import vault
from backend.services.conversations import find_or_create_chat_account, find_or_create_conversation
from backend.services.interventions import attribute_message
from backend.services.rule_sets import compiled_payload, current_rule_set, engine_for_tenant
from backend.services.signals import behaviour_recorded, message_changed, message_stored

PROTOCOL_VERSION = 1
MAX_BATCH_EVENTS = 100
MAX_TEXT_CHARS = 65_536  # message text, in code points
MAX_NAME_CHARS = 200  # account, conversation key, title and customer, message ids, rule names
MAX_REASON_CHARS = 1_000
MAX_DETAILS_BYTES = 4_096  # a behaviour event's `details`, encoded as JSON
MAX_DETAILS_DEPTH = 4
EVENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
CONSOLE_ID = re.compile(r"[a-z0-9_]{1,32}")
# Client times outside these (ms since 1970) are a broken clock or a forged event.
EARLIEST_MS = 946_684_800_000  # 2000-01-01
LATEST_MS = 4_102_444_800_000  # 2100-01-01
# Flood control per device: events per second sustained, and the burst an outbox may send after a
# day offline before it is slowed down.
FLOOD_RATE = 50
FLOOD_BURST = 500
# A batch that loses a race (PostgreSQL deadlock, SQLite busy) is rolled back and stored again.
STORE_ATTEMPTS = 3
EVENT_TYPES = ("message", "message_edited", "message_deleted", "behaviour")
DIRECTIONS = ("in", "out")
# What the server's re-check of an outgoing message must find before it records a behaviour event.
RULE_HIT_ACTIONS = ("block", "warn")

flood_control = TokenBuckets(FLOOD_RATE, FLOOD_BURST)


# ---- what a valid event becomes -----------------------------------------------------------------

@dataclass(frozen=True)
class Chat:
    """The conversation an event belongs to. The customer's identifier is only ever hashed."""

    key: str
    customer: str | None

    @property
    def customer_identifier(self) -> str:
        return self.customer or self.key


@dataclass(frozen=True)
class Source:
    """Where an event happened: the console, the agent's account on it and the conversation."""

    console: str
    account: str
    chat: Chat | None


@dataclass(frozen=True)
class NewMessage:
    id: str
    at: datetime
    source: Source
    message_id: str
    direction: str
    text: str
    sent_at: datetime
    # A supervisor's reply the extension sent (optional); ingest decides whether it is believed.
    intervention_id: int | None = None


@dataclass(frozen=True)
class MessageChange:
    """`kind` "edit" carries the new text; "delete" the last text seen, when the console still showed it."""

    id: str
    at: datetime
    source: Source
    message_id: str
    kind: str
    text: str | None
    previous_text: str | None


@dataclass(frozen=True)
class BehaviourReport:
    id: str
    at: datetime
    source: Source
    kind: str
    details: dict


@dataclass(frozen=True)
class Rejected:
    """An event that can never be stored; the device drops it from its outbox and logs it."""

    id: str | None
    error: str
    message: str
    field: str | None = None

    def to_dict(self) -> dict:
        answer = {"id": self.id, "error": self.error, "message": self.message}
        if self.field:
            answer["field"] = self.field
        return answer


Event = NewMessage | MessageChange | BehaviourReport


# ---- reading ------------------------------------------------------------------------------------

class EventError(Exception):
    def __init__(self, error: str, message: str, field: str | None = None):
        super().__init__(message)
        self.error, self.message, self.field = error, message, field


def _type_name(kind: type) -> str:
    return {str: _("a string"), int: _("a number"), dict: _("an object")}[kind]


def _wrong_type(name: str, kind: type) -> EventError:
    return EventError("wrong_type", _("The field '%(name)s' must be %(expected)s.", name=name,
                                      expected=_type_name(kind)), name)


def _missing(name: str) -> EventError:
    return EventError("missing_field", _("The field '%(name)s' is required.", name=name), name)


def _invalid(name: str) -> EventError:
    return EventError("invalid_value", _("The field '%(name)s' has a value Veil does not accept.", name=name), name)


def _check_text(value: str, name: str) -> None:
    """Stored text must be valid UTF-8 (no lone surrogates) and hold no NUL, which PostgreSQL refuses."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EventError("invalid_text", _("The field '%(name)s' is not valid Unicode text.", name=name),
                         name) from None
    if "\x00" in value:
        raise EventError("invalid_text", _("The field '%(name)s' is not valid Unicode text.", name=name), name)


def _string(data: dict, name: str, *, max_chars: int, required: bool = False, empty: bool = False,
            pattern: re.Pattern | None = None, label: str | None = None) -> str | None:
    label = label or name
    value = data.get(name)
    if value is None:
        if required:
            raise _missing(label)
        return None
    if not isinstance(value, str):
        raise _wrong_type(label, str)
    if len(value) > max_chars:
        raise EventError("too_long", _("The field '%(name)s' is longer than %(n)d.", name=label, n=max_chars),
                         label)
    _check_text(value, label)
    if not value and not empty:
        raise _missing(label) if required else _invalid(label)
    if pattern is not None and not pattern.fullmatch(value):
        raise _invalid(label)
    return value


def _time(data: dict, name: str, *, required: bool) -> datetime | None:
    value = data.get(name)
    if value is None:
        if required:
            raise _missing(name)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(name, int)
    if not EARLIEST_MS <= value <= LATEST_MS:
        raise _invalid(name)
    return datetime.fromtimestamp(value / 1000, UTC)


def _details(value) -> dict:
    """A small JSON object: bounded in depth and size, its strings valid text, its numbers finite."""
    if not isinstance(value, dict):
        raise _wrong_type("details", dict)

    def walk(item, depth: int) -> None:
        if depth > MAX_DETAILS_DEPTH:
            raise EventError("too_long", _("The field '%(name)s' is nested too deeply.", name="details"), "details")
        if isinstance(item, str):
            _check_text(item, "details")
        elif isinstance(item, float) and not math.isfinite(item):
            raise _invalid("details")
        elif isinstance(item, list):
            for element in item:
                walk(element, depth + 1)
        elif isinstance(item, dict):
            for key, element in item.items():
                _check_text(key, "details")
                walk(element, depth + 1)

    walk(value, 0)
    if len(json.dumps(value, ensure_ascii=False).encode("utf-8")) > MAX_DETAILS_BYTES:
        raise EventError("too_long", _("The field '%(name)s' is longer than %(n)d.", name="details",
                                       n=MAX_DETAILS_BYTES), "details")
    return value


def _source(data: dict, *, chat_required: bool) -> Source:
    console = _string(data, "console", max_chars=32, required=True, pattern=CONSOLE_ID)
    account = _string(data, "account", max_chars=MAX_NAME_CHARS, empty=True) or ""
    raw = data.get("conversation")
    if raw is None:
        if chat_required:
            raise _missing("conversation")
        return Source(console, account, None)
    if not isinstance(raw, dict):
        raise _wrong_type("conversation", dict)
    key = _string(raw, "key", max_chars=MAX_NAME_CHARS, required=True, label="conversation.key")
    # The title is usually the customer's name as the console shows it: checked, never stored.
    _string(raw, "title", max_chars=MAX_NAME_CHARS, empty=True, label="conversation.title")
    customer = _string(raw, "customer", max_chars=MAX_NAME_CHARS, label="conversation.customer")
    return Source(console, account, Chat(key, customer))


def _intervention_id(data: dict, direction: str) -> int | None:
    """Optional on an outgoing message: the supervisor's reply it was (docs/protocol.md, Intervention)."""
    value = data.get("intervention_id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type("intervention_id", int)
    if not 0 < value < 2**31 or direction != "out":
        raise _invalid("intervention_id")
    return value


def read_event(data) -> Event:
    """One event of a batch, or EventError saying which field is wrong. Unknown fields are ignored."""
    if not isinstance(data, dict):
        raise EventError("not_an_object", _("Each event must be an object."))
    event_id = data.get("id")
    if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
        raise EventError("invalid_id", _("An event id is 8 to 64 letters, digits, '-' or '_'."), "id")
    event_type = data.get("type")
    if event_type not in EVENT_TYPES:
        raise EventError("unknown_type", _("The field '%(name)s' has a value Veil does not accept.", name="type"),
                         "type")
    at = _time(data, "at", required=True)
    if event_type == "behaviour":
        source = _source(data, chat_required=False)
        kind = _string(data, "kind", max_chars=48, required=True)
        if kind not in REPORTED_KINDS:
            raise _invalid("kind")
        details = {"console": source.console}
        if source.account:
            details["account"] = source.account
        for name, limit in (("text", MAX_TEXT_CHARS), ("rule", MAX_NAME_CHARS), ("reason", MAX_REASON_CHARS)):
            value = _string(data, name, max_chars=limit, empty=True)
            if value is not None:
                details[name] = value
        if data.get("details") is not None:
            details["details"] = _details(data["details"])
        return BehaviourReport(event_id, at, source, kind, details)

    source = _source(data, chat_required=True)
    message_id = _string(data, "message_id", max_chars=MAX_NAME_CHARS, required=True)
    if event_type == "message":
        direction = data.get("direction")
        if direction not in DIRECTIONS:
            raise _missing("direction") if direction is None else _invalid("direction")
        text = _string(data, "text", max_chars=MAX_TEXT_CHARS, required=True, empty=True)
        sent_at = _time(data, "sent_at", required=False) or at
        return NewMessage(event_id, at, source, message_id, direction, text, sent_at,
                          _intervention_id(data, direction))
    if event_type == "message_edited":
        text = _string(data, "text", max_chars=MAX_TEXT_CHARS, required=True, empty=True)
        previous = _string(data, "previous_text", max_chars=MAX_TEXT_CHARS, empty=True)
        return MessageChange(event_id, at, source, message_id, "edit", text, previous)
    text = _string(data, "text", max_chars=MAX_TEXT_CHARS, empty=True)
    return MessageChange(event_id, at, source, message_id, "delete", text, None)


def read_batch(payload) -> list[Event | Rejected]:
    """The batch's events in order, each read or rejected. A batch of the wrong shape stores nothing."""
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise ApiError(400, "invalid_batch", _("Send events as {\"v\": 1, \"events\": [...]}."))
    version = payload.get("v")
    if isinstance(version, bool) or version != PROTOCOL_VERSION:
        raise ApiError(400, "unsupported_version",
                       _("This server speaks event protocol version %(n)d.", n=PROTOCOL_VERSION))
    if len(payload["events"]) > MAX_BATCH_EVENTS:
        raise ApiError(400, "too_many_events", _("At most %(n)d events in one batch.", n=MAX_BATCH_EVENTS))
    items: list[Event | Rejected] = []
    for data in payload["events"]:
        try:
            items.append(read_event(data))
        except EventError as err:
            raw_id = data.get("id") if isinstance(data, dict) else None
            shown_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
            items.append(Rejected(shown_id, err.error, err.message, err.field))
    return items


def admit_batch(device: Device, payload) -> None:
    """Flood control, before anything is read: a batch costs one token per event (a malformed one, one
    token); over the bucket it is refused whole."""
    events = payload.get("events") if isinstance(payload, dict) else None
    cost = min(len(events), MAX_BATCH_EVENTS) if isinstance(events, list) else 1
    wait = flood_control.take(device.id, cost)
    if wait:
        seconds = whole_seconds(wait)
        raise ApiError(429, "rate_limited",
                       _("Too many events from this device. Try again in %(n)d seconds.", n=seconds),
                       retry_after=seconds)


# ---- storing ------------------------------------------------------------------------------------

def store_batch(device: Device, items: list[Event | Rejected]) -> dict:
    """Store every valid event; an id stored before (a retry after a lost acknowledgement) is acked again."""
    batch = _Batch(device)
    acked, errors = [], []
    for item in items:
        if isinstance(item, Rejected):
            errors.append(item.to_dict())
            continue
        if isinstance(item, NewMessage):
            batch.store_message(item)
        elif isinstance(item, MessageChange):
            batch.store_change(item)
        else:
            batch.store_behaviour(item)
        acked.append(item.id)
    db.session.flush()
    return {"acked": acked, "errors": errors}


class _Batch:
    """One batch's writes for one device, remembering the accounts and conversations it has resolved."""

    def __init__(self, device: Device):
        self.device = device
        self.agent = device.agent
        self.secret = identifier_key()
        self.conversations: dict[tuple[str, str, str], Conversation] = {}
        self.platforms: dict[str, str] | None = None

    def platform(self, console: str) -> str:
        """The chat platform a console profile serves (Telegram's two web clients are one platform)."""
        if self.platforms is None:
            payload, _text = compiled_payload(current_rule_set(self.agent.tenant))
            self.platforms = {p["id"]: p["platform"] for p in payload.get("consoles") or []
                              if isinstance(p, dict) and isinstance(p.get("id"), str)
                              and isinstance(p.get("platform"), str)}
        return self.platforms.get(console, console)[:32]

    def conversation(self, source: Source) -> Conversation:
        assert source.chat is not None
        key = (source.console, source.account, source.chat.customer_identifier)
        if key not in self.conversations:
            account = find_or_create_chat_account(self.agent, self.platform(source.console), source.account)
            self.conversations[key] = find_or_create_conversation(self.secret, account,
                                                                  source.chat.customer_identifier)
        return self.conversations[key]

    def console_ref(self, message_id: str) -> str:
        return console_message_ref(self.secret, self.device.tenant_id, message_id)

    def is_console_message(self, message_id: str):
        """The row the console calls `message_id`: stored keyed, or as given before ids were keyed."""
        return Message.console_message_id.in_((self.console_ref(message_id), message_id))

    def owned(self, event_id: str) -> dict:
        return {"tenant_id": self.device.tenant_id, "device_id": self.device.id, "client_event_id": event_id}

    def store_message(self, event: NewMessage) -> None:
        conversation = self.conversation(event.source)
        stored = db.session.scalar(select(Message.id).where(or_(
            (Message.device_id == self.device.id) & (Message.client_event_id == event.id),
            (Message.conversation_id == conversation.id) & self.is_console_message(event.message_id),
        )).limit(1))
        if stored is not None:
            return  # a retry, or the row read again after a page reload
        # The server's check reads the clear text; only the protected text and check are stored.
        check = (server_check(self.agent.tenant, conversation, event.text, event.sent_at, window=True)
                 if event.direction == "out" else None)
        text, stored_check = vault.protect_checked(self.device.tenant_id, event.text, check)
        message_id = insert_if_absent(Message, {
            **self.owned(event.id), "conversation_id": conversation.id,
            "console_message_id": self.console_ref(event.message_id), "direction": event.direction, "text": text,
            "sent_at": event.sent_at, "received_at": utcnow(),
            "server_check": stored_check,
        })
        if message_id is None:
            return  # a racing copy of this batch stored it first
        if event.intervention_id is not None:
            attribute_message(self.device, conversation.id, message_id, text, event.intervention_id)
        if conversation.last_message_at is None or conversation.last_message_at < event.sent_at:
            conversation.last_message_at = event.sent_at
        message_stored.send(None, tenant_id=self.device.tenant_id, agent_id=self.device.agent_id,
                            conversation_id=conversation.id, message_id=message_id, direction=event.direction,
                            at=event.sent_at)
        if check is not None and check["action"] in RULE_HIT_ACTIONS:
            record_server_rule_hit(self.device, conversation.id, check, event.sent_at, message_id=message_id)

    def store_change(self, event: MessageChange) -> None:
        conversation = self.conversation(event.source)
        if db.session.scalar(select(MessageRevision.id).where(MessageRevision.device_id == self.device.id,
                                                             MessageRevision.client_event_id == event.id)):
            return
        message = db.session.scalars(select(Message).where(
            Message.conversation_id == conversation.id, self.is_console_message(event.message_id))).first()
        behaviour_type = MESSAGE_EDITED if event.kind == "edit" else MESSAGE_DELETED
        details: dict = {"console": event.source.console, "message_id": message.id if message else None}
        if message is None:
            # Changed before it was ever logged (or logged by no device of this agent): keep what we know.
            details.update({k: vault.protect(self.device.tenant_id, v)
                            for k, v in (("text", event.text), ("previous_text", event.previous_text))
                            if v is not None})
            self.add_behaviour(event.id, behaviour_type, conversation.id, details, event.at)
            return
        # Stored text is protected: the same text protects to the same tokens, so the two compare.
        current = next((r.text for r in reversed(message.revisions) if r.kind == "edit"), message.text)
        reported = vault.protect(self.device.tenant_id, event.text) if event.text is not None else None
        if (event.kind == "edit" and reported == current) or (event.kind == "delete" and message.deleted_at):
            return  # another device of the agent reported the same change
        check = (server_check(self.agent.tenant, conversation, event.text, event.at, window=False)
                 if event.kind == "edit" and message.direction == "out" else None)
        if check is not None:
            text, check = vault.protect_checked(self.device.tenant_id, event.text, check)
        else:
            text = reported if reported is not None else current
        revision_id = insert_if_absent(MessageRevision, {
            **self.owned(event.id), "message_id": message.id, "kind": event.kind, "text": text,
            "occurred_at": event.at, "received_at": utcnow(), "server_check": check,
        })
        if revision_id is None:
            return
        if event.kind == "edit":
            message.edited_at = event.at
        else:
            message.deleted_at = event.at
        db.session.expire(message, ["revisions"])
        message_changed.send(None, tenant_id=self.device.tenant_id, agent_id=self.device.agent_id,
                             conversation_id=conversation.id, message_id=message.id, revision_id=revision_id,
                             kind=event.kind, at=event.at)
        self.add_behaviour(event.id, behaviour_type, conversation.id, details, event.at)
        if check is not None and check["action"] in RULE_HIT_ACTIONS:
            record_server_rule_hit(self.device, conversation.id, check, event.at, message_id=message.id,
                                   revision_id=revision_id)

    def store_behaviour(self, event: BehaviourReport) -> None:
        conversation_id = self.conversation(event.source).id if event.source.chat else None
        details = vault.protect_details(self.device.tenant_id, event.details)
        self.add_behaviour(event.id, event.kind, conversation_id, details, event.at)

    def add_behaviour(self, event_id: str, kind: str, conversation_id: int | None, details: dict,
                      at: datetime) -> None:
        behaviour_id = insert_if_absent(BehaviourEvent, {
            **self.owned(event_id), "agent_id": self.device.agent_id, "conversation_id": conversation_id,
            "type": kind, "details": details, "occurred_at": at, "received_at": utcnow(),
        })
        if behaviour_id is not None:
            behaviour_recorded.send(None, tenant_id=self.device.tenant_id, agent_id=self.device.agent_id,
                                    conversation_id=conversation_id, event_id=behaviour_id, type=kind, at=at)


def server_check(tenant, conversation: Conversation, text: str, at: datetime, *, window: bool) -> dict:
    """The Python engine's verdict on outgoing text, whatever the extension decided before sending it.

    `window` feeds the conversation's split-number memory; an edit is checked on its own.
    """
    tenant_engine = engine_for_tenant(tenant)
    with tenant_engine.lock:
        result = tenant_engine.engine.check(text, conversation=str(conversation.id) if window else None,
                                            direction="out", at=at.timestamp())
    return {"action": result.action, "findings": [f.to_dict() for f in result.findings],
            "rules": tenant_engine.engine.version}


def record_server_rule_hit(device: Device, conversation_id: int, check: dict, at: datetime, *, message_id: int,
                           revision_id: int | None = None) -> BehaviourEvent:
    """The server's re-check found something to block or warn about in a message the agent sent.

    The one place a server-side rule hit is recorded; alerts (issue 5) start here. The findings' matched
    text stays on the message: the behaviour event names only the rules.
    """
    details = {
        "message_id": message_id,
        "action": check["action"],
        "rules": check["rules"],
        "findings": [{k: f[k] for k in ("type", "category", "rule")} for f in check["findings"]],
    }
    if revision_id is not None:
        details["revision_id"] = revision_id
    event = BehaviourEvent(tenant_id=device.tenant_id, agent_id=device.agent_id, device_id=device.id,
                           conversation_id=conversation_id, type=SERVER_RULE_HIT, details=details, occurred_at=at)
    db.session.add(event)
    db.session.flush()
    behaviour_recorded.send(None, tenant_id=event.tenant_id, agent_id=event.agent_id,
                            conversation_id=conversation_id, event_id=event.id, type=SERVER_RULE_HIT, at=at)
    return event
