"""Records: finding, reading and exporting messages and conversations within the actor's scope.

Search is keyset-paged newest first on (sent_at, id), so a deep page costs what the first one does and
rows arriving meanwhile neither repeat nor skip. Text of three characters or more is looked up in the
trigram indexes the records migration made (SQLite FTS5, PostgreSQL pg_trgm) over every version of a
message; shorter text cannot use trigrams and is matched row by row within the other filters.

Message text is shown, searched and exported only where `visibility.can_read_message_text` says so. A
text search never lists a row whose text the actor may not read, since the hit itself tells the text.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import Integer, Select, and_, column, exists, func, or_, select, union
from sqlalchemy import text as sql
from sqlalchemy.orm import aliased, joinedload

from backend.errors import ApiError, forbidden, not_found
from backend.extensions import db
from backend.models import ChatAccount, Conversation, Department, Message, MessageRevision, User, department_members
from backend.models.base import iso
from backend.models.chat import DIRECTIONS
from backend.services import vault
from backend.services.grants import PRIVATE, use_grant, use_grants, valid_grants
from backend.services.spreadsheets import spreadsheet_safe
from backend.services.visibility import (
    can_see_agent,
    get_user_in_tenant,
    get_visible_conversation,
    private_grant_for,
    sees_whole_tenant,
    visible_agent_ids_query,
)

TRIGRAM = 3  # the shortest text the trigram indexes can find
MAX_QUERY_CHARS = 200
MAX_PSEUDONYM_CHARS = 32
PAGE_SIZE = 50
PAGE_SIZE_MAX = 200
CONVERSATION_PAGE_SIZE = 100
# SQLite: a text with up to HIT_LOOKUP_FACTOR·√(messages) hits is searched by looking each hit up (see
# `hit_lookup_limit`); with more, by walking messages newest first.
HIT_LOOKUP_FACTOR = 3
HIT_LOOKUP_MIN = 1_000
FOCUS_CONTEXT = 5  # messages shown before the one a search result links to
EXPORT_MAX = 100_000
EXPORT_CHUNK = 1_000
MAX_ID = 2**31 - 1  # ids are 32-bit integers; a larger one is a typo, not a row
PSEUDONYM_PREFIX = "客户-"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = re.compile(r"(-?\d{1,17})\.(\d{1,10})")
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
LIKE_ESCAPE = "/"
EXPORT_FORMATS = {"csv": ("text/csv; charset=utf-8", "csv"), "jsonl": ("application/x-ndjson; charset=utf-8", "jsonl")}
CSV_COLUMNS = ("message_id", "conversation_id", "sent_at", "direction", "agent", "chat_account", "customer",
               "author", "text", "edited_at", "deleted_at", "revisions")


# ---- filters -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordFilters:
    """What a search or export selects. `until` is exclusive; `text` is a literal substring."""

    agent_id: int | None = None
    department_id: int | None = None
    chat_account_id: int | None = None
    conversation_id: int | None = None
    pseudonym: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    direction: str | None = None
    # Set by `resolve_identifiers` when `text` is a phone number, e-mail address…: the stored tokens to find.
    tokens: tuple[str, ...] | None = None

    @property
    def text_indexed(self) -> bool:
        """False when the text is too short for the trigram index and is matched row by row."""
        return self.text is None or len(self.text) >= TRIGRAM

    @property
    def on_messages(self) -> bool:
        """Whether any filter looks inside messages (a conversation search then asks its messages)."""
        return any(v is not None for v in (self.since, self.until, self.text, self.direction))

    def describe(self) -> dict:
        """The filters as plain JSON values (for the audit trail)."""
        return {k: (iso(v) if isinstance(v, datetime) else v) for k, v in asdict(self).items()
                if v is not None and k != "tokens"}


def bad_value(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_value", message, field=name)


def parse_id(args: Mapping[str, str], name: str) -> int | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise bad_value(name, _("The parameter '%(name)s' must be an id (a positive whole number).", name=name))
    return int(raw)


def parse_time(args: Mapping[str, str], name: str, *, end: bool = False) -> datetime | None:
    """A date (2026-11-23) or a time (2026-11-23T14:30, with an offset or Z; UTC when none is given).

    As the end of a range a date means the whole of that day and a time includes itself; the bound
    returned is exclusive either way.
    """
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        if DATE_ONLY.fullmatch(raw):
            day = date.fromisoformat(raw)
            value = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return value + timedelta(days=1) if end else value
        value = datetime.fromisoformat(raw)
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value + timedelta(microseconds=1) if end else value
    except (ValueError, OverflowError) as exc:
        raise bad_value(name, _("The parameter '%(name)s' must be a date such as 2026-11-23 or a time such as "
                                "2026-11-23T14:30 (UTC unless an offset is given).", name=name)) from exc


def parse_text(args: Mapping[str, str], name: str, limit: int) -> str | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if len(raw) > limit:
        raise bad_value(name, _("The parameter '%(name)s' is longer than %(n)d characters.", name=name, n=limit))
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in raw):
        raise bad_value(name, _("The parameter '%(name)s' contains control characters.", name=name))
    return raw


def normalise_pseudonym(value: str) -> str:
    """`7f3a` and `客户-7F3A` both find 客户-7F3AK9: people type the code part, often in lower case."""
    code = value.removeprefix(PSEUDONYM_PREFIX)
    if code.isascii() and code.isalnum() or not code:
        return PSEUDONYM_PREFIX + code.upper()
    return value


def parse_filters(args: Mapping[str, str]) -> RecordFilters:
    """Filters from query parameters: agent_id, department_id, chat_account_id, conversation_id, customer,
    from, to, q, direction. Anything malformed is a 400 naming the parameter."""
    direction = (args.get("direction") or "").strip() or None
    if direction is not None and direction not in DIRECTIONS:
        raise bad_value("direction", _("The parameter 'direction' must be 'in' or 'out'."))
    pseudonym = parse_text(args, "customer", MAX_PSEUDONYM_CHARS)
    filters = RecordFilters(
        agent_id=parse_id(args, "agent_id"),
        department_id=parse_id(args, "department_id"),
        chat_account_id=parse_id(args, "chat_account_id"),
        conversation_id=parse_id(args, "conversation_id"),
        pseudonym=normalise_pseudonym(pseudonym) if pseudonym else None,
        since=parse_time(args, "from"),
        until=parse_time(args, "to", end=True),
        text=parse_text(args, "q", MAX_QUERY_CHARS),
        direction=direction,
    )
    if filters.since and filters.until and filters.since >= filters.until:
        raise bad_value("to", _("The end of the time range must come after its start."))
    return filters


def parse_page_size(raw: str | None, default: int = PAGE_SIZE) -> int:
    if raw is None or raw.strip() == "":
        return default
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= PAGE_SIZE_MAX:
        raise bad_value("limit", _("The parameter 'limit' must be a number from 1 to %(n)d.", n=PAGE_SIZE_MAX))
    return int(raw)


# ---- cursors: (time, id) of the row a page stops at --------------------------------------------------

Key = tuple[datetime, int]


def encode_cursor(at: datetime, row_id: int) -> str:
    delta = at.astimezone(UTC) - EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}.{row_id}"


def parse_cursor(raw: str | None, name: str) -> Key | None:
    if raw is None or raw == "":
        return None
    match = CURSOR.fullmatch(raw)
    if not match or int(match.group(2)) > MAX_ID:
        raise bad_value(name, _("The parameter '%(name)s' is not a cursor this server gave out.", name=name))
    try:
        at = EPOCH + timedelta(microseconds=int(match.group(1)))
    except OverflowError as exc:
        raise bad_value(name, _("The parameter '%(name)s' is not a cursor this server gave out.", name=name)) from exc
    return at, int(match.group(2))


def parse_page_cursors(args: Mapping[str, str]) -> tuple[Key | None, Key | None]:
    before, after = parse_cursor(args.get("before"), "before"), parse_cursor(args.get("after"), "after")
    if before and after:
        raise bad_value("after", _("Give either 'before' or 'after', not both."))
    return before, after


def earlier_than(time_col, id_col, key: Key):
    # The plain range on time lets the (…, sent_at, id) index start at the cursor; the OR settles ties.
    at, row_id = key
    return and_(time_col <= at, or_(time_col < at, id_col < row_id))


def later_than(time_col, id_col, key: Key):
    at, row_id = key
    return and_(time_col >= at, or_(time_col > at, id_col > row_id))


# ---- scope -------------------------------------------------------------------------------------------

def check_filter_scope(actor: User, filters: RecordFilters) -> None:
    """Each id in the filters names something the actor may see: another tenant's is not found (404),
    one outside the actor's departments is forbidden (403)."""
    if filters.agent_id is not None:
        agent = get_user_in_tenant(actor, filters.agent_id)
        if not can_see_agent(actor, agent):
            raise forbidden()
    if filters.department_id is not None:
        department = db.session.get(Department, filters.department_id)
        if department is None or department.tenant_id != actor.tenant_id:
            raise not_found(_("department"))
        if not sees_whole_tenant(actor) and department.id not in actor.department_ids:
            raise forbidden()
    if filters.chat_account_id is not None:
        account = db.session.get(ChatAccount, filters.chat_account_id)
        if account is None or account.tenant_id != actor.tenant_id:
            raise not_found(_("chat account"))
        if not can_see_agent(actor, account.agent):
            raise forbidden()
    if filters.conversation_id is not None:
        get_visible_conversation(actor, filters.conversation_id)


