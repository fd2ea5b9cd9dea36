"""Numbers for the Home overview and the Statistics page: messages, conversations, response times and
rule hits per agent, department and period, with days and hours in a time zone the reader picks.

Statistics are counts and durations, never message text, so they do not go through
`visibility.can_read_message_text`; they do keep to the actor's scope (`visible_agent_ids_query`):
a supervisor counts the agents of their departments, an agent only themselves.

How things are counted (the pages repeat this under "How these are counted"):
- A *response start* is a customer ("in") message that opens the conversation or follows an agent
  ("out") message; more customer messages before the reply do not restart the clock. Its *response
  time* runs to the next "out" message of the conversation, whoever wrote it (the agent, or a supervisor
  writing into the agent's conversation). It counts in the period, hour and weekday of the customer's
  message, even when the reply came later.
- A *first response* is the first response start of each conversation within a period of the grouping
  (a day, week or month; on Home, the day).
- *Answered within target*: first responses answered within the target time, out of those that are
  *due*: answered, or waiting longer than the target. A customer still inside the target is not counted.
- *Sensitive hits*: outgoing messages the server's check would block or warn about (`server_check`),
  plus `send_blocked` events (sends the extension stopped, which never became messages). Edits are not
  counted. *Per 100 messages*: hits per 100 outgoing messages of the same period and group.
- *Conversations handled*: conversations with at least one outgoing message in the period.
- Days, weeks (from Monday), months, hours and weekdays are those of the chosen time zone.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import gettext as _
from sqlalchemy import BigInteger, Integer, and_, case, cast, extract, func, literal_column, or_, select
from sqlalchemy.orm import aliased

from backend.errors import ApiError, forbidden, not_found
from backend.extensions import db
from backend.models import BehaviourEvent, Conversation, Department, Device, Message, User, department_members
from backend.models.base import utcnow
from backend.services.live import ONLINE_WINDOW
from backend.services.spreadsheets import spreadsheet_safe
from backend.services.visibility import get_user_in_tenant, sees_whole_tenant, visible_agent_ids_query

GROUPS = ("agent", "department")
PERIODS = ("day", "week", "month")
DEFAULT_TARGET_MINUTES = 5
MAX_TARGET_MINUTES = 24 * 60
MAX_DAYS = 366
DEFAULT_DAYS = 14
HIT_ACTIONS = ("block", "warn")
SEND_BLOCKED = "send_blocked"
OVERVIEW_EVENTS = {"send_blocked": "blocked_sends", "message_deleted": "deleted_messages",
                   "message_edited": "edited_messages"}
# Messages are counted in SQL per quarter hour of UTC, and Python puts each quarter into its local day
# and hour: SQLite knows no time zones, and every zone's offset today is a whole number of quarters.
SLOT_SECONDS = 900
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EARLIEST, _LATEST = date(2000, 1, 1), date(2999, 12, 31)


# ---- what was asked ---------------------------------------------------------------------------------

def bad_parameter(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message, parameter=name)


def read_time_zone(name: str | None) -> ZoneInfo:
    """An IANA zone name ("Asia/Shanghai"); none given means UTC."""
    if not name:
        return ZoneInfo("UTC")
    if len(name) > 64:
        raise bad_parameter("tz", _("Unknown time zone. Use an IANA name such as Asia/Shanghai."))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise bad_parameter("tz", _("Unknown time zone. Use an IANA name such as Asia/Shanghai.")) from exc


def read_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        if not _DATE.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise bad_parameter(name, _("'%(name)s' must be a date written YYYY-MM-DD.", name=name)) from exc
    if not _EARLIEST <= day <= _LATEST:
        raise bad_parameter(name, _("'%(name)s' must be a date between 2000 and 2999.", name=name))
    return day


def read_int(args: Mapping[str, str], name: str, *, low: int = 1, high: int = 2**31 - 1) -> int | None:
    raw = args.get(name)
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"\d{1,10}", raw) or not low <= int(raw) <= high:
        raise bad_parameter(name, _("'%(name)s' must be a whole number from %(low)d to %(high)d.",
                                    name=name, low=low, high=high))
    return int(raw)


def read_choice(args: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = args.get(name) or choices[0]
    if value not in choices:
        raise bad_parameter(name, _("'%(name)s' must be one of: %(choices)s.", name=name,
                                    choices=", ".join(choices)))
    return value


@dataclass(frozen=True)
class StatisticsQuery:
    """One Statistics question: the days `start`..`end` (both included) in `tz`, grouped and filtered."""

    start: date
    end: date
    tz: ZoneInfo
    group_by: str = "agent"
    period: str = "day"
    department_id: int | None = None
    agent_id: int | None = None
    target_minutes: int = DEFAULT_TARGET_MINUTES

    @property
    def target(self) -> timedelta:
        return timedelta(minutes=self.target_minutes)

    def to_dict(self) -> dict:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "tz": self.tz.key,
                "group_by": self.group_by, "period": self.period, "department": self.department_id,
                "agent": self.agent_id, "target_minutes": self.target_minutes}

    def to_args(self) -> dict:
        """The same question as URL parameters (for the CSV link), without the empty ones."""
        return {k: v for k, v in self.to_dict().items() if v is not None}


def read_query(args: Mapping[str, str], *, now: datetime | None = None) -> StatisticsQuery:
    """The Statistics parameters from a query string; anything malformed is a 400 naming the parameter.

    With no dates, the last 14 days up to today in `tz`.
    """
    tz = read_time_zone(args.get("tz"))
    today = (now or utcnow()).astimezone(tz).date()
    end = read_day(args.get("to"), "to") or today
    start = read_day(args.get("from"), "from") or max(end - timedelta(days=DEFAULT_DAYS - 1), _EARLIEST)
    if start > end:
        raise bad_parameter("from", _("'from' must not be after 'to'."))
    if (end - start).days + 1 > MAX_DAYS:
        raise bad_parameter("to", _("Ask for at most %(n)d days at a time.", n=MAX_DAYS))
    return StatisticsQuery(
        start=start, end=end, tz=tz,
        group_by=read_choice(args, "group_by", GROUPS),
        period=read_choice(args, "period", PERIODS),
        department_id=read_int(args, "department"),
        agent_id=read_int(args, "agent"),
        target_minutes=read_int(args, "target_minutes", high=MAX_TARGET_MINUTES) or DEFAULT_TARGET_MINUTES,
    )


# ---- whose numbers ----------------------------------------------------------------------------------

@dataclass
class Scope:
    """The agents whose numbers are counted and the departments the actor may group them by."""

    agents: dict[int, str]  # id -> display name
    departments: dict[int, str]  # id -> name
    memberships: dict[int, list[int]]  # agent id -> their departments among `departments`


def resolve_scope(actor: User, *, department_id: int | None = None, agent_id: int | None = None) -> Scope:
    """Agents in the actor's scope, narrowed by the filters: another tenant's department or agent is
    not found (404), one outside the actor's scope is forbidden (403)."""
    visible = dict(db.session.execute(
        select(User.id, User.display_name).where(User.tenant_id == actor.tenant_id,
                                                 User.id.in_(visible_agent_ids_query(actor)))
        .order_by(User.display_name, User.id)).all())
    agents = dict(visible)
    # Supervisors and agents group by their own departments, never by one they cannot see.
    if sees_whole_tenant(actor):
        departments = {d.id: d.name for d in actor.tenant.departments}
    else:
        departments = {d.id: d.name for d in actor.departments}
    if department_id is not None:
        department = db.session.get(Department, department_id)
        if department is None or department.tenant_id != actor.tenant_id:
            raise not_found(_("department"))
        if department.id not in departments:
            raise forbidden()
        members = set(db.session.scalars(select(department_members.c.user_id)
                                          .where(department_members.c.department_id == department.id)))
        agents = {k: v for k, v in agents.items() if k in members}
        departments = {department.id: department.name}
    if agent_id is not None:
        agent = get_user_in_tenant(actor, agent_id)
        if agent.id not in visible:
            raise forbidden()
        agents = {k: v for k, v in agents.items() if k == agent.id}
    memberships: dict[int, list[int]] = {agent: [] for agent in agents}
    if agents and departments:
        for user_id, dept_id in db.session.execute(
                select(department_members.c.user_id, department_members.c.department_id).where(
                    department_members.c.user_id.in_(list(agents)),
                    department_members.c.department_id.in_(list(departments)))
                .order_by(department_members.c.department_id)):
            memberships[user_id].append(dept_id)
    return Scope(agents=agents, departments=departments, memberships=memberships)


