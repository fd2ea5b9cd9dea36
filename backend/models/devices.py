"""An agent's browser profile running the extension."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.base import UTCDateTime, created_at_column, iso
from backend.models.tenancy import User


class Device(db.Model):
    """Created with a one-time enrolment code; after enrolment it holds its own revocable token.

    Only hashes of the code, of the token and of the removal link's token are stored, so a database copy
    cannot impersonate a device. `removal_reported_at` and `silence_reported_at` are the behaviour watch's
    memory: an `extension_removed` is recorded once, a `heartbeat_missing` once per silence.
    """

    __tablename__ = "device"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(120), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    enrolment_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    enrolment_code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removal_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    removal_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    silence_reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    agent: Mapped[User] = relationship()

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        return "enrolled" if self.enrolled_at else "pending"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "label": self.label,
            "status": self.status,
            "revoked": self.revoked_at is not None,
            "enrolled_at": iso(self.enrolled_at),
            "last_seen_at": iso(self.last_seen_at),
        }

