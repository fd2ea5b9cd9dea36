"""A grant's changing state, vouched for by the server: whether it was revoked and how often it was used.

The owner's signature covers what a grant allows, not whether it has been revoked or used up: those change
without the owner's password. So each grant row carries `state_mac`, an HMAC-SHA256 under the master key's
`grant-state` key over its nonce, `revoked_at` and `uses`, written by the same conditional UPDATE as every
change of them (`grants.revoke`, `grants.use_grant`). Someone who can write the database but lacks the
master key cannot un-revoke a grant or lower its count by editing the row: the MAC no longer matches and
the grant is refused.

A MAC cannot tell an earlier genuine state from the current one: whoever kept an earlier copy of the row
could put it back. Two things limit that. Every use also adds a `grant_use` row in the same transaction,
so `uses` can never honestly be below the number of those rows: a row rolled back to fewer uses is refused
unless its `grant_use` rows are deleted too. And every use and revocation is in the audit trail, whose
entries cannot be removed unseen (`veil audit verify`); `compare_with_audit` finds grants whose row says
less than the trail does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import AuditLogEntry, Grant, GrantUse
from backend.security.master_key import derive_key

PURPOSE = "grant-state"
# Why a grant's state is not trusted (the reasons `grants._refuse` audits).
STATE_CHANGED = "state_changed"  # revoked_at or uses changed without the server's key
USES_ROLLED_BACK = "uses_rolled_back"  # fewer uses than the grant_use rows it left


def _stamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back UTC without its zone
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def state_mac(nonce: str, revoked_at: datetime | None, uses: int) -> str:
    """The MAC of one state. Whole seconds: revocations are stored without a fraction."""
    body = json.dumps({"v": 1, "nonce": nonce, "revoked_at": _stamp(revoked_at), "uses": int(uses)},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return hmac.new(derive_key(current_app, PURPOSE), body, hashlib.sha256).hexdigest()


def recorded_uses():
    """The number of grant_use rows of the grant in the enclosing query (indexed by grant_id)."""
    return (select(func.count(GrantUse.id)).where(GrantUse.grant_id == Grant.id).correlate(Grant)
            .scalar_subquery())


@dataclass(frozen=True)
class GrantState:
    """A grant's state as one statement read it: the row's columns and its grant_use rows agree in time."""

    uses: int
    revoked_at: datetime | None
    mac: str | None
    recorded_uses: int

    @classmethod
    def columns(cls) -> tuple:
        return Grant.uses, Grant.revoked_at, Grant.state_mac, recorded_uses()

    @classmethod
    def of_row(cls, row) -> GrantState:
        uses, revoked_at, mac, recorded = row
        return cls(uses=uses, revoked_at=revoked_at, mac=mac, recorded_uses=recorded)


def read_state(grant_id: int) -> GrantState:
    """The current state, in one statement: reading the row and counting its uses apart would let a use
    committed in between look like a count rolled back."""
    return GrantState.of_row(db.session.execute(select(*GrantState.columns()).where(Grant.id == grant_id)).one())


def problem(nonce: str, state: GrantState) -> str | None:
    """None when the server vouches for this state, else why not."""
    if not state.mac or not hmac.compare_digest(state.mac, state_mac(nonce, state.revoked_at, state.uses)):
        return STATE_CHANGED
    if state.uses < state.recorded_uses:
        return USES_ROLLED_BACK
    return None


@dataclass(frozen=True)
class Disagreement:
    grant_id: int
    message: str


def compare_with_audit(tenant_id: int | None = None) -> list[Disagreement]:
    """Grants whose row says less than the audit trail: not revoked although a `grant.revoke` entry names
    them, or fewer uses than entries counted under them. Reads the trail's grant entries, so it belongs
    beside `veil audit verify`, not in a request."""
    from backend.services.grants import USE_ACTIONS  # grants imports this module


    entries = select(AuditLogEntry.action, AuditLogEntry.target_id, AuditLogEntry.details).where(
        AuditLogEntry.action.in_({"grant.revoke", *USE_ACTIONS.values()}))
    grants = select(Grant.id, Grant.revoked_at, Grant.uses)
    if tenant_id is not None:
        entries = entries.where(AuditLogEntry.tenant_id == tenant_id)
        grants = grants.where(Grant.tenant_id == tenant_id)
    revoked: set[int] = set()
    used: Counter[int] = Counter()
    for action, target_id, details in db.session.execute(entries.execution_options(yield_per=1000)):
        if action == "grant.revoke":
            if str(target_id).isdigit():
                revoked.add(int(target_id))
        elif isinstance(details, dict) and isinstance(details.get("grant_id"), int):
            used[details["grant_id"]] += 1
    found = []
    for grant_id, revoked_at, uses in db.session.execute(grants.order_by(Grant.id)):
        if grant_id in revoked and revoked_at is None:
            found.append(Disagreement(grant_id, "revoked in the audit trail, not in the database"))
        if used[grant_id] > uses:
            found.append(Disagreement(grant_id, f"{used[grant_id]} uses in the audit trail, {uses} in the database"))
    return found
