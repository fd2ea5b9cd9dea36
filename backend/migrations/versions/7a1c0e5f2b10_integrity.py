"""integrity: webhook secrets sealed, grant revocations and uses vouched for

Revision ID: 7a1c0e5f2b10
Revises: 7a1c0e5f2b09
Create Date: 2026-12-07 14:40:00

`webhook_endpoint.secret` becomes `sealed_secret`: each secret is sealed with AES-256-GCM under the master
key's `webhook-secret` key, bound to its tenant, endpoint and URL (backend/security/sealed.py). Grants
get `state_mac`, the HMAC of their nonce, revocation and uses under the `grant-state` key
(backend/services/grant_state.py). Both need the master key; with rows to convert and no key configured,
the migration stops before changing anything rather than lose the secrets. Downgrading opens the secrets
again and drops the MACs.

The two keys are what they are at this revision, HKDF-SHA256 of the master key (`purpose_key`): the key
material a later revision stores starts from the same value, so what this one writes stays valid.

The columns are renamed, added and dropped in place (SQLite 3.35 or later), not through a batch copy:
recreating webhook_endpoint or access_grant would cascade-delete their deliveries and uses.
"""
import hashlib
import hmac
import json
from datetime import UTC

import sqlalchemy as sa
from alembic import op
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

# revision identifiers, used by Alembic.
revision = '7a1c0e5f2b10'
down_revision = '7a1c0e5f2b09'
branch_labels = None
depends_on = None

SECRET_PURPOSE = 'webhook-secret'
STATE_PURPOSE = 'grant-state'
SEALED_LENGTH = 128

endpoints = sa.table('webhook_endpoint', sa.column('id', sa.Integer), sa.column('tenant_id', sa.Integer),
                     sa.column('url', sa.String), sa.column('secret', sa.String),
                     sa.column('sealed_secret', sa.String))
grants = sa.table('access_grant', sa.column('id', sa.Integer), sa.column('nonce', sa.String),
                  sa.column('revoked_at', sa.DateTime(timezone=True)), sa.column('uses', sa.Integer),
                  sa.column('state_mac', sa.String))


def purpose_key(purpose: str, what: str) -> bytes:
    """HKDF-SHA256(master key, "veil:" + purpose); a clear error when the master key is missing."""
    from backend.security.master_key import MasterKeyError, load_master_key

    try:
        master = load_master_key(current_app)
    except MasterKeyError as err:
        raise RuntimeError(f"{what} need the master key, and there is none: {err}. Nothing was changed; "
                           "configure the key this server runs with, then migrate again.") from None
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b'veil:' + purpose.encode()).derive(master)


def secret_binding(row) -> dict:
    # As backend.services.webhooks.secret_binding, which opens what this seals.
    return {'tenant_id': row.tenant_id, 'endpoint_id': row.id, 'url': row.url}


def state_mac(key: bytes, nonce: str, revoked_at, uses: int) -> str:
    # As backend.services.grant_state.state_mac (version 1), which checks what this writes.
    stamp = None
    if revoked_at is not None:
        if revoked_at.tzinfo is None:
            revoked_at = revoked_at.replace(tzinfo=UTC)
        stamp = revoked_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')
    body = json.dumps({'v': 1, 'nonce': nonce, 'revoked_at': stamp, 'uses': int(uses)},
                      sort_keys=True, separators=(',', ':'), ensure_ascii=True).encode('ascii')
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def upgrade():
    from backend.security.sealed import seal

    bind = op.get_bind()
    secrets = bind.execute(sa.select(endpoints.c.id, endpoints.c.tenant_id, endpoints.c.url, endpoints.c.secret)
                           .order_by(endpoints.c.id)).all()
    states = bind.execute(sa.select(grants.c.id, grants.c.nonce, grants.c.revoked_at, grants.c.uses)).all()
    what = f"{len(secrets)} webhook secret(s) to seal and {len(states)} grant(s) to vouch for"
    secret_key = purpose_key(SECRET_PURPOSE, what) if secrets else b''
    state_key = purpose_key(STATE_PURPOSE, what) if states else b''
    sealed = {row.id: seal(secret_key, row.secret, secret_binding(row)) for row in secrets}
    too_long = [endpoint_id for endpoint_id, value in sealed.items() if len(value) > SEALED_LENGTH]
    if too_long:
        raise RuntimeError(f"webhook endpoint(s) {too_long}: the secret is too long to seal into "
                           f"{SEALED_LENGTH} characters. Nothing was changed; delete those webhooks and add "
                           "them again.")

    op.alter_column('webhook_endpoint', 'secret', new_column_name='sealed_secret',
                    existing_type=sa.String(length=128), existing_nullable=False)
    op.add_column('access_grant', sa.Column('state_mac', sa.String(length=64), nullable=True))

    for endpoint_id, value in sealed.items():
        bind.execute(endpoints.update().where(endpoints.c.id == endpoint_id).values(sealed_secret=value))
    for row in states:
        bind.execute(grants.update().where(grants.c.id == row.id)
                     .values(state_mac=state_mac(state_key, row.nonce, row.revoked_at, row.uses)))


def downgrade():
    from backend.security.sealed import SealError, unseal

    bind = op.get_bind()
    rows = bind.execute(sa.select(endpoints.c.id, endpoints.c.tenant_id, endpoints.c.url,
                                  endpoints.c.sealed_secret).order_by(endpoints.c.id)).all()
    secret_key = purpose_key(SECRET_PURPOSE, f"{len(rows)} webhook secret(s) to open") if rows else b''
    clear = {}
    for row in rows:
        try:
            clear[row.id] = unseal(secret_key, row.sealed_secret, secret_binding(row))
        except SealError:
            raise RuntimeError(f"webhook endpoint {row.id}: its sealed secret does not open (changed in the "
                               "database?). Nothing was changed; delete that webhook, then downgrade.") from None

    op.drop_column('access_grant', 'state_mac')
    op.alter_column('webhook_endpoint', 'sealed_secret', new_column_name='secret',
                    existing_type=sa.String(length=128), existing_nullable=False)
    for endpoint_id, value in clear.items():
        bind.execute(endpoints.update().where(endpoints.c.id == endpoint_id).values(secret=value))
