"""Writes, reads and verifies the audit trail.

Each tenant has a chain of its own (entries of no tenant go to the instance chain, 0), so a tenant's trail
verifies without anyone else's. An entry's `entry_hash` is an HMAC-SHA256, under a key derived from the
master key, of its content, its chain, its place `seq` in the chain (1, 2, 3... without gaps) and the
previous entry's hash. Someone who can write to the database but lacks the master key cannot change,
remove or reorder entries and recompute a chain that verifies.

Entries written before the keys existed form the frozen legacy chain (-1): SHA-256, checked as before.
Each new chain starts from a keyed hash of the legacy chain's last hash, so rewriting the legacy chain
breaks the start of every new one. Removing the newest entries leaves a shorter valid chain; an anchor
(a chain's last seq and hash, written down elsewhere) catches that.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select, text

from backend.errors import ApiError
from backend.extensions import db
from backend.models import AuditLogEntry, User
from backend.models.audit import INSTANCE_CHAIN, KEYED, LEGACY_CHAIN, UNKEYED
from backend.models.base import utcnow
from backend.security.master_key import derive_key

GENESIS_HASH = "0" * 64
AUDIT_LOCK_KEY = 0x5645494C  # "VEIL": with the chain, the advisory lock that serialises appends on PostgreSQL
KEY_PURPOSE = "audit-chain"
VERIFY_BATCH = 1000
# Problems kept in full by a verification; past this only the count goes on (a rewritten chain of
# millions would otherwise fill memory with one problem per entry).
MAX_PROBLEMS_KEPT = 10_000
PAGE_SIZE = 100

PROBLEM_KINDS = ("changed", "removed", "reordered", "forked")


# ---- hashing -----------------------------------------------------------------------------------------

def chain_key() -> bytes:
    return derive_key(current_app, KEY_PURPOSE)


def canonical(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def content(entry: AuditLogEntry) -> dict:
    return {
        "tenant_id": entry.tenant_id,
        "actor_user_id": entry.actor_user_id,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "details": entry.details,
        "remote_addr": entry.remote_addr,
        # PostgreSQL hands timestamps back in the session's zone: hash the instant, in UTC.
        "created_at": entry.created_at.astimezone(UTC).isoformat(),
        "prev_hash": entry.prev_hash,
    }


def entry_digest(entry: AuditLogEntry) -> str:
    """The unkeyed SHA-256 of the legacy chain (hash_version 1)."""
    return hashlib.sha256(canonical(content(entry))).hexdigest()


def keyed_digest(entry: AuditLogEntry, key: bytes) -> str:
    """hash_version 2: covers the chain and the place in it, so an entry cannot be moved unseen."""
    body = {**content(entry), "chain": entry.chain, "seq": entry.seq, "hash_version": KEYED}
    return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def expected_digest(entry: AuditLogEntry, key: bytes) -> str:
    return entry_digest(entry) if entry.hash_version == UNKEYED else keyed_digest(entry, key)


def legacy_tail() -> str:
    """The last hash of the legacy chain, or the genesis hash when there was none."""
    last = db.session.scalar(select(AuditLogEntry.entry_hash).where(AuditLogEntry.chain == LEGACY_CHAIN)
                             .order_by(AuditLogEntry.seq.desc()).limit(1))
    return last or GENESIS_HASH


def chain_start(chain: int, key: bytes, tail: str) -> str:
    """The `prev_hash` of a chain's first entry: keyed, so a forger cannot start a chain anew, and
    different per chain, so the first entries of two chains never share a `prev_hash`."""
    return hmac.new(key, canonical({"start": chain, "legacy_tail": tail}), hashlib.sha256).hexdigest()


def chain_of(tenant_id: int | None) -> int:
    return tenant_id if tenant_id is not None else INSTANCE_CHAIN


# ---- writing -----------------------------------------------------------------------------------------

def record_audit(
    action: str,
    *,
    actor: User | None = None,
    tenant_id: int | None = None,
    target_type: str = "",
    target_id: object = "",
    details: dict | None = None,
    remote_addr: str = "",
) -> AuditLogEntry:
    """Append one entry to its tenant's chain. Callers commit.

    Concurrent writers: on PostgreSQL a transaction-scoped advisory lock per chain queues them; SQLite
    allows one writer at a time anyway. The unique (chain, seq) and `prev_hash` are the backstop: a
    fork fails to commit, and a rolled-back append leaves no gap.
    """
    tenant_id = tenant_id if tenant_id is not None else (actor.tenant_id if actor else None)
    chain = chain_of(tenant_id)
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key, :chain)"), {"key": AUDIT_LOCK_KEY, "chain": chain})
    key = chain_key()
    last = db.session.execute(select(AuditLogEntry.seq, AuditLogEntry.entry_hash)
                              .where(AuditLogEntry.chain == chain)
                              .order_by(AuditLogEntry.seq.desc()).limit(1)).first()
    entry = AuditLogEntry(
        tenant_id=tenant_id,
        actor_user_id=actor.id if actor else None,
        action=action[:64],
        target_type=target_type[:32],
        target_id=str(target_id)[:64],
        # What the database gives back is what gets hashed: JSON types only, string keys.
        details=json.loads(json.dumps(details or {}, default=str)),
        remote_addr=(remote_addr or "")[:64],
        created_at=utcnow(),
        chain=chain,
        seq=last.seq + 1 if last else 1,
        hash_version=KEYED,
        prev_hash=last.entry_hash if last else chain_start(chain, key, legacy_tail()),
    )
    entry.entry_hash = keyed_digest(entry, key)
    db.session.add(entry)
    db.session.flush()
    return entry


def redacted_filters(described: Mapping[str, object]) -> dict:
    """A search's filters for the trail, with the searched text replaced by its length: a search for a
    phone number must not put that number into the database in clear."""
    out = {k: v for k, v in described.items() if k != "text"}
    if described.get("text") is not None:
        out["text_chars"] = len(str(described["text"]))
    return out


# ---- verifying ---------------------------------------------------------------------------------------

@dataclass
class Problem:
    kind: str  # one of PROBLEM_KINDS
    chain: int
    entry_id: int | None
    seq: int | None
    message: str

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chain": self.chain, "entry_id": self.entry_id, "seq": self.seq,
                "message": self.message}


@dataclass
class ChainSummary:
    chain: int
    entries: int = 0
    last_seq: int = 0
    last_hash: str = ""

    @property
    def anchor(self) -> str:
        return f"{self.last_seq}:{self.last_hash}" if self.entries else ""


@dataclass
class Verification:
    chains: list[ChainSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def entries(self) -> int:
        return sum(c.entries for c in self.chains)

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "entries": self.entries, "problem_count": self.problem_count,
                "problems": [p.to_dict() for p in self.problems],
                "chains": [{"chain": c.chain, "entries": c.entries, "anchor": c.anchor} for c in self.chains]}


@dataclass(frozen=True)
class Anchor:
    seq: int
    entry_hash: str

    @classmethod
    def parse(cls, raw: str) -> Anchor:
        seq, sep, digest = (raw or "").strip().partition(":")
        digest = digest.strip().lower()
        if not sep or not seq.strip().isdigit() or len(digest) != 64 or \
                any(c not in "0123456789abcdef" for c in digest):
            raise ApiError(400, "invalid_anchor", _("An anchor is the sequence number and the hash of an entry, "
                                                    "as SEQ:HASH (64 hexadecimal digits)."))
        return cls(int(seq), digest)


def chains_to_verify(tenant_id: int | None) -> list[int]:
    """The legacy chain first (the others start from its end), then the instance chain and the tenants'."""
    if tenant_id is not None:
        return [LEGACY_CHAIN, tenant_id]
    found = set(db.session.scalars(select(AuditLogEntry.chain).distinct()))
    return [LEGACY_CHAIN] + sorted(found - {LEGACY_CHAIN})


