"""Sensitive behaviour noticed by the extension or the backend (blocked sends, deletions, new devices…)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.base import UTCDateTime, created_at_column, iso
from backend.models.tenancy import User

# Kinds the extension reports as `behaviour` events (event protocol v1). extension/shared/events.js keeps
# the same list, and tests/test_ingest.py checks that the two agree.
REPORTED_KINDS = (
    "send_blocked",
    "send_warned",
    "bulk_copy",
    "contact_request",
    "extension_disabled",
    "offline_use",
    "reveal_requested",
)
# Types the server records itself while storing what a device sent.
MESSAGE_EDITED = "message_edited"
MESSAGE_DELETED = "message_deleted"
SERVER_RULE_HIT = "server_rule_hit"
# Types the server records about devices, from what it sees itself; a device cannot report these.
NEW_DEVICE = "new_device"  # an agent enrolled another browser while an earlier one is still active
DEVICE_REVOKED_BY_AGENT = "device_revoked_by_agent"
EXTENSION_REMOVED = "extension_removed"  # Chrome opened the device's removal link
HEARTBEAT_MISSING = "heartbeat_missing"  # switched off, blocked or the browser closed
HEARTBEAT_RESUMED = "heartbeat_resumed"  # heard from again after a heartbeat_missing

# Where a supervisor's review of an event stands (backend/services/reports.py moves it).
REVIEW_STATUSES = ("new", "confirmed", "dismissed")


class BehaviourEvent(db.Model):
    __tablename__ = "behaviour_event"
    __table_args__ = (
        UniqueConstraint("device_id", "client_event_id"),
        # The Reports list: a tenant's events by status, newest first; and one agent's, newest first.
        Index("ix_behaviour_event_tenant_status_occurred", "tenant_id", "status", "occurred_at"),
        Index("ix_behaviour_event_agent_occurred", "agent_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id", ondelete="SET NULL"))
    client_event_id: Mapped[str | None] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(48), index=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    received_at: Mapped[datetime] = created_at_column()
    # The review: rows from before the review existed are "new".
    status: Mapped[str] = mapped_column(String(16), default="new", server_default="new")
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL", name="fk_behaviour_event_reviewed_by_id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    agent: Mapped[User] = relationship(foreign_keys=[agent_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])

    def to_dict(self) -> dict:
        from backend.services.vault import display_details  # text in details is stored protected

        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "device_id": self.device_id,
            "conversation_id": self.conversation_id,
            "type": self.type,
            "details": display_details(self.details),
            "occurred_at": iso(self.occurred_at),
            "status": self.status,
            "review_note": self.review_note,
            "reviewed_by_id": self.reviewed_by_id,
            "reviewed_at": iso(self.reviewed_at),
        }