# ---- facts from the database ------------------------------------------------------------------------

def _slot(column):
    """The quarter hour (as a number since 1970, UTC) an instant falls in, in either database."""
    width = literal_column(str(SLOT_SECONDS))  # a literal, so GROUP BY sees one expression on PostgreSQL
    if db.session.get_bind().dialect.name == "sqlite":
        # Stored as "YYYY-MM-DD HH:MM:SS.ffffff" in UTC; '%s' reads it as seconds since 1970.
        return cast(func.strftime("%s", column), Integer) / width
    return cast(func.floor(extract("epoch", column) / width), BigInteger)


def _slot_start(slot: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, tz)


def message_slots(tenant_id: int, agent_ids: list[int], lo: datetime, hi: datetime) -> list:
    """(agent, conversation, direction, is a hit, quarter hour, messages) for messages in [lo, hi)."""
    action = Message.server_check["action"].as_string()
    hit = case((and_(Message.direction == "out", action.in_(HIT_ACTIONS)), 1), else_=0)
    inner = (
        select(Conversation.agent_id.label("agent_id"), Message.conversation_id.label("conversation_id"),
               Message.direction.label("direction"), hit.label("hit"), _slot(Message.sent_at).label("slot"))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.tenant_id == tenant_id, Conversation.tenant_id == tenant_id,
               Conversation.agent_id.in_(agent_ids), Message.sent_at >= lo, Message.sent_at < hi)
        .subquery()
    )
    columns = (inner.c.agent_id, inner.c.conversation_id, inner.c.direction, inner.c.hit, inner.c.slot)
    return db.session.execute(select(*columns, func.count()).group_by(*columns)).all()