def conversation_conditions(actor: User, filters: RecordFilters, *, hide_indexes: bool = False) -> list:
    """Tenant, department scope and the filters that are properties of a conversation. `hide_indexes`:
    keep SQLite from starting at the conversations (see `message_selection`)."""
    tenant_id, agent_id = ((Conversation.tenant_id + 0, Conversation.agent_id + 0) if hide_indexes else
                           (Conversation.tenant_id, Conversation.agent_id))
    conditions = [tenant_id == actor.tenant_id, agent_id.in_(visible_agent_ids_query(actor))]
    if filters.agent_id is not None:
        conditions.append(agent_id == filters.agent_id)
    if filters.department_id is not None:
        conditions.append(agent_id.in_(
            select(department_members.c.user_id).where(department_members.c.department_id == filters.department_id)))
    if filters.chat_account_id is not None:
        conditions.append(Conversation.chat_account_id == filters.chat_account_id)
    if filters.conversation_id is not None:
        conditions.append(Conversation.id == filters.conversation_id)
    if filters.pseudonym is not None:
        conditions.append(Conversation.customer_pseudonym.like(escape_like(filters.pseudonym) + "%",
                                                               escape=LIKE_ESCAPE))
    return conditions


def message_conditions(filters: RecordFilters, message=Message, *, text_by_index: bool = True) -> list:
    """The filters that are properties of a message, on `message` (the table or an alias of it)."""
    conditions = []
    if filters.since is not None:
        conditions.append(message.sent_at >= filters.since)
    if filters.until is not None:
        conditions.append(message.sent_at < filters.until)
    if filters.direction is not None:
        conditions.append(message.direction == filters.direction)
    if filters.text is not None:
        condition = text_condition(filters.text, message, by_index=text_by_index)
        if filters.tokens is not None:
            # Stored text holds identifiers as tokens (text from before encryption at rest, in clear).
            condition = or_(condition, *(text_condition(t, message, by_index=text_by_index) for t in filters.tokens))
        conditions.append(condition)
    return conditions


