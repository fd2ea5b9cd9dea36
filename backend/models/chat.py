"""Chat accounts, conversations and messages as logged by the extension.

Customer identifiers are never stored in clear. A conversation is keyed by `customer_ref`, a keyed hash
made in `backend.security.identifiers`, and shown under a stable pseudonym; the encryption issue adds
encrypted originals beside these columns without changing their meaning.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.base import UTCDateTime, created_at_column, iso
from backend.models.devices import Device
from backend.models.tenancy import User

DIRECTIONS = ("in", "out")
# The records search migration (7a1c0e5f2b01) makes its full-text structures by hand: FTS5 tables and their
# shadow tables on SQLite, trigram GIN indexes on PostgreSQL. No model describes them, so schema comparison
# (migrations/env.py, tests/test_schema.py) leaves out every name with this prefix.
SEARCH_INDEX_PREFIX = "search_index_"


def is_search_index(name: str | None) -> bool:
    return bool(name) and name.startswith(SEARCH_INDEX_PREFIX)


class ChatAccount(db.Model):
    """The account an agent operates on one platform (whatsapp, telegram, messenger, line, web…).

    Keyed per agent: agents on shifts often share one company number, and each of them gets a row of
    their own, so an agent's device only ever writes into that agent's conversations.
    """

    __tablename__ = "chat_account"
    __table_args__ = (
        UniqueConstraint("tenant_id", "agent_id", "platform", "handle", name="uq_chat_account_agent_handle"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    # The company's own account name or number: business data, not customer data.
    handle: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()

    agent: Mapped[User] = relationship()

    def to_dict(self) -> dict:
        return {"id": self.id, "agent_id": self.agent_id, "platform": self.platform, "handle": self.handle}


class Conversation(db.Model):
    """One customer on one chat account."""

    __tablename__ = "conversation"
    __table_args__ = (UniqueConstraint("chat_account_id", "customer_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    chat_account_id: Mapped[int] = mapped_column(ForeignKey("chat_account.id", ondelete="CASCADE"))
    # Denormalised from the chat account: every visibility query filters on it.
    agent_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    customer_ref: Mapped[str] = mapped_column(String(64))
    customer_pseudonym: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = created_at_column()
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    chat_account: Mapped[ChatAccount] = relationship()
    agent: Mapped[User] = relationship()

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "chat_account": self.chat_account.to_dict(),
            "customer_pseudonym": self.customer_pseudonym,
            "started_at": iso(self.started_at),
            "last_message_at": iso(self.last_message_at),
        }


class Message(db.Model):
    """A message as read from the console. (device_id, client_event_id) makes a retried upload idempotent,
    and (conversation_id, console_message_id) keeps a row re-read after a page reload from being stored twice.

    `text` is the message as first logged and never changes; edits and the deletion are `MessageRevision`s.
    It is stored protected (customer identifiers as tokens, backend/services/vault.py); `to_dict` shows it.
    """

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("device_id", "client_event_id"),
        UniqueConstraint("conversation_id", "console_message_id", name="uq_message_console_id"),
        Index("ix_message_conversation_sent", "conversation_id", "sent_at"),
        # Records search pages newest first by (sent_at, id) within a tenant without sorting.
        Index("ix_message_tenant_sent", "tenant_id", "sent_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"))
    client_event_id: Mapped[str | None] = mapped_column(String(64))
    # The console's own id for the row (or one the content script made stable).
    console_message_id: Mapped[str | None] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(3))
    text: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = created_at_column()
    # The server's own check of an outgoing message: {"action", "findings", "rules"} (rules: payload hash).
    server_check: Mapped[dict | None] = mapped_column(JSON)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when a supervisor wrote the message from the panel (intervention).
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))

    conversation: Mapped[Conversation] = relationship()
    device: Mapped[Device | None] = relationship()
    revisions: Mapped[list[MessageRevision]] = relationship(
        back_populates="message", order_by="MessageRevision.id", lazy="selectin"
    )

    def to_dict(self) -> dict:
        from backend.services.vault import display  # the vault reads models: imported when first shown

        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "direction": self.direction,
            "text": display(self.text),
            "sent_at": iso(self.sent_at),
            "author_user_id": self.author_user_id,
            "edited_at": iso(self.edited_at),
            "deleted_at": iso(self.deleted_at),
            "revisions": [r.to_dict() for r in self.revisions],
        }


REVISION_KINDS = ("edit", "delete")


class MessageRevision(db.Model):
    """A later version of a message: an edit (the new text) or the deletion (the last text seen)."""

    __tablename__ = "message_revision"
    __table_args__ = (UniqueConstraint("device_id", "client_event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("device.id", ondelete="SET NULL"))
    client_event_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = created_at_column()
    server_check: Mapped[dict | None] = mapped_column(JSON)

    message: Mapped[Message] = relationship(back_populates="revisions")

    def to_dict(self) -> dict:
        from backend.services.vault import display

        return {"kind": self.kind, "text": display(self.text), "at": iso(self.occurred_at)}
