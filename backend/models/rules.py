"""Versions of a tenant's rule set (sensitive words, allow list, settings, console profiles)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.base import created_at_column


class RuleSetVersion(db.Model):
    """Immutable once written: an edit makes a new version, so extensions can sync by number."""

    __tablename__ = "rule_set_version"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    version: Mapped[int]
    # Deferred: the current version is looked up for every message stored (its hash names the compiled engine),
    # and its content (up to megabytes of words) is only read when a new version is compiled or shown.
    content: Mapped[dict] = mapped_column(JSON, deferred=True)
    sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(400), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()