def resolve_identifiers(actor: User, filters: RecordFilters) -> RecordFilters:
    """A text that is a customer identifier (a phone number or e-mail address, written any way) is looked
    for as the tokens stored in its place, found by blind index."""
    if filters.text is None or filters.tokens is not None or \
            not vault.looks_like_identifier(actor.tenant_id, filters.text):
        return filters
    return replace(filters, tokens=tuple(vault.token(i) for i in vault.find_identifiers(actor.tenant_id,
                                                                                           filters.text)))


# ---- text ------------------------------------------------------------------------------------------------

def escape_like(value: str) -> str:
    return (value.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%")
            .replace("_", LIKE_ESCAPE + "_"))


def fts_phrase(value: str) -> str:
    """User text as one FTS5 string: inside double quotes nothing is syntax but a doubled quote."""
    return '"' + value.replace('"', '""') + '"'


def contains(col, query: str):
    """`col` has `query` anywhere, case-insensitive, wildcards taken literally."""
    pattern = "%" + escape_like(query) + "%"
    # SQLite's LIKE ignores ASCII case; PostgreSQL needs ILIKE, which its trigram indexes serve.
    if db.session.get_bind().dialect.name == "postgresql":
        return col.ilike(pattern, escape=LIKE_ESCAPE)
    return col.like(pattern, escape=LIKE_ESCAPE)


