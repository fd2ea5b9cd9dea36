"""Sign-in state: server-side panel sessions, personal API tokens and the failed-login ledger."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.base import UTCDateTime, created_at_column
from backend.models.tenancy import User


class WebSession(db.Model):
    """A panel session. The cookie carries only a random id; its SHA-256 is the key here."""

    __tablename__ = "web_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = created_at_column()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApiToken(db.Model):
    """A personal token for scripts, sent as `Authorization: Bearer`. Only its hash is kept."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class LoginAttempt(db.Model):
    """One failed attempt to prove who one is (`kind`: sign_in or enrolment); recent rows decide throttling."""

    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="sign_in", server_default="sign_in", index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    remote_addr: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = created_at_column()
    details: Mapped[dict] = mapped_column(JSON, default=dict)
