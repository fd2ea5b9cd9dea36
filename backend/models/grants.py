"""Grants: the owner's signing keys, the private and restore grants they sign, and each use of a grant.

A grant is only as good as its signature: `backend.services.grants` verifies it against the stored public
key that signed it on every check, so a row written straight into the database is refused. What changes
after issue (revocation, uses) is vouched for by the server instead (`backend.services.grant_state`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.extensions import db
from backend.models.base import UTCDateTime, created_at_column, iso
from backend.models.tenancy import User

PRIVATE = "private"  # the private key: read the chat records in scope
RESTORE = "restore"  # the restore key: reveal masked customer identifiers in scope
GRANT_KINDS = (PRIVATE, RESTORE)
SCOPE_FIELDS = ("agent_ids", "department_ids", "chat_account_ids", "conversation_ids")


class SigningKey(db.Model):
    """An owner's (or allowed admin's) Ed25519 key pair. The private half is kept encrypted with AES-256-GCM
    under a key scrypt derives from the person's password; a password reset without the old password makes
    a new pair and retires this one, whose public half stays to verify what it signed."""

    __tablename__ = "signing_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(String(64))  # raw 32 bytes, base64
    # nonce (12 bytes) + AES-GCM ciphertext of the raw private key, base64
    encrypted_private_key: Mapped[str] = mapped_column(Text)
    kdf_salt: Mapped[str] = mapped_column(String(64))  # base64
    kdf_n: Mapped[int] = mapped_column(Integer)
    kdf_r: Mapped[int] = mapped_column(Integer)
    kdf_p: Mapped[int] = mapped_column(Integer)
    # HMAC (server-side secret) over tenant, user and public key: a key row added to the database by
    # someone without the server's secret is not trusted.
    binding: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at_column()
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class Grant(db.Model):
    """A private or restore grant: who, what kind, which agents/departments/chat accounts/conversations,
    from when to when, how many uses. Every field that matters is covered by `signature`; `revoked_at` and
    `uses`, which change without the issuer, by `state_mac`."""

    __tablename__ = "access_grant"  # GRANT is an SQL keyword
    __table_args__ = (Index("ix_access_grant_grantee", "tenant_id", "grantee_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    grantee_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    agent_ids: Mapped[list] = mapped_column(JSON, default=list)
    department_ids: Mapped[list] = mapped_column(JSON, default=list)
    chat_account_ids: Mapped[list] = mapped_column(JSON, default=list)
    conversation_ids: Mapped[list] = mapped_column(JSON, default=list)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    signing_key_id: Mapped[int] = mapped_column(ForeignKey("signing_key.id", ondelete="CASCADE"))
    # Random per grant and unique: a signed row copied under another id is a duplicate, not a new grant.
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    signature: Mapped[str] = mapped_column(String(128))  # Ed25519, base64
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    # HMAC (the master key's grant-state key) over nonce, revoked_at and uses; None or wrong: refused.
    state_mac: Mapped[str | None] = mapped_column(String(64))
    # Set when the signature check first refuses the row, so the refusal is audited once.
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    grantee: Mapped[User] = relationship(foreign_keys=[grantee_id])
    issued_by: Mapped[User] = relationship(foreign_keys=[issued_by_id])
    revoked_by: Mapped[User | None] = relationship(foreign_keys=[revoked_by_id])

    def scope(self) -> dict[str, list[int]]:
        return {name: list(getattr(self, name) or []) for name in SCOPE_FIELDS}

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "grantee": {"id": self.grantee.id, "display_name": self.grantee.display_name,
                        "email": self.grantee.email},
            "kind": self.kind,
            "scope": self.scope(),
            "starts_at": iso(self.starts_at),
            "ends_at": iso(self.ends_at),
            "max_uses": self.max_uses,
            "uses": self.uses,
            "issued_by": {"id": self.issued_by.id, "display_name": self.issued_by.display_name},
            "issued_at": iso(self.issued_at),
            "revoked_at": iso(self.revoked_at),
            "revoked_by": {"id": self.revoked_by.id, "display_name": self.revoked_by.display_name}
            if self.revoked_by else None,
        }


class GrantUse(db.Model):
    """One use of a grant: a record view, search or export under a private grant, a reveal under a restore one."""

    __tablename__ = "grant_use"

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("access_grant.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    what: Mapped[str] = mapped_column(String(32))
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = created_at_column()


class GrantSetting(db.Model):
    """Per tenant: whether admins may issue and revoke grants (off unless the owner turns it on)."""

    __tablename__ = "grant_setting"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), primary_key=True)
    admins_may_issue: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = created_at_column()
