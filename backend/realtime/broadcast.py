"""Pushes that must wait for the commit: a client told "rules changed" asks at once, and must find them.

`after_commit(fn)` runs `fn` once the current transaction of `db.session` commits, and drops it if the
transaction rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from backend.extensions import db

log = logging.getLogger(__name__)
_PENDING = "veil_after_commit"


def after_commit(push: Callable[[], None]) -> None:
    db.session().info.setdefault(_PENDING, []).append(push)


@event.listens_for(Session, "after_commit")
def _run_pending(session: Session) -> None:
    for push in session.info.pop(_PENDING, []):
        try:
            push()
        except Exception:
            # The data is committed; a client that missed the push catches up when it reconnects.
            log.exception("push after commit failed")


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)
