"""Interventions: a reply a supervisor writes in the panel for one of an agent's conversations.

The agent's extension puts the text in that conversation's composer and sends it from the console; the
message it then logs is attributed to the supervisor (`Message.author_user_id`). The row follows the
reply from the panel to the console: queued → delivered (a device of the agent has it) → sent (the
console sent it), or failed / expired. `device_id` is the device that claimed it for sending, so two
browsers of one agent never both send it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.base import UTCDateTime, created_at_column, iso
from backend.models.chat import Conversation
from backend.models.tenancy import User

QUEUED = "queued"
DELIVERED = "delivered"
SENT = "sent"
FAILED = "failed"
EXPIRED = "expired"
STATUSES = (QUEUED, DELIVERED, SENT, FAILED, EXPIRED)
# Still on its way to the console: a device may be given it, and may claim it.
OPEN_STATUSES = (QUEUED, DELIVERED)
MAX_TEXT_CHARS = 4096
MAX_ERROR_CHARS = 200


class Intervention(db.Model):
    __tablename__ = "intervention"
    __table_args__ = (
        # What an agent's connecting device is given: their open interventions.
        Index("ix_intervention_agent_status", "agent_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"), index=True)
    # Denormalised from the conversation: whose devices deliver it.
    agent_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"))
    # The console message it became; unique, so one intervention is attributed to one message.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id", ondelete="SET NULL"), unique=True)
    error: Mapped[str | None] = mapped_column(String(MAX_ERROR_CHARS))

    conversation: Mapped[Conversation] = relationship()
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])

    def to_dict(self) -> dict:
        from backend.services.vault import display  # the text is stored protected, like messages

        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "agent_id": self.agent_id,
            "author": {"id": self.author.id, "display_name": self.author.display_name} if self.author else None,
            "text": display(self.text),
            "status": self.status,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "delivered_at": iso(self.delivered_at),
            "sent_at": iso(self.sent_at),
            "device_id": self.device_id,
            "message_id": self.message_id,
            "error": self.error,
        }
