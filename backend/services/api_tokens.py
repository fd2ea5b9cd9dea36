"""Personal API tokens for scripts."""

from __future__ import annotations

from sqlalchemy import update

from backend.extensions import db
from backend.models import ApiToken, User
from backend.models.base import utcnow
from backend.security.secrets import hash_token, new_token
from backend.services.audit import record_audit


def create_api_token(user: User, name: str = "cli") -> str:
    """Returns the token itself, shown once; only its hash is stored."""
    token = "veil_" + new_token()
    row = ApiToken(user=user, name=name[:120], token_hash=hash_token(token))
    db.session.add(row)
    db.session.flush()
    record_audit("api_token.create", tenant_id=user.tenant_id, target_type="user", target_id=user.id,
                 details={"name": row.name})
    return token


def revoke_api_tokens(actor: User | None, user: User) -> int:
    """Revoke every live token of `user` (a disabled account, a leaked script)."""
    result = db.session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    )
    if result.rowcount:
        record_audit("api_token.revoke", actor=actor, tenant_id=user.tenant_id, target_type="user",
                     target_id=user.id, details={"count": result.rowcount})
    return result.rowcount
