"""Behaviour reports: the events a supervisor reviews, each with the messages around it, and per-agent counts.

Scope is the actor's: another tenant's event, agent, department or conversation is "not found" (404), one
outside the actor's departments is "forbidden" (403). Chat text inside an event (a blocked message, an edit
of a message nobody logged) and the messages shown around it pass `visibility.can_read_message_text`; when
it says no, the text is left out and `text_hidden` says so.

The review moves an event between three statuses:

    new ──▶ confirmed ◀──▶ dismissed        confirmed / dismissed ──▶ new (reopened)

Leaving "new" needs no note; changing a decision already taken (to the other status, or back to "new")
needs one, so the history says why. Each move is written to the audit trail, which is the history.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import selectinload

from backend.errors import ApiError, forbidden, not_found
from backend.extensions import db
from backend.models import AuditLogEntry, BehaviourEvent, Conversation, Department, Message, User
from backend.models.base import iso, utcnow
from backend.models.behaviour import (
    DEVICE_REVOKED_BY_AGENT,
    EXTENSION_REMOVED,
    HEARTBEAT_MISSING,
    HEARTBEAT_RESUMED,
    MESSAGE_DELETED,
    MESSAGE_EDITED,
    NEW_DEVICE,
    REPORTED_KINDS,
    REVIEW_STATUSES,
    SERVER_RULE_HIT,
)
from backend.models.tenancy import department_members
from backend.services import vault
from backend.services.audit import record_audit
from backend.services.grants import use_grant
from backend.services.rule_sets import engine_for_tenant
from backend.services.visibility import (
    can_read_message_text,
    can_see_agent,
    get_user_in_tenant,
    get_visible_conversation,
    private_grant_for,
    sees_whole_tenant,
    visible_agent_ids_query,
)

BEHAVIOUR_TYPES = (
    *REPORTED_KINDS,
    MESSAGE_EDITED,
    MESSAGE_DELETED,
    SERVER_RULE_HIT,
    NEW_DEVICE,
    DEVICE_REVOKED_BY_AGENT,
    EXTENSION_REMOVED,
    HEARTBEAT_MISSING,
    HEARTBEAT_RESUMED,
)
PAGE_SIZE = 50
PAGE_SIZE_MAX = 200
CONTEXT_MESSAGES = 5  # shown before and after the event's message (or its time)
MAX_NOTE_CHARS = 2_000
# `details` keys that hold chat text (ingest: a blocked or warned message; an edit or deletion of a message
# that was never logged). The agent's typed reason is addressed to the supervisor and stays visible.
TEXT_DETAILS = ("text", "previous_text")
# Reported kinds whose `details.text` is what the agent tried to send: highlighted with the current rules.
CHECKED_KINDS = ("send_blocked", "send_warned", "contact_request")
TRANSITIONS = {
    ("new", "confirmed"), ("new", "dismissed"),
    ("confirmed", "dismissed"), ("dismissed", "confirmed"),
    ("confirmed", "new"), ("dismissed", "new"),
}
REVIEW_ACTION = "behaviour.review"
SUMMARY_SORTS = ("agent", "total", *REVIEW_STATUSES)
CURSOR = re.compile(r"(\d{1,20})-(\d{1,20})")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---- reading filters -----------------------------------------------------------------------------

@dataclass(frozen=True)
class EventFilters:
    types: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    agent_id: int | None = None
    department_id: int | None = None
    conversation_id: int | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def _invalid(name: str) -> ApiError:
    return ApiError(400, "invalid_value", _("The parameter '%(name)s' has a value Veil does not accept.",
                                            name=name), field=name)


def _values(args, name: str) -> list[str]:
    """`?type=a&type=b` and `?type=a,b` alike; empty values (a form's "any") are ignored."""
    values = args.getlist(name) if hasattr(args, "getlist") else [args.get(name) or ""]
    return [v.strip() for raw in values for v in str(raw).split(",") if v.strip()]


def _choices(args, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = _values(args, name)
    if len(values) > len(allowed) or any(v not in allowed for v in values):
        raise _invalid(name)
    return tuple(dict.fromkeys(values))


def read_id(args, name: str) -> int | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(400, "wrong_type", _("The parameter '%(name)s' must be a number.", name=name), field=name)
    return int(raw)


def parse_time(raw: str | None, name: str, *, end: bool = False) -> datetime | None:
    """An ISO 8601 date or time; without a zone it is UTC. A date alone as an end means the whole day."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            value = datetime(day.year, day.month, day.day, tzinfo=UTC) + (timedelta(days=1) if end else timedelta())
        else:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise ApiError(400, "invalid_value", _("The parameter '%(name)s' must be a date (YYYY-MM-DD) or an "
                                               "ISO 8601 time.", name=name), field=name) from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_filters(args: Mapping) -> EventFilters:
    """The filters of the list, from query parameters (API) or the panel's filter form."""
    filters = EventFilters(
        types=_choices(args, "type", BEHAVIOUR_TYPES),
        statuses=_choices(args, "status", REVIEW_STATUSES),
        agent_id=read_id(args, "agent"),
        department_id=read_id(args, "department"),
        conversation_id=read_id(args, "conversation"),
        since=parse_time(args.get("since"), "since"),
        until=parse_time(args.get("until"), "until", end=True),
    )
    return filters


def read_limit(args: Mapping) -> int:
    raw = (args.get("limit") or "").strip()
    if not raw:
        return PAGE_SIZE
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= PAGE_SIZE_MAX:
        raise ApiError(400, "invalid_value", _("The parameter '%(name)s' must be a number from 1 to %(n)d.",
                                               name="limit", n=PAGE_SIZE_MAX), field="limit")
    return int(raw)


# ---- scope ---------------------------------------------------------------------------------------

def get_visible_event(actor: User, event_id: int) -> BehaviourEvent:
    event = db.session.get(BehaviourEvent, event_id)
    if event is None or event.tenant_id != actor.tenant_id:
        raise not_found(_("behaviour event"))
    if not can_see_agent(actor, event.agent):
        raise forbidden()
    return event


def get_visible_department(actor: User, department_id: int) -> Department:
    department = db.session.get(Department, department_id)
    if department is None or department.tenant_id != actor.tenant_id:
        raise not_found(_("department"))
    if not sees_whole_tenant(actor) and department.id not in actor.department_ids:
        raise forbidden()
    return department


def visible_departments(actor: User) -> list[Department]:
    if sees_whole_tenant(actor):
        return list(actor.tenant.departments)
    return list(actor.departments)


def visible_agents(actor: User) -> list[User]:
    return list(db.session.scalars(
        select(User).where(User.id.in_(visible_agent_ids_query(actor))).order_by(User.display_name, User.id)))


def _agents_of_department(department_id: int):
    return select(department_members.c.user_id).where(department_members.c.department_id == department_id)


# ---- the list ------------------------------------------------------------------------------------

@dataclass
class EventPage:
    events: list[BehaviourEvent]
    next_cursor: str | None
    readable: dict[int, bool] = field(default_factory=dict)  # conversation id -> may its text be shown


def encode_cursor(event: BehaviourEvent) -> str:
    micros = (event.occurred_at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{event.id}"


def decode_cursor(raw: str | None) -> tuple[datetime, int] | None:
    if not raw:
        return None
    match = CURSOR.fullmatch(raw)
    try:
        if match is None:
            raise ValueError(raw)
        return EPOCH + timedelta(microseconds=int(match.group(1))), int(match.group(2))
    except (ValueError, OverflowError) as exc:
        raise ApiError(400, "invalid_cursor", _("The paging cursor is not one this server gave out."),
                       field="cursor") from exc


def list_events(actor: User, filters: EventFilters, cursor: str | None = None,
                limit: int = PAGE_SIZE) -> EventPage:
    """Newest first, `limit` at a time; pass `next_cursor` back as `cursor` for the next page (None: the end).

    Paging is by (occurred_at, id), so events recorded while someone pages do not shift the pages.
    """
    query = select(BehaviourEvent).where(BehaviourEvent.tenant_id == actor.tenant_id,
                                         BehaviourEvent.agent_id.in_(visible_agent_ids_query(actor)))
    if filters.types:
        query = query.where(BehaviourEvent.type.in_(filters.types))
    if filters.statuses:
        query = query.where(BehaviourEvent.status.in_(filters.statuses))
    if filters.agent_id is not None:
        agent = get_user_in_tenant(actor, filters.agent_id)
        if not can_see_agent(actor, agent):
            raise forbidden()
        query = query.where(BehaviourEvent.agent_id == agent.id)
    if filters.department_id is not None:
        department = get_visible_department(actor, filters.department_id)
        query = query.where(BehaviourEvent.agent_id.in_(_agents_of_department(department.id)))
    if filters.conversation_id is not None:
        conversation = get_visible_conversation(actor, filters.conversation_id)
        query = query.where(BehaviourEvent.conversation_id == conversation.id)
    if filters.since is not None:
        query = query.where(BehaviourEvent.occurred_at >= filters.since)
    if filters.until is not None:
        query = query.where(BehaviourEvent.occurred_at < filters.until)
    position = decode_cursor(cursor)
    if position is not None:
        at, event_id = position
        query = query.where(or_(BehaviourEvent.occurred_at < at,
                                and_(BehaviourEvent.occurred_at == at, BehaviourEvent.id < event_id)))
    limit = min(max(limit, 1), PAGE_SIZE_MAX)
    rows = list(db.session.scalars(
        query.options(selectinload(BehaviourEvent.agent), selectinload(BehaviourEvent.reviewed_by))
        .order_by(BehaviourEvent.occurred_at.desc(), BehaviourEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, encode_cursor(rows[-1]) if more else None, readable_conversations(actor, rows))


def readable_conversations(actor: User, events: list[BehaviourEvent]) -> dict[int, bool]:
    ids = {e.conversation_id for e in events if e.conversation_id is not None}
    if not ids:
        return {}
    conversations = db.session.scalars(select(Conversation).where(Conversation.id.in_(ids),
                                                                  Conversation.tenant_id == actor.tenant_id))
    return {c.id: can_read_message_text(actor, c) for c in conversations}


def event_dict(event: BehaviourEvent, readable: dict[int, bool]) -> dict:
    """An event as the API and the panel show it. Chat text in `details` only where it may be read: an event
    tied to no conversation has no one to ask, so its text stays hidden (fail closed)."""
    may_read = readable.get(event.conversation_id, False) if event.conversation_id is not None else False
    details = vault.display_details(dict(event.details or {}))  # stored protected: identifiers as hints
    hidden = False
    if not may_read:
        for key in TEXT_DETAILS:
            if key in details:
                del details[key]
                hidden = True
    reviewer = event.reviewed_by
    return {
        "id": event.id,
        "type": event.type,
        "agent": {"id": event.agent.id, "display_name": event.agent.display_name},
        "device_id": event.device_id,
        "conversation_id": event.conversation_id,
        "occurred_at": iso(event.occurred_at),
        "received_at": iso(event.received_at),
        "details": details,
        "text_hidden": hidden,
        "status": event.status,
        "review_note": event.review_note,
        "reviewed_by": {"id": reviewer.id, "display_name": reviewer.display_name} if reviewer else None,
        "reviewed_at": iso(event.reviewed_at),
    }


# ---- one event, with its messages ----------------------------------------------------------------

def _spans(findings: object, text: str) -> list[dict]:
    """Engine findings (code-point offsets) as sorted, non-overlapping spans within `text`."""
    spans: list[dict] = []
    if not isinstance(findings, list):
        return spans
    candidates = []
    for f in findings:
        if not isinstance(f, dict):
            continue
        start, end = f.get("start"), f.get("end")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
            candidates.append((start, end, str(f.get("rule") or ""), str(f.get("category") or "")))
    for start, end, rule, category in sorted(candidates):
        if spans and start < spans[-1]["end"]:
            spans[-1]["end"] = max(spans[-1]["end"], end)
            continue
        spans.append({"start": start, "end": end, "rule": rule, "category": category})
    return spans


def _message_dict(message: Message, readable: bool, *, focus: bool, revision_id: int | None) -> dict:
    revisions = []
    for r in message.revisions:
        # Stored findings point into the shown text (backend/services/vault.py, `protect_checked`).
        shown = vault.display(r.text)
        item: dict = {"id": r.id, "kind": r.kind, "at": iso(r.occurred_at), "text": shown if readable else None}
        if readable and focus and r.id == revision_id and r.server_check:
            item["spans"] = _spans(r.server_check.get("findings"), shown)
        revisions.append(item)
    text = vault.display(message.text)
    spans = (_spans(message.server_check.get("findings"), text)
             if readable and focus and revision_id is None and message.server_check else [])
    return {
        "id": message.id,
        "direction": message.direction,
        "sent_at": iso(message.sent_at),
        "author_user_id": message.author_user_id,
        "edited_at": iso(message.edited_at),
        "deleted_at": iso(message.deleted_at),
        "text": text if readable else None,
        "spans": spans,
        "revisions": revisions,
        "focus": focus,
    }


def _event_message(event: BehaviourEvent) -> Message | None:
    """The message the event names, when it is the event's own (same tenant and conversation)."""
    message_id = (event.details or {}).get("message_id")
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        return None
    message = db.session.get(Message, message_id)
    if message is None or message.tenant_id != event.tenant_id:
        return None
    if event.conversation_id is not None and message.conversation_id != event.conversation_id:
        return None
    return message


def _around(conversation_id: int, before: tuple, after: tuple) -> tuple[list[Message], list[Message]]:
    """CONTEXT_MESSAGES messages before and after a point, each given as conditions on (sent_at, id)."""
    base = select(Message).where(Message.conversation_id == conversation_id)
    earlier = list(db.session.scalars(base.where(or_(*before))
                                      .order_by(Message.sent_at.desc(), Message.id.desc()).limit(CONTEXT_MESSAGES)))
    later = list(db.session.scalars(base.where(or_(*after))
                                    .order_by(Message.sent_at, Message.id).limit(CONTEXT_MESSAGES)))
    return earlier[::-1], later


def message_context(actor: User, event: BehaviourEvent) -> dict:
    """The conversation around the event: the message it names with the ones before and after it, or the
    messages before and after the moment it happened. Text only where `can_read_message_text` allows."""
    message = _event_message(event)
    conversation_id = message.conversation_id if message else event.conversation_id
    conversation = db.session.get(Conversation, conversation_id) if conversation_id is not None else None
    if conversation is None or conversation.tenant_id != actor.tenant_id:
        return {"conversation": None, "messages": [], "text_hidden": False, "focus_message_id": None}
    grant = private_grant_for(actor, conversation)
    readable = grant is not None
    if grant is not None:
        use_grant(grant, "report_view", conversation, actor=actor)
    revision_id = (event.details or {}).get("revision_id")
    revision_id = revision_id if isinstance(revision_id, int) and not isinstance(revision_id, bool) else None
    if message is not None:
        earlier, later = _around(
            conversation.id,
            (Message.sent_at < message.sent_at, and_(Message.sent_at == message.sent_at, Message.id < message.id)),
            (Message.sent_at > message.sent_at, and_(Message.sent_at == message.sent_at, Message.id > message.id)))
        shown = [*earlier, message, *later]
    else:
        earlier, later = _around(conversation.id, (Message.sent_at <= event.occurred_at,),
                                 (Message.sent_at > event.occurred_at,))
        shown = [*earlier, *later]
    return {
        "conversation": conversation.to_dict(),
        "messages": [_message_dict(m, readable, focus=m is message, revision_id=revision_id) for m in shown],
        "text_hidden": not readable and bool(shown),
        "focus_message_id": message.id if message else None,
        # Where the event's own time falls when no message is named: after this many messages.
        "event_position": None if message else len(earlier),
    }


def checked_text(event: BehaviourEvent, shown: dict) -> dict | None:
    """What the agent tried to send (a blocked or warned message), highlighted with the tenant's current rules:
    the event keeps only the rule that fired, not where. None when there is no such text or it is hidden."""
    text = shown["details"].get("text")
    if event.type not in CHECKED_KINDS or not isinstance(text, str) or not text:
        return None
    tenant_engine = engine_for_tenant(event.agent.tenant)
    with tenant_engine.lock:  # no conversation: the split-number window is left alone
        result = tenant_engine.engine.check(text, direction="out")
    return {"text": text, "spans": _spans([f.to_dict() for f in result.findings], text)}


def event_detail(actor: User, event: BehaviourEvent) -> dict:
    readable = readable_conversations(actor, [event])
    shown = event_dict(event, readable)
    return {
        "event": shown,
        "checked_text": checked_text(event, shown),
        "context": message_context(actor, event),
        "history": review_history(event),
        "transitions": [to for to in REVIEW_STATUSES if (event.status, to) in TRANSITIONS],
    }


# ---- the review ----------------------------------------------------------------------------------

def review_event(actor: User, event: BehaviourEvent, status: str, note: str | None, *,
                 expected_status: str | None = None, remote_addr: str = "") -> BehaviourEvent:
    """Move the event to `status` with an optional note (required when changing a decision). Flushes only.

    `expected_status` is the status the reviewer saw: if someone moved the event since, the review is refused
    (409) rather than silently overwriting theirs. Two reviews at once: the conditional UPDATE lets one win.
    """
    if status not in REVIEW_STATUSES:
        raise ApiError(400, "invalid_status", _("The status must be one of: %(statuses)s.",
                                                statuses=", ".join(REVIEW_STATUSES)), field="status")
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise ApiError(400, "too_long", _("The field '%(name)s' is longer than %(n)d.", name="note",
                                          n=MAX_NOTE_CHARS), field="note")
    current = event.status
    if expected_status is not None and expected_status != current:
        raise ApiError(409, "review_conflict", _("Someone else reviewed this event meanwhile. Reload the page."))
    if (current, status) not in TRANSITIONS:
        raise ApiError(409, "invalid_transition", _("An event that is %(current)s cannot be marked %(status)s.",
                                                    current=current, status=status), field="status")
    if current != "new" and note is None:
        raise ApiError(400, "note_required", _("Say in a note why the earlier decision changes."), field="note")
    now = utcnow()
    changed = db.session.execute(
        update(BehaviourEvent)
        .where(BehaviourEvent.id == event.id, BehaviourEvent.status == current)
        .values(status=status, review_note=note, reviewed_by_id=actor.id, reviewed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise ApiError(409, "review_conflict", _("Someone else reviewed this event meanwhile. Reload the page."))
    db.session.expire(event)
    record_audit(REVIEW_ACTION, actor=actor, target_type="behaviour_event", target_id=event.id,
                 details={"from": current, "to": status, "note": note}, remote_addr=remote_addr)
    return event


def review_history(event: BehaviourEvent) -> list[dict]:
    """Every review of the event, oldest first, from the audit trail (who, when, from, to, note)."""
    rows = db.session.execute(
        select(AuditLogEntry, User)
        .outerjoin(User, User.id == AuditLogEntry.actor_user_id)
        .where(AuditLogEntry.tenant_id == event.tenant_id, AuditLogEntry.action == REVIEW_ACTION,
               AuditLogEntry.target_type == "behaviour_event", AuditLogEntry.target_id == str(event.id))
        .order_by(AuditLogEntry.id)
    ).all()
    return [{"by": {"id": user.id, "display_name": user.display_name} if user else None,
             "at": iso(entry.created_at), "from": entry.details.get("from"), "to": entry.details.get("to"),
             "note": entry.details.get("note")} for entry, user in rows]


# ---- per-agent summary ---------------------------------------------------------------------------

@dataclass
class Summary:
    rows: list[dict]
    types: list[str]  # the types counted in the period, in BEHAVIOUR_TYPES order


def read_summary_args(args: Mapping) -> dict:
    """The summary's period, department and order from query parameters: `since`, `until`, `department`,
    `sort` (total, agent, a status or a type) and `order` (desc|asc; counts default to most first)."""
    sort = (args.get("sort") or "total").strip()
    if sort not in SUMMARY_SORTS and sort not in BEHAVIOUR_TYPES:
        raise _invalid("sort")
    order = (args.get("order") or ("asc" if sort == "agent" else "desc")).strip()
    if order not in ("asc", "desc"):
        raise _invalid("order")
    return {"since": parse_time(args.get("since"), "since"), "until": parse_time(args.get("until"), "until", end=True),
            "department_id": read_id(args, "department"), "sort": sort, "descending": order == "desc"}


def agent_summary(actor: User, *, since: datetime | None = None, until: datetime | None = None,
                  department_id: int | None = None, sort: str = "total", descending: bool = True) -> Summary:
    """Per visible agent (with none too): events in [since, until) by type and by status, sorted."""
    agents_query = select(User).where(User.id.in_(visible_agent_ids_query(actor)))
    counts_query = (
        select(BehaviourEvent.agent_id, BehaviourEvent.type, BehaviourEvent.status, func.count(BehaviourEvent.id))
        .where(BehaviourEvent.tenant_id == actor.tenant_id,
               BehaviourEvent.agent_id.in_(visible_agent_ids_query(actor)))
        .group_by(BehaviourEvent.agent_id, BehaviourEvent.type, BehaviourEvent.status)
    )
    if department_id is not None:
        department = get_visible_department(actor, department_id)
        agents_query = agents_query.where(User.id.in_(_agents_of_department(department.id)))
        counts_query = counts_query.where(BehaviourEvent.agent_id.in_(_agents_of_department(department.id)))
    if since is not None:
        counts_query = counts_query.where(BehaviourEvent.occurred_at >= since)
    if until is not None:
        counts_query = counts_query.where(BehaviourEvent.occurred_at < until)
    rows = {
        agent.id: {"agent": {"id": agent.id, "display_name": agent.display_name, "email": agent.email},
                   "total": 0, "by_status": dict.fromkeys(REVIEW_STATUSES, 0), "by_type": {}}
        for agent in db.session.scalars(agents_query)
    }
    seen_types = set()
    for agent_id, kind, status, count in db.session.execute(counts_query):
        row = rows.get(agent_id)
        if row is None:
            continue
        row["total"] += count
        row["by_status"][status] = row["by_status"].get(status, 0) + count
        row["by_type"][kind] = row["by_type"].get(kind, 0) + count
        seen_types.add(kind)

    def key(row: dict):
        if sort == "agent":
            return (row["agent"]["display_name"].casefold(), row["agent"]["id"])
        if sort == "total":
            return row["total"]
        if sort in REVIEW_STATUSES:
            return row["by_status"][sort]
        return row["by_type"].get(sort, 0)

    # Sorting is stable (reverse too): equal counts stay in name order.
    ordered = sorted(rows.values(), key=lambda r: (r["agent"]["display_name"].casefold(), r["agent"]["id"]))
    ordered.sort(key=key, reverse=descending)
    types = [t for t in BEHAVIOUR_TYPES if t in seen_types] + sorted(seen_types - set(BEHAVIOUR_TYPES))
    return Summary(ordered, types)
