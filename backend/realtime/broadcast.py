"""Pushes that must wait for the commit: a client told "rules changed" asks at once, and must find them.

`after_commit(fn)` runs `fn` once the current transaction of `db.session` commits, and drops it if the
transaction rolls back.

It runs when the committed transaction has ended and given its connection back to the pool, not inside
the commit: a push that reads what was committed opens a session of its own, and doing that while the
committing session still held its connection made every busy handler want two connections at once. With
more handlers than the pool holds (40 devices sending at once), each held one and waited for a second
forever (found by bench/bench_ingest.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from backend.extensions import db

log = logging.getLogger(__name__)
_PENDING = "veil_after_commit"
_READY = "veil_after_commit_ready"


def after_commit(push: Callable[[], None]) -> None:
    db.session().info.setdefault(_PENDING, []).append(push)


@event.listens_for(Session, "after_commit")
def _commit_pending(session: Session) -> None:
    pushes = session.info.pop(_PENDING, None)
    if pushes:
        session.info.setdefault(_READY, []).extend(pushes)


@event.listens_for(Session, "after_transaction_end")
def _run_ready(session: Session, transaction) -> None:
    if transaction.parent is not None:
        return  # a nested transaction: the outermost one holds the connection
    for push in session.info.pop(_READY, []):
        try:
            push()
        except Exception:
            # The data is committed; a client that missed the push catches up when it reconnects.
            log.exception("push after commit failed")


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
