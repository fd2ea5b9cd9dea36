"""Retention: how long a tenant keeps messages and behaviour events, and the legal holds that stop a purge.

Purging is `backend.services.retention.purge`. A tenant without a `RetentionSetting` row (or with a null
number of days) keeps everything.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.base import UTCDateTime, created_at_column, iso
from backend.models.tenancy import User

MIN_DAYS = 1
MAX_DAYS = 36500  # a hundred years: longer is "keep forever", which is null
MAX_REASON_CHARS = 500


class RetentionSetting(db.Model):
    """One row per tenant that has chosen limits. Null days: keep forever."""

    __tablename__ = "retention_setting"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True)
    # Messages with their revisions (edits, deletions), by the message's sent_at.
    messages_days: Mapped[int | None] = mapped_column(Integer)
    # Behaviour events by occurred_at; their alerts go with them (ON DELETE CASCADE).
    behaviour_days: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = created_at_column()
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    def to_dict(self) -> dict:
        return {"messages_days": self.messages_days, "behaviour_days": self.behaviour_days,
                "updated_at": iso(self.updated_at), "updated_by_id": self.updated_by_id}


class LegalHold(db.Model):
    """Keeps everything of one agent, or of one conversation, out of every purge while it is active.

    Released holds stay as the record of who held what and when.
    """

    __tablename__ = "legal_hold"
    __table_args__ = (
        CheckConstraint("(agent_id IS NULL) <> (conversation_id IS NULL)", name="ck_legal_hold_one_subject"),
        # The purge asks for a tenant's active holds.
        Index("ix_legal_hold_tenant_released", "tenant_id", "released_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"),
                                                        index=True)
    reason: Mapped[str] = mapped_column(String(MAX_REASON_CHARS))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at_column()
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    agent: Mapped[User | None] = relationship(foreign_keys=[agent_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    released_by: Mapped[User | None] = relationship(foreign_keys=[released_by_id])

    @property
    def active(self) -> bool:
        return self.released_at is None

    def to_dict(self) -> dict:
        return {"id": self.id, "agent_id": self.agent_id, "conversation_id": self.conversation_id,
                "reason": self.reason, "created_by_id": self.created_by_id, "created_at": iso(self.created_at),
                "released_at": iso(self.released_at), "released_by_id": self.released_by_id,
                "active": self.active}
