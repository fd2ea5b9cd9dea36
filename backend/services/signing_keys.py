"""Grant signing keys: an Ed25519 key pair per owner (and admin), its private half sealed by the password.

The private key is encrypted with AES-256-GCM under a key that scrypt derives from the person's password, so
issuing a grant needs that password and the database alone cannot sign one. Each key row carries an HMAC
under a server-side secret (never in the database), so a key row inserted by someone holding only the
database is not trusted either.

A password changed with the old one known re-seals the same key. A reset without it (an admin, the command
line) makes a new pair and retires the old one; its public half stays, so what it signed stays valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from flask import current_app
from sqlalchemy import select

from backend.extensions import db
from backend.models import Role, SigningKey, User
from backend.models.base import utcnow

# scrypt cost (RFC 7914 §2 suggests N=2^20 for files; 2^15 keeps issuing a grant well under a second).
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
KEY_HOLDERS = (Role.OWNER, Role.ADMIN)
BINDING_PURPOSE = "signing-keys"


class WrongPassword(Exception):
    """The password does not open the signing key."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def _binding_secret() -> bytes:
    """The server-side secret that vouches for key rows: derived from the master key when the vault has
    one, else from SECRET_KEY (configuration, never the database, either way)."""
    try:
        from backend.security.master_key import derive_key
    except ImportError:
        derive_key = None
    if derive_key is not None:
        return derive_key(current_app, BINDING_PURPOSE)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"veil:" + BINDING_PURPOSE.encode())
    return hkdf.derive(current_app.config["SECRET_KEY"].encode("utf-8"))


def _binding(tenant_id: int, user_id: int, public_key: str) -> str:
    message = f"{tenant_id}:{user_id}:{public_key}".encode("ascii")
    return hmac.new(_binding_secret(), message, hashlib.sha256).hexdigest()


def is_trusted(key: SigningKey) -> bool:
    """Whether the row was made by this server (its HMAC matches)."""
    return hmac.compare_digest(key.binding, _binding(key.tenant_id, key.user_id, key.public_key))


def _seal_key(salt: bytes, n: int, r: int, p: int, password: str) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode("utf-8"))


def _associated_data(key: SigningKey) -> bytes:
    # Ties the ciphertext to its row: moved to another user's row it does not decrypt.
    return f"veil-signing-key:{key.tenant_id}:{key.user_id}:{key.public_key}".encode("ascii")


def _seal(key: SigningKey, private: Ed25519PrivateKey, password: str) -> None:
    salt = os.urandom(16)
    key.kdf_salt, key.kdf_n, key.kdf_r, key.kdf_p = _b64(salt), SCRYPT_N, SCRYPT_R, SCRYPT_P
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    nonce = os.urandom(12)
    sealed = AESGCM(_seal_key(salt, key.kdf_n, key.kdf_r, key.kdf_p, password)).encrypt(
        nonce, raw, _associated_data(key))
    key.encrypted_private_key = _b64(nonce + sealed)


def active_key(user: User) -> SigningKey | None:
    return db.session.scalar(select(SigningKey).where(
        SigningKey.user_id == user.id, SigningKey.retired_at.is_(None)).order_by(SigningKey.id.desc()).limit(1))


def create_key(user: User, password: str) -> SigningKey:
    """A new key pair sealed by `password`; the user's previous key is retired (kept for verifying)."""
    now = utcnow()
    for old in db.session.scalars(select(SigningKey).where(SigningKey.user_id == user.id,
                                                           SigningKey.retired_at.is_(None))):
        old.retired_at = now
    private = Ed25519PrivateKey.generate()
    public = _b64(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    key = SigningKey(tenant_id=user.tenant_id, user_id=user.id, public_key=public, created_at=now,
                     binding=_binding(user.tenant_id, user.id, public))
    _seal(key, private, password)
    db.session.add(key)
    db.session.flush()
    return key


def unlock(key: SigningKey, password: str) -> Ed25519PrivateKey:
    """The private key, or WrongPassword."""
    blob = _unb64(key.encrypted_private_key)
    try:
        box = AESGCM(_seal_key(_unb64(key.kdf_salt), key.kdf_n, key.kdf_r, key.kdf_p, password))
        raw = box.decrypt(blob[:12], blob[12:], _associated_data(key))
    except (InvalidTag, ValueError) as exc:
        raise WrongPassword() from exc
    return Ed25519PrivateKey.from_private_bytes(raw)


def password_changed(user: User, new_password: str, old_password: str | None = None) -> SigningKey | None:
    """Called wherever a password is set. Owners and admins hold a signing key: re-sealed under the new
    password when the old one opens it, otherwise replaced by a new pair (the old one retired)."""
    if user.role not in KEY_HOLDERS:
        return None
    current = active_key(user)
    if current is not None and old_password is not None:
        try:
            private = unlock(current, old_password)
        except WrongPassword:
            pass
        else:
            _seal(current, private, new_password)
            return current
    return create_key(user, new_password)


def public_key_from_text(public_key: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_unb64(public_key))
