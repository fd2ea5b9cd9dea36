"""Small secrets sealed at rest: AES-256-GCM under a 32-byte key of one purpose (the caller's
`derive_key(app, purpose)`), bound to the row that holds them.

The server must use such a secret itself (a webhook's signing secret), so it cannot be hashed like a
token; sealed, a copy of the database alone does not give it. The associated data names where the value
belongs (tenant, row, whatever the caller passes), so a sealed value copied into another row, or into the
same row once it points elsewhere, does not open. A sealed value is text: "v1." + base64(12-byte random
nonce + ciphertext + 16-byte tag).

Kept here rather than beside its first user, so any service with a secret to keep uses the same format.
"""

from __future__ import annotations

import base64
import binascii
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1."
NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value that does not open: from another row, changed, or sealed under another master key."""


def _associated_data(bound_to: dict) -> bytes:
    return json.dumps(bound_to, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def seal(key: bytes, plaintext: str, bound_to: dict) -> str:
    """`plaintext` sealed under `key`; it opens only with the same key and the same `bound_to`."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), _associated_data(bound_to))
    return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def unseal(key: bytes, value: str | None, bound_to: dict) -> str:
    """What `seal` sealed, or SealError."""
    if not value or not value.startswith(PREFIX):
        raise SealError("not a sealed value")
    try:
        raw = base64.b64decode(value[len(PREFIX):], validate=True)
        opened = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated_data(bound_to))
        return opened.decode("utf-8")
    except (binascii.Error, ValueError, InvalidTag) as exc:
        raise SealError("the sealed value does not open here") from exc