def text_condition(query: str, message=Message, *, by_index: bool = True):
    """`message` has `query` (case-insensitive) in its text or in any of its revisions: looked up in the
    trigram index, or (short text, or `by_index` False) compared row by row."""
    if len(query) < TRIGRAM or not by_index:
        revision = aliased(MessageRevision)
        return or_(contains(message.text, query),
                   exists().where(revision.message_id == message.id, contains(revision.text, query)))
    if db.session.get_bind().dialect.name == "sqlite":
        hits = sql(SQLITE_HITS).bindparams(phrase=fts_phrase(query)).columns(column("id", Integer))
        return message.id.in_(hits)
    hit_message, hit_revision = aliased(Message), aliased(MessageRevision)
    return message.id.in_(union(select(hit_message.id).where(contains(hit_message.text, query)),
                                select(hit_revision.message_id).where(contains(hit_revision.text, query))))


SQLITE_HITS = ("SELECT rowid AS id FROM search_index_message WHERE search_index_message MATCH :phrase "
               "UNION SELECT message_id FROM message_revision WHERE id IN "
               "(SELECT rowid FROM search_index_revision WHERE search_index_revision MATCH :phrase)")


def text_hit_count(query: str, cap: int) -> int:
    """How many messages and revisions have `query` (found through the index), counting no further than
    `cap` in each."""
    if db.session.get_bind().dialect.name == "sqlite":
        return sum(db.session.scalar(sql(
            f"SELECT count(*) FROM (SELECT rowid FROM {table} WHERE {table} MATCH :phrase LIMIT :cap)"),
            {"phrase": fts_phrase(query), "cap": cap}) for table in ("search_index_message", "search_index_revision"))
    return sum(db.session.scalar(select(func.count()).select_from(
        select(col).where(contains(col, query)).limit(cap).subquery())) for col in (Message.text, MessageRevision.text))


def hit_lookup_limit() -> int:
    """Up to how many hits looking each one up beats walking messages newest first.

    Looking up h hits costs about h reads and a sort; the walk fills a page of 50 after about 50·N/(h·s)
    rows (N messages, s the share of them in the actor's scope). At a million messages one lookup cost
    about 15 steps of the walk on SQLite (bench/bench_records_search.py), so the two break even near
    h = √(3.3·N/s): 1.8·√N for a whole tenant, 4·√N for a fifth of it. 3·√N sits between; at the limit
    either way took about 20 ms there (35 ms on PostgreSQL). max(id) stands in for N: free to read,
    close enough under a square root.
    """
    total = db.session.scalar(select(func.max(Message.id))) or 0
    return max(HIT_LOOKUP_MIN, int(HIT_LOOKUP_FACTOR * math.sqrt(total)))


def search_route(filters: RecordFilters) -> str:
    """Which rows a message search starts from:

    - "hits": a text with few hits (whatever the other filters): look each hit up, then sort them;
    - "conversations": filters that narrow the conversations (an agent, a chat account, a customer):
      read those conversations' messages through (conversation_id, sent_at), text compared row by row.
      The cost is bounded by those conversations' size, where a walk by time would cross the whole
      tenant for an agent who wrote little or long ago;
    - "time": walk the tenant's messages newest first until the page is full. SQLite checks each row
      against the full-text hits; PostgreSQL compares the text row by row, since collecting every hit
      of a common word costs it a heap read per hit.
    """
    if filters.text is not None and filters.text_indexed:
        limit = hit_lookup_limit()
        if text_hit_count(filters.text, limit + 1) <= limit:
            return "hits"
    if any(v is not None for v in (filters.agent_id, filters.chat_account_id, filters.conversation_id,
                                   filters.pseudonym)):
        return "conversations"
    return "time"


def highlight(text: str | None, query: str | None) -> list[tuple[str, bool]]:
    """`text` cut into (part, is_hit) segments around each case-insensitive occurrence of `query`.

    The template puts hits in <mark> and escapes every part, so chat text never becomes markup."""
    if not text:
        return []
    if not query:
        return [(text, False)]
    segments, position = [], 0
    for match in re.finditer(re.escape(query), text, re.IGNORECASE):
        if match.start() > position:
            segments.append((text[position:match.start()], False))
        segments.append((match.group(), True))
        position = match.end()
    if position < len(text):
        segments.append((text[position:], False))
    return segments