def count_entries(chains: Iterable[int]) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditLogEntry)
                             .where(AuditLogEntry.chain.in_(list(chains)))) or 0


def walk(chain: int) -> Iterable:
    """A chain's entries by seq (and id, should two share a seq), in batches. Plain rows, not ORM objects,
    so that a long walk keeps no more than a batch in memory and leaves the session's objects alone."""
    columns = AuditLogEntry.__table__.c
    last: tuple[int, int] | None = None
    while True:
        query = select(*columns).where(columns.chain == chain)
        if last is not None:
            query = query.where(or_(columns.seq > last[0], and_(columns.seq == last[0], columns.id > last[1])))
        batch = db.session.execute(query.order_by(columns.seq, columns.id).limit(VERIFY_BATCH)).all()
        if not batch:
            return
        yield from batch
        last = (batch[-1].seq, batch[-1].id)


def seq_of_hash(entry_hash: str) -> tuple[int, int] | None:
    row = db.session.execute(select(AuditLogEntry.chain, AuditLogEntry.seq)
                             .where(AuditLogEntry.entry_hash == entry_hash)).first()
    return (row.chain, row.seq) if row else None


def verify_chain(chain: int, key: bytes, start: str, result: Verification, *,
                 report: Callable[[AuditLogEntry | None], bool], progress: Callable[[int], None]) -> ChainSummary:
    """Walks one chain and adds its problems to `result`. `report(entry)` says whether a problem about that
    entry is the caller's to see (a tenant sees only its own entries of the legacy chain)."""
    summary = ChainSummary(chain)
    previous: AuditLogEntry | None = None
    previous_changed = False
    expected_version = UNKEYED if chain == LEGACY_CHAIN else KEYED

    def flag(kind: str, entry: AuditLogEntry | None, message: str) -> None:
        if report(entry):
            result.add(Problem(kind, chain, entry.id if entry else None, entry.seq if entry else None, message))

    for entry in walk(chain):
        summary.entries += 1 if report(entry) else 0
        progress(1)
        gap = False
        if previous is None:
            if entry.seq != 1:
                gap = True
                flag("removed", entry, _("Entries 1 to %(last)d, at the start of the chain, are missing.",
                                         last=entry.seq - 1))
        elif entry.seq == previous.seq:
            flag("forked", entry, _("Two entries have sequence number %(seq)d (the other is entry %(id)d).",
                                    seq=entry.seq, id=previous.id))
        elif entry.seq > previous.seq + 1:
            gap = True
            flag("removed", entry, _("Entries %(first)d to %(last)d are missing before this one.",
                                     first=previous.seq + 1, last=entry.seq - 1))
        if previous is not None and entry.id < previous.id:
            flag("reordered", entry, _("It was stored before entry %(id)d, which comes earlier in the chain.",
                                       id=previous.id))

        changed = entry.hash_version != expected_version or \
            not hmac.compare_digest(expected_digest(entry, key), entry.entry_hash)
        if changed:
            flag("changed", entry, _("Its content does not match its hash."))

        expected_prev = start if previous is None else previous.entry_hash
        forked = previous is not None and entry.seq == previous.seq
        if entry.prev_hash != expected_prev and not gap and not forked:
            if previous is None:
                if chain == LEGACY_CHAIN:
                    flag("removed", entry, _("It does not follow the start of the chain: the entries before it "
                                             "were removed."))
                else:
                    flag("changed", entry, _("The chain does not start where it should: the entries from before "
                                             "the keyed chain were changed or removed, or the chain was rebuilt."))
            else:
                found = seq_of_hash(entry.prev_hash)
                if found is not None and found[0] == chain:
                    flag("reordered", entry, _("It follows entry %(found)d of the chain instead of entry %(seq)d.",
                                               found=found[1], seq=previous.seq))
                elif not previous_changed:
                    flag("removed", entry, _("The entry it follows is missing (its predecessor in the chain is "
                                             "entry %(seq)d).", seq=previous.seq))
        previous, previous_changed = entry, changed
        summary.last_seq, summary.last_hash = entry.seq, entry.entry_hash
    return summary


