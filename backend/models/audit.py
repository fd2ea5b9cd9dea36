"""The audit trail: append-only chains of entries, each carrying the keyed hash of the one before it.

One chain per tenant (`chain` = the tenant's id), one for entries that belong to no tenant (`chain` 0:
sign-in failures for unknown e-mails, throttling) and the frozen chain of entries written before the
hashes were keyed (`chain` -1, `hash_version` 1). `seq` numbers a chain's entries 1, 2, 3... without gaps.
See backend/services/audit.py for how entries are hashed and verified.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.base import created_at_column, iso

LEGACY_CHAIN = -1  # entries from before the switch to keyed hashes: one instance-wide chain, SHA-256
INSTANCE_CHAIN = 0  # entries that belong to no tenant
UNKEYED = 1  # hash_version: SHA-256 over the content (before migration 7a1c0e5f2b06)
KEYED = 2  # hash_version: HMAC-SHA256 under the master key's "audit-chain" key, covering chain and seq


class AuditLogEntry(db.Model):
    __tablename__ = "audit_log_entry"
    __table_args__ = (
        # Unique: two writers that read the same last entry cannot both append after it (no forked chain).
        UniqueConstraint("prev_hash", name="uq_audit_log_entry_prev_hash"),
        # A chain's numbering: no two entries share a place.
        UniqueConstraint("chain", "seq", name="uq_audit_log_entry_chain_seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id", ondelete="SET NULL"), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = created_at_column()
    # Not a foreign key: the chain an entry was written in never changes, whatever happens to the tenant.
    chain: Mapped[int] = mapped_column()
    seq: Mapped[int] = mapped_column()
    hash_version: Mapped[int] = mapped_column(SmallInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "seq": self.seq,
            "actor_user_id": self.actor_user_id,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "details": self.details,
            "remote_addr": self.remote_addr,
            "created_at": iso(self.created_at),
            "entry_hash": self.entry_hash,
        }