# ---- messages ----------------------------------------------------------------------------------------

@dataclass
class MessageRecord:
    """A message with what a reader needs around it. `readable` False: its text must not be shown."""

    message: Message
    conversation: Conversation
    readable: bool
    author: User | None = None

    @property
    def current_text(self) -> str:
        """The text as last seen: the latest edit, or the deletion's last content, or the original."""
        revisions = self.message.revisions
        return vault.display(revisions[-1].text if revisions else self.message.text)

    @property
    def versions(self) -> list[dict]:
        """Every version with the time it appeared: the original, then each edit and the deletion."""
        message = self.message
        return [{"kind": "original", "text": vault.display(message.text), "at": message.sent_at}] + [
            {"kind": r.kind, "text": vault.display(r.text), "at": r.occurred_at} for r in message.revisions]

    def to_dict(self) -> dict:
        message, conversation = self.message, self.conversation
        return {
            "id": message.id,
            "conversation_id": conversation.id,
            "direction": message.direction,
            "sent_at": iso(message.sent_at),
            "edited_at": iso(message.edited_at),
            "deleted_at": iso(message.deleted_at),
            "agent": {"id": conversation.agent.id, "display_name": conversation.agent.display_name},
            "chat_account": conversation.chat_account.to_dict(),
            "customer_pseudonym": conversation.customer_pseudonym,
            "author": {"id": self.author.id, "display_name": self.author.display_name} if self.author else None,
            "text_hidden": not self.readable,
            "text": vault.display(message.text) if self.readable else None,
            "revisions": [{"kind": r.kind, "text": vault.display(r.text) if self.readable else None,
                           "at": iso(r.occurred_at)}
                          for r in message.revisions],
        }


@dataclass
class Page:
    """One page of rows with the cursors of its neighbours (None: there is nothing that way)."""

    rows: list
    older: str | None = None
    newer: str | None = None
    text_indexed: bool = True
    extra: dict = field(default_factory=dict)


class ReadableCache:
    """`visibility.private_grant_for` (what `can_read_message_text` asks) per conversation, asked once each per
    search or export; remembers the grant each conversation is read under, to count its use."""

    def __init__(self, actor: User):
        self.actor = actor
        self.known: dict[int, object] = {}

    def __call__(self, conversation: Conversation) -> bool:
        if conversation.id not in self.known:
            self.known[conversation.id] = private_grant_for(self.actor, conversation)
        return self.known[conversation.id] is not None


def message_selection(actor: User, filters: RecordFilters) -> Select:
    route = search_route(filters)
    on_sqlite = db.session.get_bind().dialect.name == "sqlite"
    # `+ 0` hides a column's indexes from the planner. "conversations": the tenant's (tenant_id, sent_at)
    # index, which both planners otherwise walk (PostgreSQL misjudges how rare a text is in one agent's
    # messages). "hits" on SQLite, which keeps no statistics unless ANALYZE is run: every index but the
    # primary keys, so it starts from the hits.
    hide_tenant = route == "conversations" or (route == "hits" and on_sqlite)
    by_index = route == "hits" or (route == "time" and on_sqlite)
    # The account and agent come in the same row, so reading `conversation.agent` later costs no query.
    return (
        select(Message, Conversation, ChatAccount, User)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(ChatAccount, ChatAccount.id == Conversation.chat_account_id)
        .join(User, User.id == Conversation.agent_id)
        .where(((Message.tenant_id + 0) if hide_tenant else Message.tenant_id) == actor.tenant_id,
               *conversation_conditions(actor, filters, hide_indexes=route == "hits" and on_sqlite),
               *message_conditions(filters, text_by_index=by_index))
    )


