"""Personal API tokens for scripts."""

from __future__ import annotations

from backend.extensions import db
from backend.models import ApiToken, User
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
