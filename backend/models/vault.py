"""Encryption at rest: per-tenant data keys and the customer identifiers encrypted under them.

Stored text holds a token (`\ue000<id>\ue001`) where a customer identifier was; the identifier itself is a
`CustomerIdentifier` row: AES-256-GCM ciphertext under one of the tenant's `DataKey`s, a blind index (keyed
HMAC of the normalised value) to find it by, and the masked hint everyone sees. A data key is stored only
wrapped by a key derived from the master key, which is never in the database (backend/services/vault.py).

`KeyMaterial` holds the keys whose results cannot be recomputed (the blind index's, the audit chain's…),
wrapped by the master key, so the master key can change (backend/services/key_material.py).
`ProtectProgress` is how far `veil keys protect-existing` got (backend/services/protect_existing.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.base import UTCDateTime, created_at_column


class DataKey(db.Model):
    """A tenant's data key, wrapped: 12-byte nonce + AES-GCM(wrap key, key). The newest key not retired
    encrypts new identifiers; `veil keys rotate` moves every identifier to a new one and retires the rest."""

    __tablename__ = "data_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    # `fingerprint()` of the master key that wrapped it (NULL: wrapped before fingerprints were kept).
    master_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CustomerIdentifier(db.Model):
    """One identifier of one tenant's customer (a phone number, e-mail address, ID or card number, handle,
    link or wallet), whichever way it was written: one row per (tenant, kind, blind index)."""

    __tablename__ = "customer_identifier"
    __table_args__ = (
        UniqueConstraint("tenant_id", "kind", "blind_index", name="uq_customer_identifier_index"),
        Index("ix_customer_identifier_data_key", "data_key_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # HMAC-SHA256, hex, of "<kind>:<normalised value>" under the tenant's identifier-index key.
    blind_index: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    data_key_id: Mapped[int] = mapped_column(ForeignKey("data_key.id"))
    # The masker's own masked form (138****5678, ****@example.com): what is shown without a restore grant.
    masked_hint: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()


class KeyMaterial(db.Model):
    """One purpose's key, wrapped: 12-byte nonce + AES-GCM(key-wrap key of the master, key, aad = purpose).
    The row named `master-check` holds no key: its fingerprint names the master key the database is under."""

    __tablename__ = "key_material"
    __table_args__ = (UniqueConstraint("purpose", name="uq_key_material_purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    # `fingerprint()` of the master key that wrapped it.
    master_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    rewrapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ProtectProgress(db.Model):
    """Rows of `table_name` up to `last_id` have been through `veil keys protect-existing`."""

    __tablename__ = "protect_progress"
    __table_args__ = (UniqueConstraint("table_name", name="uq_protect_progress_table"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    table_name: Mapped[str] = mapped_column(String(64))
    last_id: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