def fetch_messages(actor: User, filters: RecordFilters, *, before: Key | None = None, after: Key | None = None,
                   limit: int = PAGE_SIZE, readable: ReadableCache | None = None) -> Page:
    """A page newest first: older than `before`, or newer than `after`, or the newest. Scope must have been
    checked (`check_filter_scope`)."""
    query = message_selection(actor, filters)
    if after is not None:
        query = query.where(later_than(Message.sent_at, Message.id, after)).order_by(
            Message.sent_at, Message.id)
    else:
        if before is not None:
            query = query.where(earlier_than(Message.sent_at, Message.id, before))
        query = query.order_by(Message.sent_at.desc(), Message.id.desc())
    rows = db.session.execute(query.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    if after is not None:
        rows.reverse()
    readable = readable or ReadableCache(actor)
    records = [MessageRecord(row[0], row[1], readable(row[1])) for row in rows]
    attach_authors(records)
    page = Page(records, text_indexed=filters.text_indexed)
    if rows:
        first, last = rows[0][0], rows[-1][0]
        page.older = encode_cursor(last.sent_at, last.id) if (more or after is not None) else None
        page.newer = encode_cursor(first.sent_at, first.id) if (before is not None or
                                                                  (after is not None and more)) else None
    if filters.text is not None:
        # A hit tells the text: rows the actor may not read are left out, not shown without text.
        page.rows = [r for r in records if r.readable]
    return page


def attach_authors(records: list[MessageRecord]) -> None:
    """Messages a supervisor wrote in the panel name them (one query for the page)."""
    ids = {r.message.author_user_id for r in records if r.message.author_user_id}
    if not ids:
        return
    authors = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))}
    for record in records:
        record.author = authors.get(record.message.author_user_id)


def search_messages(actor: User, filters: RecordFilters, *, before: Key | None = None, after: Key | None = None,
                    limit: int = PAGE_SIZE) -> Page:
    check_filter_scope(actor, filters)
    filters = resolve_identifiers(actor, filters)
    readable = ReadableCache(actor)
    page = fetch_messages(actor, filters, before=before, after=after, limit=limit, readable=readable)
    # One use of each private grant the page's text was read under (per request, not per message).
    use_grants([readable.known[r.conversation.id] for r in page.rows if r.readable], "record_search",
               ("records", "search"), actor=actor)
    return page


# ---- conversations -----------------------------------------------------------------------------------

