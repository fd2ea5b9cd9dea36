"""Writes the audit trail. Each entry's hash covers its content and the previous entry's hash."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select, text

from backend.extensions import db
from backend.models import AuditLogEntry, User
from backend.models.base import utcnow

GENESIS_HASH = "0" * 64
AUDIT_LOCK_KEY = 0x5645494C  # "VEIL": the advisory lock that serialises appends on PostgreSQL


def entry_digest(entry: AuditLogEntry) -> str:
    body = {
        "tenant_id": entry.tenant_id,
        "actor_user_id": entry.actor_user_id,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "details": entry.details,
        "remote_addr": entry.remote_addr,
        "created_at": entry.created_at.isoformat(),
        "prev_hash": entry.prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
    """Append one entry. Callers commit.

    Concurrent writers: on PostgreSQL a transaction-scoped advisory lock queues them; SQLite allows one
    writer at a time anyway. The unique `prev_hash` is the backstop: a fork fails to commit.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    previous = db.session.scalar(select(AuditLogEntry.entry_hash).order_by(AuditLogEntry.id.desc()).limit(1))
    entry = AuditLogEntry(
        tenant_id=tenant_id if tenant_id is not None else (actor.tenant_id if actor else None),
        actor_user_id=actor.id if actor else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        details=details or {},
        remote_addr=remote_addr,
        created_at=utcnow(),
        prev_hash=previous or GENESIS_HASH,
    )
    entry.entry_hash = entry_digest(entry)
    db.session.add(entry)
    db.session.flush()
    return entry