def verify_audit(tenant_id: int | None = None, *, anchors: Iterable[Anchor] = (),
                 progress: Callable[[int], None] | None = None) -> Verification:
    """Check the whole trail, or one tenant's (its chain and its entries from before the keyed chain).
    `anchors` are checked against the tenant's chain (or, without a tenant, the instance chain)."""
    key = chain_key()
    result = Verification()
    step = progress or (lambda n: None)
    tail = GENESIS_HASH
    for chain in chains_to_verify(tenant_id):
        if chain == LEGACY_CHAIN:
            def report(entry, _tenant=tenant_id):
                return _tenant is None or entry is None or entry.tenant_id == _tenant
            summary = verify_chain(chain, key, GENESIS_HASH, result, report=report, progress=step)
            tail = summary.last_hash or GENESIS_HASH
        else:
            summary = verify_chain(chain, key, chain_start(chain, key, tail), result,
                                   report=lambda entry: True, progress=step)
        result.chains.append(summary)
    anchored = chain_of(tenant_id)
    summary = next((c for c in result.chains if c.chain == anchored), ChainSummary(anchored))
    for anchor in anchors:
        check_anchor(anchored, summary, anchor, result)
    return result


def check_anchor(chain: int, summary: ChainSummary, anchor: Anchor, result: Verification) -> None:
    entry = db.session.scalar(select(AuditLogEntry).where(AuditLogEntry.chain == chain,
                                                          AuditLogEntry.seq == anchor.seq).limit(1))
    if entry is None:
        result.add(Problem("removed", chain, None, anchor.seq,
                           _("The anchored entry %(seq)d is gone: the chain ends at %(last)d, so its newest entries "
                             "were removed.", seq=anchor.seq, last=summary.last_seq)))
    elif not hmac.compare_digest(entry.entry_hash, anchor.entry_hash):
        result.add(Problem("changed", chain, entry.id, entry.seq,
                           _("The entry at the anchor's sequence number has another hash: the chain was rewritten "
                             "up to there.")))


