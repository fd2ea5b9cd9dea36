"""`veil keys protect-existing`: text stored before encryption at rest gets its identifiers protected in place.

Databases from before the vault (migration 7a1c0e5f2b07 and earlier) hold message text, message
revisions, behaviour-event details (`text`, `previous_text`, `reason`, nested `details`) and supervisors'
replies in clear, customer identifiers included; the server's check of an outgoing message holds offsets
into that clear text and the matched text itself, and a message's console id may hold the customer's
number (WhatsApp's do). This pass puts each through the vault as ingest does now: identifiers become
tokens, a check is re-fitted to the shown text (`vault.fit_check`), a console id becomes its keyed hash
(`console_message_ref`, which ingest recognises as well as the id as given).

Idempotent: stored text is cut at the tokens it holds and only the pieces between them go to the masker,
so text already protected, or in which the masker finds nothing, stays exactly as it is; a second run
changes nothing. Resumable while the server runs: each table is walked by id in batches, each batch its
own transaction that also moves the table's high-water mark (`protect_progress`), so a stopped run goes on
after the last batch it finished; `restart` walks everything again (after a change of rules). Rows are
changed by plain UPDATEs, which the records search's triggers (SQLite FTS5) and trigram indexes
(PostgreSQL) follow.

What it cannot reach: copies of the old text elsewhere. On SQLite the pass overwrites what it replaces
(`secure_delete`) and empties the write-ahead log at the end, but pages freed before it ran may still hold
old text until reused or `VACUUM`; PostgreSQL keeps dead row versions until VACUUM (FULL) and in its WAL;
backups made before keep everything. See docs/security.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import lazyload

from backend.extensions import db
from backend.models import BehaviourEvent, Intervention, Message, MessageRevision, ProtectProgress
from backend.models.base import insert_if_absent, utcnow
from backend.security.identifiers import CONSOLE_REF_PREFIX, console_message_ref, identifier_key
from backend.services import vault
from backend.services.audit import record_audit

BATCH_SIZE = 200


@dataclass(frozen=True)
class Source:
    """A table holding text people wrote: in `text` (with the server's check beside it, or not), or in the
    text keys of `details`; messages also in their console id."""

    model: type
    column: str
    has_check: bool = False
    has_console_id: bool = False

    @property
    def name(self) -> str:
        return self.model.__tablename__


SOURCES = (
    Source(Message, "text", has_check=True, has_console_id=True),
    Source(MessageRevision, "text", has_check=True),
    Source(BehaviourEvent, "details"),
    Source(Intervention, "text"),
)


@dataclass
class TableCount:
    scanned: int = 0
    changed: int = 0


@dataclass
class ProtectReport:
    tables: dict[str, TableCount] = field(default_factory=lambda: {s.name: TableCount() for s in SOURCES})

    @property
    def changed(self) -> int:
        return sum(t.changed for t in self.tables.values())

    def to_dict(self) -> dict:
        return {name: {"scanned": t.scanned, "changed": t.changed} for name, t in self.tables.items()}


# ---- one text ------------------------------------------------------------------------------------------

def protect_stored(tenant_id: int, stored: str, check: dict | None = None) -> tuple[str, dict | None]:
    """Stored text (and its check) with every identifier the masker finds between its tokens protected.
    Text with nothing to protect comes back as it was, the very same objects."""
    pieces: list[tuple[str, vault.Protected | None]] = []  # (original, protected; None for a token)
    position = 0
    for match in vault.TOKEN.finditer(stored):
        pieces.append((stored[position:match.start()], None))
        pieces.append((match.group(0), None))
        position = match.end()
    pieces.append((stored[position:], None))
    pieces = [(piece, None if n % 2 else vault.protect_text(tenant_id, piece)) for n, (piece, _) in enumerate(pieces)]
    protected = "".join(piece if done is None else done.text for piece, done in pieces)
    if protected == stored:
        return stored, check
    return protected, vault.fit_check(_in_shown_offsets(protected, pieces), check) if check else check


def _in_shown_offsets(protected: str, pieces: list[tuple[str, vault.Protected | None]]) -> vault.Protected:
    """What `fit_check` needs: the replaced spans in offsets of `display(stored)`, where a check made after
    the vault points (a check from before it points into the clear text, the same thing then)."""
    replaced, shown = [], 0
    for piece, done in pieces:
        if done is None:
            shown += len(vault.display(piece)) if piece else 0
            continue
        replaced += [(shown + start, shown + end, length) for start, end, length in done.replaced]
        shown += len(piece)  # `defuse` swaps characters one for one
    return vault.Protected(protected, replaced)


# ---- batches -------------------------------------------------------------------------------------------

def _claim_mark(name: str) -> int:
    """The table's high-water mark, after a write to its row: SQLite's write lock (or PostgreSQL's row lock)
    is ours from here on, so the rows read next cannot change before this batch commits, and two runs at
    once take turns."""
    insert_if_absent(ProtectProgress, {"table_name": name, "last_id": 0, "updated_at": utcnow()})
    db.session.execute(update(ProtectProgress).where(ProtectProgress.table_name == name)
                       .values(updated_at=utcnow()).execution_options(synchronize_session=False))
    return db.session.scalar(select(ProtectProgress.last_id).where(ProtectProgress.table_name == name))


def protect_batch(source: Source, upper: int, batch_size: int = BATCH_SIZE) -> tuple[int, int]:
    """Protect the next rows of `source` (ids up to `upper`); commits. (rows scanned, rows changed)."""
    model = source.model
    try:
        if db.session.get_bind().dialect.name == "sqlite":
            # What an UPDATE replaces is overwritten in the file, not left in free space.
            db.session.execute(text("PRAGMA secure_delete = ON"))
        mark = _claim_mark(source.name)
        rows = list(db.session.scalars(select(model).options(lazyload("*"))
                                       .where(model.id > mark, model.id <= upper)
                                       .order_by(model.id).limit(batch_size)))
        changed = sum(_protect_row(source, row) for row in rows)
        if rows:
            db.session.execute(update(ProtectProgress).where(ProtectProgress.table_name == source.name)
                               .values(last_id=rows[-1].id).execution_options(synchronize_session=False))
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    db.session.expunge_all()
    return len(rows), changed


def _protect_row(source: Source, row) -> bool:
    hashed = source.has_console_id and _hash_console_id(row)
    return _protect_text(source, row) or hashed


def _hash_console_id(message: Message) -> bool:
    raw = message.console_message_id
    if not raw or raw.startswith(CONSOLE_REF_PREFIX):
        return False
    ref = console_message_ref(identifier_key(), message.tenant_id, raw)
    taken = db.session.scalar(select(Message.id).where(Message.conversation_id == message.conversation_id,
                                                       Message.console_message_id == ref, Message.id != message.id))
    # A second row of the same console message already holds the ref (and recognises it from now on).
    message.console_message_id = None if taken else ref
    return True


def _protect_text(source: Source, row) -> bool:
    if source.column == "details":
        if not isinstance(row.details, dict):
            return False
        details = vault.map_written_details(row.details, lambda value: protect_stored(row.tenant_id, value)[0])
        if details == row.details:
            return False
        row.details = details
        return True
    stored = getattr(row, source.column)
    if not stored:
        return False
    check = row.server_check if source.has_check else None
    protected, fitted = protect_stored(row.tenant_id, stored, check)
    if protected == stored:
        return False
    setattr(row, source.column, protected)
    if source.has_check:
        row.server_check = fitted
    return True


def pending(*, restart: bool = False) -> dict[str, int]:
    """Rows past each table's mark (every row, with `restart`): what a run would go through."""
    marks = {} if restart else dict(db.session.execute(select(ProtectProgress.table_name,
                                                              ProtectProgress.last_id)).all())
    return {s.name: db.session.scalar(select(func.count()).select_from(s.model)
                                      .where(s.model.id > marks.get(s.name, 0))) or 0 for s in SOURCES}


def protect_existing(*, batch_size: int = BATCH_SIZE, restart: bool = False,
                     progress: Callable[[int], None] | None = None) -> ProtectReport:
    """Protect every table's rows past its mark (every row with `restart`), then audit
    `keys.protect_existing` with the counts. Commits."""
    report = ProtectReport()
    if restart:
        db.session.execute(update(ProtectProgress).values(last_id=0, updated_at=utcnow())
                           .execution_options(synchronize_session=False))
        db.session.commit()
    for source in SOURCES:
        # Rows written after this moment went through the vault already.
        upper = db.session.scalar(select(func.max(source.model.id))) or 0
        db.session.rollback()
        counts = report.tables[source.name]
        while True:
            scanned, changed = protect_batch(source, upper, batch_size)
            if not scanned:
                break
            counts.scanned += scanned
            counts.changed += changed
            if progress:
                progress(scanned)
    record_audit("keys.protect_existing", target_type="database", target_id="",
                 details={"tables": report.to_dict(), "restart": restart})
    db.session.commit()
    if db.session.get_bind().dialect.name == "sqlite":
        # The write-ahead log still holds the pages as they were before: fold it in and empty it.
        db.session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        db.session.commit()
    return report
