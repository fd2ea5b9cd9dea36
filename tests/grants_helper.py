"""Real, signed grants for tests, made fast.

The org's owner gets OWNER_PASSWORD and a signing key sealed by it, exactly as `signing_keys` makes one, but
from a key pair, scrypt result and password hash computed once per test session (each costs a tenth of a
second, and the access matrix needs grants in every one of its hundreds of cases). Grants are signed with
that key and checked by the real verification; `grants.issue` itself, with the password, opens the same key.
Tests of issuing (tests/test_grants.py) go through `grants.issue`.
"""

from __future__ import annotations

import base64
import os
from datetime import timedelta
from functools import cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import select

from backend.extensions import db
from backend.models import Grant, SigningKey, User
from backend.models.base import utcnow
from backend.security.passwords import hash_password
from backend.services import grant_state, grants, signing_keys

OWNER_PASSWORD = "owner-password-for-tests"
SALT = b"veil-test-salt-0"


@cache
def _password_hash() -> str:
    return hash_password(OWNER_PASSWORD)


@cache
def _kek() -> bytes:
    return Scrypt(salt=SALT, length=32, n=signing_keys.SCRYPT_N, r=signing_keys.SCRYPT_R,
                  p=signing_keys.SCRYPT_P).derive(OWNER_PASSWORD.encode())


@cache
def _private_key(email: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def owner_with_key(owner_id: int) -> tuple[User, SigningKey]:
    """The owner (or an admin), with OWNER_PASSWORD set and an active signing key sealed by it."""
    owner = db.session.get(User, owner_id)
    key = signing_keys.active_key(owner)
    if key is None:
        owner.password_hash = _password_hash()
        private = _private_key(owner.email)
        public = base64.b64encode(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
        key = SigningKey(tenant_id=owner.tenant_id, user_id=owner.id, public_key=public,
                         binding=signing_keys._binding(owner.tenant_id, owner.id, public),
                         kdf_salt=base64.b64encode(SALT).decode(), kdf_n=signing_keys.SCRYPT_N,
                         kdf_r=signing_keys.SCRYPT_R, kdf_p=signing_keys.SCRYPT_P, created_at=utcnow())
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        nonce = os.urandom(12)
        key.encrypted_private_key = base64.b64encode(
            nonce + AESGCM(_kek()).encrypt(nonce, raw, signing_keys._associated_data(key))).decode()
        db.session.add(key)
        db.session.flush()
    return owner, key


def issue_grant(org, grantee_id: int, kind: str = "private", *, agent_ids=(), department_ids=(),
                chat_account_ids=(), conversation_ids=(), starts=None, ends=None, max_uses=None,
                issuer_id: int | None = None) -> int:
    """A grant signed by `org`'s owner (or `issuer_id`), inside the current app context; commits."""
    issuer, key = owner_with_key(issuer_id or org.users["owner"].id)
    now = utcnow().replace(microsecond=0)
    grant = Grant(tenant_id=issuer.tenant_id, grantee_id=grantee_id, kind=kind, agent_ids=sorted(agent_ids),
                  department_ids=sorted(department_ids), chat_account_ids=sorted(chat_account_ids),
                  conversation_ids=sorted(conversation_ids),
                  starts_at=(starts or now - timedelta(minutes=1)).replace(microsecond=0),
                  ends_at=(ends or now + timedelta(days=1)).replace(microsecond=0), max_uses=max_uses, uses=0,
                  issued_by_id=issuer.id, issued_at=now, signing_key_id=key.id,
                  nonce=base64.urlsafe_b64encode(os.urandom(24)).decode())
    grant.signature = base64.b64encode(_private_key(issuer.email).sign(grants.signed_payload(grant))).decode()
    grant.state_mac = grant_state.state_mac(grant.nonce, None, 0)
    db.session.add(grant)
    db.session.commit()
    return grant.id


def grant_department(app, org, grantee_id: int, department_id: int, kind: str = "private", **options) -> int:
    """The same from outside an app context (tests hold none around requests)."""
    with app.app_context():
        return issue_grant(org, grantee_id, kind, department_ids=[department_id], **options)


def supervisor_reads(app, org) -> int:
    """The usual setup of tests that read records: the supervisor holds a private key for Sales."""
    return grant_department(app, org, org.users["supervisor"].id, org.sales_id)


def staff_read(app, org) -> list[int]:
    """The setup of tests written before grants: the owner and the admin hold a private key for both
    departments, the supervisor for Sales (theirs)."""
    with app.app_context():
        both = [org.sales_id, org.support_id]
        return [issue_grant(org, org.users["owner"].id, department_ids=both),
                issue_grant(org, org.users["admin"].id, department_ids=both),
                issue_grant(org, org.users["supervisor"].id, department_ids=[org.sales_id])]


def revoke_grants_of(app, org, user_id: int) -> None:
    """Every grant `user_id` holds, revoked by the owner: from now on they read nothing."""
    with app.app_context():
        owner = db.session.get(User, org.users["owner"].id)
        for grant in db.session.scalars(select(Grant).where(Grant.grantee_id == user_id)):
            grants.revoke(owner, grant)
        db.session.commit()
