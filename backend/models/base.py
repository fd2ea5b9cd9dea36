"""Column helpers shared by every model, and the one insert that tolerates a row already being there."""

from datetime import UTC, datetime

from sqlalchemy import DateTime, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from backend.extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Stores aware UTC datetimes; SQLite drops the zone, so it is put back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; Veil stores UTC-aware datetimes only")
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def created_at_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 for JSON, or None."""
    return value.isoformat() if value else None


_MEMO = "veil_transaction_memo"  # the Session.info key of `transaction_memo`


def transaction_memo() -> dict:
    """What the session's current transaction looked up once and may reuse: ingest stores a whole batch in
    one transaction, and the tenant's rule set, engine and active data key do not change under it (a rule
    change or a key rotation commits in a transaction of its own, and empties the memo if it shares one).
    Emptied when the outermost transaction ends."""
    return db.session.info.setdefault(_MEMO, {})


@event.listens_for(Session, "after_transaction_end")
def _forget_memo(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_MEMO, None)


def insert_if_absent(model, values: dict, *, connection=None) -> int | None:
    """INSERT … ON CONFLICT DO NOTHING: the new row's id, or None when one of its unique keys is taken.
    Through `connection` when given (a transaction of the caller's own), else the session.

    Safe against a racing writer without savepoints: on PostgreSQL an insert of a key that another open
    transaction has just inserted waits for it, then does nothing if it committed; SQLite has one writer.
    """
    target = connection if connection is not None else db.session
    dialect = (connection.dialect if connection is not None else db.session.get_bind().dialect).name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**values).on_conflict_do_nothing().returning(model.id)
    return target.execute(statement).scalar_one_or_none()