def search_conversations(actor: User, filters: RecordFilters, *, before: Key | None = None,
                         after: Key | None = None, limit: int = PAGE_SIZE) -> Page:
    """Conversations with at least one message, latest message first. Filters on messages (time,
    direction, text) keep the conversations that have at least one such message.

    The walk goes down the last_message_at index and asks each conversation about its messages through
    (conversation_id, sent_at); a text with few hits instead collects the hits' conversations first.
    """
    check_filter_scope(actor, filters)
    filters = resolve_identifiers(actor, filters)
    on_sqlite = db.session.get_bind().dialect.name == "sqlite"
    # SQLite would otherwise start from the tenant's conversations and ask every one of them before
    # sorting (see `message_selection` on `+ 0`).
    query = select(Conversation).where(
        Conversation.last_message_at.is_not(None), *conversation_conditions(actor, filters, hide_indexes=on_sqlite),
    ).options(joinedload(Conversation.chat_account), joinedload(Conversation.agent))
    if filters.on_messages:
        message = aliased(Message)
        if filters.since is not None:  # a conversation with a message since then was active since then
            query = query.where(Conversation.last_message_at >= filters.since)
        if filters.text is not None and filters.text_indexed and \
                text_hit_count(filters.text, hit_lookup_limit() + 1) <= hit_lookup_limit():
            query = query.where(Conversation.id.in_(
                select(message.conversation_id).where(*message_conditions(filters, message))))
        else:
            query = query.where(exists().where(message.conversation_id == Conversation.id,
                                               *message_conditions(filters, message, text_by_index=on_sqlite)))
    activity = Conversation.last_message_at
    if after is not None:
        query = query.where(later_than(activity, Conversation.id, after)).order_by(activity, Conversation.id)
    else:
        if before is not None:
            query = query.where(earlier_than(activity, Conversation.id, before))
        query = query.order_by(activity.desc(), Conversation.id.desc())
    rows = list(db.session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if after is not None:
        rows.reverse()
    page = Page(rows, text_indexed=filters.text_indexed)
    if rows:
        first, last = rows[0], rows[-1]
        page.older = encode_cursor(last.last_message_at, last.id) if (more or after is not None) else None
        page.newer = encode_cursor(first.last_message_at, first.id) if (before is not None or
                                                                         (after is not None and more)) else None
    if filters.text is not None:
        readable = ReadableCache(actor)
        page.rows = [c for c in rows if readable(c)]
    page.extra["message_counts"] = message_counts([c.id for c in page.rows])
    return page


def message_counts(conversation_ids: list[int]) -> dict[int, int]:
    if not conversation_ids:
        return {}
    return dict(db.session.execute(
        select(Message.conversation_id, func.count(Message.id))
        .where(Message.conversation_id.in_(conversation_ids)).group_by(Message.conversation_id)).all())


def conversation_dict(conversation: Conversation, message_count: int | None = None) -> dict:
    data = conversation.to_dict()
    data["agent"] = {"id": conversation.agent.id, "display_name": conversation.agent.display_name}
    if message_count is not None:
        data["message_count"] = message_count
    return data


@dataclass
class ConversationPage:
    """A stretch of one conversation, oldest first, with cursors to the stretches before and after."""

    rows: list[MessageRecord]
    earlier: str | None
    later: str | None


def read_conversation(actor: User, conversation: Conversation, *, before: Key | None = None,
                      after: Key | None = None, focus: int | None = None,
                      limit: int = CONVERSATION_PAGE_SIZE) -> ConversationPage:
    """Messages of a conversation oldest first with every version: the latest stretch, the stretch
    before/after a cursor, or the one that starts just before message `focus` (a search hit)."""
    grant = private_grant_for(actor, conversation)
    if grant is None:
        raise forbidden()
    use_grant(grant, "record_view", conversation, actor=actor)
    base = select(Message).where(Message.conversation_id == conversation.id)

    def older(key: Key | None, n: int) -> list[Message]:
        query = base if key is None else base.where(earlier_than(Message.sent_at, Message.id, key))
        return list(reversed(db.session.scalars(
            query.order_by(Message.sent_at.desc(), Message.id.desc()).limit(n)).all()))

    def newer(key: Key, n: int, inclusive: bool = False) -> list[Message]:
        condition = (later_than(Message.sent_at, Message.id, (key[0], key[1] - 1)) if inclusive
                     else later_than(Message.sent_at, Message.id, key))
        return list(db.session.scalars(base.where(condition).order_by(Message.sent_at, Message.id).limit(n)))

    if focus is not None:
        target = db.session.get(Message, focus)
        if target is None or target.conversation_id != conversation.id:
            raise not_found(_("message"))
        key = (target.sent_at, target.id)
        head = older(key, FOCUS_CONTEXT + 1)
        has_earlier = len(head) > FOCUS_CONTEXT
        head = head[-FOCUS_CONTEXT:]
        tail = newer(key, limit - len(head) + 1, inclusive=True)
        has_later = len(tail) > limit - len(head)
        messages = head + tail[:limit - len(head)]
    elif after is not None:
        messages = newer(after, limit + 1)
        has_earlier, has_later = True, len(messages) > limit
        messages = messages[:limit]
    else:
        messages = older(before, limit + 1)
        has_earlier, has_later = len(messages) > limit, before is not None
        messages = messages[-limit:]
    records = [MessageRecord(m, conversation, True) for m in messages]
    attach_authors(records)
    first, last = (messages[0], messages[-1]) if messages else (None, None)
    return ConversationPage(
        records,
        earlier=encode_cursor(first.sent_at, first.id) if first and has_earlier else None,
        later=encode_cursor(last.sent_at, last.id) if last and has_later else None,
    )


# ---- what the filter form offers ----------------------------------------------------------------------

def filter_choices(actor: User) -> dict:
    """Agents, departments and chat accounts the actor may filter by."""
    agents = list(db.session.scalars(
        select(User).where(User.id.in_(visible_agent_ids_query(actor))).order_by(User.display_name, User.id)))
    if sees_whole_tenant(actor):
        departments = list(db.session.scalars(
            select(Department).where(Department.tenant_id == actor.tenant_id).order_by(Department.name)))
    else:
        departments = list(actor.departments)
    accounts = list(db.session.scalars(
        select(ChatAccount).where(ChatAccount.tenant_id == actor.tenant_id,
                                  ChatAccount.agent_id.in_(visible_agent_ids_query(actor)))
        .order_by(ChatAccount.platform, ChatAccount.handle, ChatAccount.id)))
    return {"agents": agents, "departments": departments, "chat_accounts": accounts}


# ---- export ------------------------------------------------------------------------------------------

@dataclass
class Export:
    filename: str
    mimetype: str
    count: int
    chunks: Iterator[bytes]


def count_selection(actor: User, filters: RecordFilters, cap: int) -> int:
    """How many messages the filters select, counting no further than `cap`."""
    capped = message_selection(actor, filters).with_only_columns(Message.id).limit(cap).subquery()
    return db.session.scalar(select(func.count()).select_from(capped))


def export_messages(actor: User, filters: RecordFilters, fmt: str, *, remote_addr: str = "") -> Export:
    """The selection as CSV or JSON Lines, newest first, produced page by page as it is sent.

    Refused above EXPORT_MAX messages (narrow the filters) rather than cut short without notice. The
    export is written to the audit trail; the caller commits before streaming."""
    from backend.services.audit import record_audit, redacted_filters

    if fmt not in EXPORT_FORMATS:
        raise bad_value("format", _("The parameter 'format' must be 'csv' or 'jsonl'."))
    check_filter_scope(actor, filters)
    filters = resolve_identifiers(actor, filters)
    count = count_selection(actor, filters, EXPORT_MAX + 1)
    if count > EXPORT_MAX:
        raise ApiError(400, "export_too_large", _("The selection has more than %(n)s messages. Narrow it (a shorter "
                                                  "time range, one agent or department) and export again.",
                                                  n=f"{EXPORT_MAX:,}"), limit=EXPORT_MAX)
    record_audit("records.export", actor=actor, target_type="message", target_id=count,
                 details={"format": fmt, "filters": redacted_filters(filters.describe()), "count": count},
                 remote_addr=remote_addr)
    # The rows are read while the response streams, after this commit: every private grant the actor holds
    # may be read under, so each counts one use now.
    use_grants(valid_grants(actor, PRIVATE), "record_export", ("export", count), actor=actor,
               remote_addr=remote_addr)
    mimetype, extension = EXPORT_FORMATS[fmt]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    rows = export_rows(actor.id, filters)
    chunks = csv_chunks(rows) if fmt == "csv" else jsonl_chunks(rows)
    return Export(f"veil-records-{stamp}.{extension}", mimetype, count, chunks)


def export_rows(actor_id: int, filters: RecordFilters) -> Iterator[list[MessageRecord]]:
    # Runs while the response streams, after the request's session has committed and may have been
    # replaced: the actor is loaded again rather than carried over.
    actor = db.session.get(User, actor_id)
    readable = ReadableCache(actor)
    before, sent = None, 0
    while sent < EXPORT_MAX:
        page = fetch_messages(actor, filters, before=before, limit=min(EXPORT_CHUNK, EXPORT_MAX - sent),
                              readable=readable)
        if page.rows:
            yield page.rows
            sent += len(page.rows)
        if page.older is None:
            return
        before = parse_cursor(page.older, "before")


def csv_row(record: MessageRecord) -> list:
    data = record.to_dict()
    revisions = "\n".join(f"{r['at']} {r['kind']}: {r['text'] if r['text'] is not None else ''}"
                          for r in data["revisions"])
    account = data["chat_account"]
    values = [data["id"], data["conversation_id"], data["sent_at"], data["direction"], data["agent"]["display_name"],
              f"{account['platform']} {account['handle']}", data["customer_pseudonym"],
              data["author"]["display_name"] if data["author"] else "", data["text"] or "",
              data["edited_at"] or "", data["deleted_at"] or "", revisions]
    return [spreadsheet_safe(v) for v in values]


def csv_chunks(pages: Iterator[list[MessageRecord]]) -> Iterator[bytes]:
    # The byte-order mark tells Excel the file is UTF-8; without it Chinese opens as mojibake.
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(CSV_COLUMNS)
    for page in pages:
        for record in page:
            writer.writerow(csv_row(record))
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue().encode("utf-8")


def jsonl_chunks(pages: Iterator[list[MessageRecord]]) -> Iterator[bytes]:
    for page in pages:
        yield "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in page).encode("utf-8")