def latest_anchor(tenant_id: int | None) -> ChainSummary:
    """A chain's last seq and hash, to be written down elsewhere and given to `verify --anchor` later."""
    chain = chain_of(tenant_id)
    row = db.session.execute(select(AuditLogEntry.seq, AuditLogEntry.entry_hash).where(AuditLogEntry.chain == chain)
                             .order_by(AuditLogEntry.seq.desc()).limit(1)).first()
    if row is None:
        return ChainSummary(chain)
    count = db.session.scalar(select(func.count()).where(AuditLogEntry.chain == chain)) or 0
    return ChainSummary(chain, count, row.seq, row.entry_hash)


# ---- reading -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None  # a prefix: "auth." or "records"
    actor_id: int | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None  # exclusive


def parse_audit_filters(args: Mapping[str, str]) -> AuditFilters:
    """Filters from query parameters: action (a prefix), actor (a user id), target (`type` or `type:id`),
    from, to. Anything malformed is a 400 naming the parameter."""
    from backend.services.records import bad_value, parse_id, parse_text, parse_time

    target = parse_text(args, "target", 100) or ""
    target_type, _sep, target_id = target.partition(":")
    filters = AuditFilters(
        action=parse_text(args, "action", 64), actor_id=parse_id(args, "actor"),
        target_type=target_type.strip() or None, target_id=target_id.strip() or None,
        since=parse_time(args, "from"), until=parse_time(args, "to", end=True),
    )
    if filters.since and filters.until and filters.since >= filters.until:
        raise bad_value("to", _("The end of the time range must come after its start."))
    return filters


def escape_like(value: str) -> str:
    return value.replace("/", "//").replace("%", "/%").replace("_", "/_")


def list_audit(actor: User, filters: AuditFilters, *, before: int | None = None,
               limit: int = PAGE_SIZE) -> tuple[list[tuple[AuditLogEntry, User | None]], int | None]:
    """The actor's tenant's entries newest first, and the `before` cursor of the next page (or None)."""
    query = (select(AuditLogEntry, User).outerjoin(User, User.id == AuditLogEntry.actor_user_id)
             .where(AuditLogEntry.tenant_id == actor.tenant_id))
    if filters.action:
        query = query.where(AuditLogEntry.action.like(escape_like(filters.action) + "%", escape="/"))
    if filters.actor_id is not None:
        query = query.where(AuditLogEntry.actor_user_id == filters.actor_id)
    if filters.target_type:
        query = query.where(AuditLogEntry.target_type == filters.target_type)
    if filters.target_id:
        query = query.where(AuditLogEntry.target_id == filters.target_id)
    if filters.since is not None:
        query = query.where(AuditLogEntry.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditLogEntry.created_at < filters.until)
    if before is not None:
        query = query.where(AuditLogEntry.id < before)
    rows = [tuple(row) for row in db.session.execute(query.order_by(AuditLogEntry.id.desc()).limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1][0].id if more and rows else None)


def entry_dict(entry: AuditLogEntry, user: User | None) -> dict:
    data = entry.to_dict()
    data["actor"] = {"id": user.id, "display_name": user.display_name, "email": user.email} if user else None
    return data