def blocked_slots(tenant_id: int, agent_ids: list[int], lo: datetime, hi: datetime) -> list:
    """(agent, quarter hour, send_blocked events) in [lo, hi)."""
    inner = (
        select(BehaviourEvent.agent_id.label("agent_id"), _slot(BehaviourEvent.occurred_at).label("slot"))
        .where(BehaviourEvent.tenant_id == tenant_id, BehaviourEvent.agent_id.in_(agent_ids),
               BehaviourEvent.type == SEND_BLOCKED,
               BehaviourEvent.occurred_at >= lo, BehaviourEvent.occurred_at < hi)
        .subquery()
    )
    return db.session.execute(select(inner.c.agent_id, inner.c.slot, func.count())
                              .group_by(inner.c.agent_id, inner.c.slot)).all()


@dataclass(frozen=True)
class Start:
    """A customer message that starts the clock, and when the next outgoing message answered it."""

    agent_id: int
    conversation_id: int
    at: datetime
    answered_at: datetime | None


def response_starts(tenant_id: int, agent_ids: list[int], lo: datetime, hi: datetime) -> list[Start]:
    """Response starts with their customer message in [lo, hi), in time order. The message before and
    the reply after may lie outside the range; both are found through the (conversation, sent_at) index.
    Messages at the same instant are ordered by id, as they were stored."""
    before, reply = aliased(Message), aliased(Message)
    previous_direction = (
        select(before.direction)
        .where(before.conversation_id == Message.conversation_id,
               or_(before.sent_at < Message.sent_at, and_(before.sent_at == Message.sent_at, before.id < Message.id)))
        .order_by(before.sent_at.desc(), before.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    answered_at = (
        select(func.min(reply.sent_at))
        .where(reply.conversation_id == Message.conversation_id, reply.direction == "out",
               or_(reply.sent_at > Message.sent_at, and_(reply.sent_at == Message.sent_at, reply.id > Message.id)))
        .scalar_subquery()
    )
    inner = (
        select(Conversation.agent_id.label("agent_id"), Message.conversation_id.label("conversation_id"),
               Message.sent_at.label("at"), Message.id.label("id"), previous_direction.label("previous"),
               answered_at.label("answered_at"))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.tenant_id == tenant_id, Conversation.tenant_id == tenant_id,
               Conversation.agent_id.in_(agent_ids), Message.direction == "in",
               Message.sent_at >= lo, Message.sent_at < hi)
        .subquery()
    )
    rows = db.session.execute(
        select(inner.c.agent_id, inner.c.conversation_id, inner.c.at, inner.c.answered_at)
        .where(or_(inner.c.previous.is_(None), inner.c.previous == "out"))
        .order_by(inner.c.at, inner.c.id)
    ).all()
    return [Start(*row) for row in rows]


# ---- adding up ----------------------------------------------------------------------------------------

def _average(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return round(value, 1)


@dataclass
class Tally:
    """What one cell of the answer adds up: a period and group, an hour of the day, a weekday…"""

    conversations: set[int] = field(default_factory=set)
    messages_in: int = 0
    messages_out: int = 0
    hits: int = 0
    responses: list[float] = field(default_factory=list)
    first_responses: list[float] = field(default_factory=list)
    first_due: int = 0
    first_within: int = 0

    def busy(self) -> bool:
        return bool(self.messages_in or self.messages_out or self.hits or self.responses or self.first_due)

    def metrics(self) -> dict:
        return {
            "conversations": len(self.conversations),
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "first_responses": len(self.first_responses),
            "first_response_avg_s": _average(self.first_responses),
            "first_response_median_s": _median(self.first_responses),
            "responses": len(self.responses),
            "response_avg_s": _average(self.responses),
            "response_median_s": _median(self.responses),
            "first_responses_due": self.first_due,
            "answered_within_target": self.first_within,
            "within_target_pct": round(100 * self.first_within / self.first_due, 1) if self.first_due else None,
            "hits": self.hits,
            "hits_per_100": round(100 * self.hits / self.messages_out, 2) if self.messages_out else None,
        }


def merge(tallies: Iterable[Tally]) -> Tally:
    """Several cells as one (weekdays into "weekday"); a conversation in two of them counts once."""
    total = Tally()
    for tally in tallies:
        total.conversations |= tally.conversations
        total.messages_in += tally.messages_in
        total.messages_out += tally.messages_out
        total.hits += tally.hits
        total.responses += tally.responses
        total.first_responses += tally.first_responses
        total.first_due += tally.first_due
        total.first_within += tally.first_within
    return total


def add_messages(tallies: Iterable[Tally], conversation_id: int, direction: str, hit: int, count: int) -> None:
    for tally in tallies:
        if direction == "out":
            tally.messages_out += count
            tally.conversations.add(conversation_id)
            tally.hits += count if hit else 0
        else:
            tally.messages_in += count


def add_start(tallies: Iterable[Tally], start: Start, *, first: bool, as_of: datetime, target: timedelta) -> None:
    """A reply after `as_of` has not happened yet as far as this count is concerned."""
    answered = start.answered_at is not None and start.answered_at <= as_of
    wait = (start.answered_at - start.at) if answered else None
    for tally in tallies:
        if wait is not None:
            tally.responses.append(wait.total_seconds())
        if not first:
            continue
        if wait is not None:
            tally.first_responses.append(wait.total_seconds())
            tally.first_due += 1
            tally.first_within += wait <= target
        elif as_of - start.at > target:
            tally.first_due += 1


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def period_start(day: date, period: str) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def period_label(key: date, period: str) -> str:
    if period == "week":
        year, week, _weekday = key.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return key.strftime("%Y-%m")
    return key.isoformat()


class StatisticsCount:
    """Adds facts up into every cell they belong to: (period, group), period, group, everything,
    hour of day, weekday and weekday-or-weekend. An agent in two departments counts in both
    department rows, but once in every other cell."""

    def __init__(self, tenant_id: int, query: StatisticsQuery, scope: Scope):
        self.tenant_id = tenant_id
        self.query = query
        self.scope = scope
        self.rows: dict[tuple[date, int | None], Tally] = {}
        self.periods: dict[date, Tally] = {}
        day = query.start
        while day <= query.end:
            self.periods.setdefault(period_start(day, query.period), Tally())
            day += timedelta(days=1)
        self.groups: dict[int | None, Tally] = {g: Tally() for g in self.group_keys()}
        self.overall = Tally()
        self.hours = [Tally() for _hour in range(24)]
        self.weekdays = [Tally() for _day in range(7)]

    def group_keys(self) -> list[int | None]:
        if self.query.group_by == "agent":
            return list(self.scope.agents)
        keys: list[int | None] = [d for d in self.scope.departments
                                  if any(d in m for m in self.scope.memberships.values())]
        if any(not m for m in self.scope.memberships.values()):
            keys.append(None)  # agents in no department (only those who see the whole tenant meet them)
        return keys

    def groups_of(self, agent_id: int) -> list[int | None]:
        if self.query.group_by == "agent":
            return [agent_id]
        return self.scope.memberships.get(agent_id) or [None]

    def cells(self, agent_id: int, at: datetime) -> Iterator[Tally]:
        local = at.astimezone(self.query.tz)
        period = period_start(local.date(), self.query.period)
        for group in self.groups_of(agent_id):
            yield self.rows.setdefault((period, group), Tally())
            yield self.groups[group]
        yield self.periods[period]
        yield self.overall
        yield self.hours[local.hour]
        yield self.weekdays[local.weekday()]

    def add_facts(self, *, now: datetime) -> None:
        query, agent_ids = self.query, list(self.scope.agents)
        if not agent_ids:
            return
        tenant_id = self.tenant_id
        lo, hi = local_midnight(query.start, query.tz), local_midnight(query.end + timedelta(days=1), query.tz)
        for agent_id, conversation_id, direction, hit, slot, count in message_slots(tenant_id, agent_ids, lo, hi):
            at = _slot_start(slot, query.tz)
            add_messages(self.cells(agent_id, at), conversation_id, direction, hit, count)
        for agent_id, slot, count in blocked_slots(tenant_id, agent_ids, lo, hi):
            for tally in self.cells(agent_id, _slot_start(slot, query.tz)):
                tally.hits += count
        seen: set[tuple[int, date]] = set()
        for start in response_starts(tenant_id, agent_ids, lo, hi):
            key = (start.conversation_id, period_start(start.at.astimezone(query.tz).date(), query.period))
            first = key not in seen
            seen.add(key)
            add_start(self.cells(start.agent_id, start.at), start, first=first, as_of=now, target=query.target)

    def group_name(self, key: int | None) -> str:
        if self.query.group_by == "agent":
            return self.scope.agents[key]
        return self.scope.departments[key] if key is not None else _("No department")

    def answer(self) -> dict:
        period = self.query.period
        group_order = {g: n for n, g in enumerate(self.groups)}
        days = {"weekday": 0, "weekend": 0}
        day = self.query.start
        while day <= self.query.end:
            days["weekend" if day.weekday() >= 5 else "weekday"] += 1
            day += timedelta(days=1)
        day_types = []
        for kind, weekdays in (("weekday", range(5)), ("weekend", range(5, 7))):
            tally = merge(self.weekdays[d] for d in weekdays)
            metrics = tally.metrics()
            day_types.append({"day_type": kind, "days": days[kind], **metrics,
                              "messages_per_day": round((metrics["messages_in"] + metrics["messages_out"])
                                                        / days[kind], 1) if days[kind] else None})
        return {
            "query": self.query.to_dict(),
            "periods": [{"period": k.isoformat(), "label": period_label(k, period)} for k in self.periods],
            "groups": [{"group_id": g, "group_name": self.group_name(g), **t.metrics()}
                       for g, t in self.groups.items()],
            "rows": [{"period": p.isoformat(), "label": period_label(p, period), "group_id": g,
                      "group_name": self.group_name(g), **t.metrics()}
                     for (p, g), t in sorted(self.rows.items(), key=lambda item: (item[0][0], group_order[item[0][1]]))
                     if t.busy()],
            "totals": [{"period": k.isoformat(), "label": period_label(k, period), **t.metrics()}
                       for k, t in self.periods.items()],
            "overall": self.overall.metrics(),
            "hours": [{"hour": h, **t.metrics()} for h, t in enumerate(self.hours)],
            "weekdays": [{"weekday": d, **t.metrics()} for d, t in enumerate(self.weekdays)],
            "day_types": day_types,
        }


def statistics(actor: User, query: StatisticsQuery, *, now: datetime | None = None) -> dict:
    """The Statistics answer for `query` within the actor's scope (see the module docstring)."""
    scope = resolve_scope(actor, department_id=query.department_id, agent_id=query.agent_id)
    count = StatisticsCount(actor.tenant_id, query, scope)
    count.add_facts(now=now or utcnow())
    return count.answer()


# ---- Home -----------------------------------------------------------------------------------------------

def overview(actor: User, *, day: date | None = None, tz: ZoneInfo | None = None, now: datetime | None = None,
             target_minutes: int = DEFAULT_TARGET_MINUTES) -> dict:
    """A day's numbers beside the day before's. For today that is "so far today" against yesterday up to
    the same time of day, so a morning is not compared with a whole day; a past day is compared whole."""
    tz = tz or ZoneInfo("UTC")
    now = now or utcnow()
    today = now.astimezone(tz).date()
    day = day or today
    start, next_start = local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)
    previous_start = local_midnight(day - timedelta(days=1), tz)
    so_far = start <= now < next_start
    if so_far:
        # Yesterday as it stood at this time: replies sent later had not been sent yet.
        end, previous_end = now, min(previous_start + (now - start), start)
        known, previously_known = now, previous_end
    else:
        end, previous_end = next_start, start
        known = previously_known = now
    agent_ids = list(db.session.scalars(select(User.id).where(User.tenant_id == actor.tenant_id,
                                                              User.id.in_(visible_agent_ids_query(actor)))))
    target = timedelta(minutes=target_minutes)
    counts = _window_counts(actor.tenant_id, agent_ids, start, end, target, as_of=known)
    before = _window_counts(actor.tenant_id, agent_ids, previous_start, previous_end, target,
                            as_of=previously_known)
    online = 0
    if agent_ids:
        online = db.session.scalar(select(func.count(func.distinct(Device.agent_id))).where(
            Device.tenant_id == actor.tenant_id, Device.agent_id.in_(agent_ids), Device.revoked_at.is_(None),
            Device.last_seen_at >= now - ONLINE_WINDOW)) or 0
    return {
        "day": day.isoformat(),
        "tz": tz.key,
        "so_far": so_far,
        "as_of": now.isoformat(),
        "target_minutes": target_minutes,
        "agents": len(agent_ids),
        "agents_online": online,
        "figures": {key: {"today": value, "yesterday": before[key], **change(value, before[key])}
                    for key, value in counts.items()},
    }


def change(now_value: float | None, before: float | None) -> dict:
    """The difference and the percentage change; no percentage from nothing."""
    if now_value is None or before is None:
        return {"change": None, "change_pct": None}
    diff = round(now_value - before, 1)
    return {"change": diff, "change_pct": round(100 * diff / before, 1) if before else None}


def _window_counts(tenant_id: int, agent_ids: list[int], lo: datetime, hi: datetime, target: timedelta, *,
                   as_of: datetime) -> dict:
    """Home's figures for the instants [lo, hi), counted as the Statistics page counts them; replies and
    waits as they stood at `as_of`."""
    counts = {"sensitive_hits": 0, "blocked_sends": 0, "deleted_messages": 0, "edited_messages": 0,
              "new_devices": 0, "conversations": 0, "messages_in": 0, "messages_out": 0,
              "first_response_median_s": None, "first_response_avg_s": None, "within_target_pct": None}
    if not agent_ids or hi <= lo:
        return counts
    in_window = (Message.tenant_id == tenant_id, Conversation.tenant_id == tenant_id,
                 Conversation.agent_id.in_(agent_ids), Message.sent_at >= lo, Message.sent_at < hi)
    action = Message.server_check["action"].as_string()
    for direction, total, hits in db.session.execute(
            select(Message.direction, func.count(),
                   func.sum(case((and_(Message.direction == "out", action.in_(HIT_ACTIONS)), 1), else_=0)))
            .join(Conversation, Conversation.id == Message.conversation_id).where(*in_window)
            .group_by(Message.direction)):
        counts[f"messages_{direction}"] = total
        counts["sensitive_hits"] += hits or 0
    counts["conversations"] = db.session.scalar(
        select(func.count(func.distinct(Message.conversation_id)))
        .join(Conversation, Conversation.id == Message.conversation_id).where(*in_window)) or 0
    for kind, total in db.session.execute(
            select(BehaviourEvent.type, func.count())
            .where(BehaviourEvent.tenant_id == tenant_id, BehaviourEvent.agent_id.in_(agent_ids),
                   BehaviourEvent.type.in_(OVERVIEW_EVENTS), BehaviourEvent.occurred_at >= lo,
                   BehaviourEvent.occurred_at < hi)
            .group_by(BehaviourEvent.type)):
        counts[OVERVIEW_EVENTS[kind]] = total
    counts["sensitive_hits"] += counts["blocked_sends"]
    counts["new_devices"] = db.session.scalar(
        select(func.count(Device.id)).where(Device.tenant_id == tenant_id, Device.agent_id.in_(agent_ids),
                                            Device.enrolled_at >= lo, Device.enrolled_at < hi)) or 0
    tally, seen = Tally(), set()
    for start in response_starts(tenant_id, agent_ids, lo, hi):
        add_start((tally,), start, first=start.conversation_id not in seen, as_of=as_of, target=target)
        seen.add(start.conversation_id)
    metrics = tally.metrics()
    for key in ("first_response_median_s", "first_response_avg_s", "within_target_pct"):
        counts[key] = metrics[key]
    return counts


# ---- CSV ------------------------------------------------------------------------------------------------

def csv_columns() -> list[tuple[str, str]]:
    return [
        ("period", _("Period")),
        ("label", _("Period label")),
        ("group_id", _("Group id")),
        ("group_name", _("Group")),
        ("conversations", _("Conversations handled")),
        ("messages_in", _("Messages in")),
        ("messages_out", _("Messages out")),
        ("first_responses", _("First responses")),
        ("first_response_avg_s", _("Average first response (s)")),
        ("first_response_median_s", _("Median first response (s)")),
        ("responses", _("Responses")),
        ("response_avg_s", _("Average response (s)")),
        ("response_median_s", _("Median response (s)")),
        ("first_responses_due", _("First responses due")),
        ("answered_within_target", _("Answered within target")),
        ("within_target_pct", _("Within target (%)")),
        ("hits", _("Sensitive hits")),
        ("hits_per_100", _("Hits per 100 outgoing messages")),
    ]


def statistics_csv(answer: dict) -> str:
    """The "By period" table as CSV, with a byte-order mark so spreadsheet programs read it as UTF-8."""
    columns = csv_columns()
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([title for _key, title in columns])
    for row in answer["rows"]:
        writer.writerow([spreadsheet_safe(row[key]) for key, _title in columns])
    return buffer.getvalue()
