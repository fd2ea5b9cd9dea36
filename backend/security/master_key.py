"""The master key: the one secret every other key of Veil is derived from, kept out of the database.

It comes from configuration: `VEIL_MASTER_KEY` (32 bytes, base64) in the app's config or the environment,
else the file `master.key` in the instance folder, which `veil init` makes (mode 0600) when it is absent.
A key file that others may read is refused: whoever can read it can read every customer identifier.

Each use gets a key of its own through HKDF-SHA256 (`derive_key`), so a key handed to one purpose (the
blind index, wrapping data keys, the audit chain, backups) says nothing about the others or the master.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
FILE_NAME = "master.key"
# What derived keys are in use for (documentation; `derive_key` takes any purpose).
PURPOSES = ("identifier-index", "data-key-wrap", "audit-chain", "backup")
_CACHE = "veil_master_key"


class MasterKeyError(RuntimeError):
    """No usable master key: the message says what to do."""


def master_key_path(app) -> Path:
    return Path(app.instance_path) / FILE_NAME


def new_master_key() -> str:
    """A fresh key, base64 (what VEIL_MASTER_KEY and master.key hold)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def decode_master_key(value: str, source: str) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"the master key in {source} is not base64") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(f"the master key in {source} must be {KEY_BYTES} bytes (base64), not {len(key)}")
    return key


def read_key_file(path: Path) -> bytes:
    """The key in `path`, refusing a file whose mode lets anyone but its owner read or write it."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise MasterKeyError(f"{path} has mode {mode:04o}: only its owner may read it (chmod 600 {path})")
    return decode_master_key(path.read_text(), str(path))


def load_master_key(app) -> bytes:
    """The master key (32 bytes): VEIL_MASTER_KEY if configured, else the instance's master.key."""
    cached = app.extensions.get(_CACHE)
    if cached is not None:
        return cached
    configured = app.config.get("VEIL_MASTER_KEY")
    if configured:
        key = decode_master_key(configured, "VEIL_MASTER_KEY")
    else:
        path = master_key_path(app)
        if not path.exists():
            raise MasterKeyError(f"no master key: run `veil init` to create {path}, or set VEIL_MASTER_KEY")
        key = read_key_file(path)
    app.extensions[_CACHE] = key
    return key


def create_master_key_file(app) -> Path | None:
    """`veil init`: make master.key (0600) unless VEIL_MASTER_KEY is set or the file exists. The path
    when a key was made now, else None."""
    if app.config.get("VEIL_MASTER_KEY"):
        return None
    path = master_key_path(app)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not each write a key (one would be lost).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w") as fh:
        fh.write(new_master_key() + "\n")
    return path


def derive_key(app, purpose: str) -> bytes:
    """HKDF-SHA256(master key, info = b"veil:" + purpose), 32 bytes."""
    keys = app.extensions.setdefault(_CACHE + ":derived", {})
    if purpose not in keys:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"veil:" + purpose.encode())
        keys[purpose] = hkdf.derive(load_master_key(app))
    return keys[purpose]
