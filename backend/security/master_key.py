"""The master key: the one secret that opens every other key of Veil, kept out of the database.

It comes from configuration: `VEIL_MASTER_KEY` (32 bytes, base64) in the app's config or the environment,
else the file `master.key` in the instance folder, which `veil init` makes (mode 0600) when it is absent.
A key file that others may read is refused: whoever can read it can read every customer identifier.

Each use gets a key of its own (`derive_key`), so a key handed to one purpose says nothing about the others
or the master. Two kinds:

- Derived directly, HKDF-SHA256(master, "veil:" + purpose), for keys that only wrap or seal something
  `veil keys rotate-master` can redo: the key that wraps stored keys, "data-key-wrap" (data keys are
  wrapped rows), "backup" (each file's key) and the master-key check.
- Stored, for keys whose results cannot be recomputed (the blind index and customer refs, audit-chain
  MACs, signing-key bindings, sealed webhook secrets, grant-state MACs: every other purpose): a random-
  looking key kept in the database wrapped by the master key (backend/services/key_material.py), so
  changing the master key re-wraps it and everything made with it stays valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
FILE_NAME = "master.key"
# The key `veil keys rotate-master` replaced, kept until the rotation has finished (and for old backups).
PREVIOUS_FILE_NAME = "master.key.previous"
# Purposes derived from the master key itself; every other purpose is a stored key (see the docstring).
KEY_WRAP = "key-material-wrap"
CHECK = "master-check"
DIRECT_PURPOSES = frozenset({KEY_WRAP, CHECK, "data-key-wrap", "backup"})
# Stored purposes in use (documentation; `derive_key` takes any purpose). `veil keys rotate-master` makes
# sure each has its row before the master key changes.
STORED_PURPOSES = ("identifier-index", "audit-chain", "signing-keys", "webhook-secret", "grant-state")
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


def hkdf_key(master: bytes, purpose: str) -> bytes:
    """HKDF-SHA256(master, info = b"veil:" + purpose), 32 bytes: what every key was before keys were stored,
    and what a stored key starts as, so data keyed before then stays valid."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"veil:" + purpose.encode())
    return hkdf.derive(master)


def fingerprint(master: bytes) -> str:
    """Names a master key without giving anything of it away (an HMAC of a constant under a derived key):
    stored beside what it wrapped, it tells which key opens a row, and a wrong key from a right one."""
    return hmac.new(hkdf_key(master, CHECK), b"veil master key check", hashlib.sha256).hexdigest()


def master_fingerprint(app) -> str:
    cached = app.extensions.get(_CACHE + ":fingerprint")
    if cached is None:
        cached = app.extensions[_CACHE + ":fingerprint"] = fingerprint(load_master_key(app))
    return cached


def derive_key(app, purpose: str) -> bytes:
    """The 32-byte key of `purpose`: derived from the master key for DIRECT_PURPOSES, else the stored key."""
    if purpose not in DIRECT_PURPOSES:
        # Imported here: the stored keys live in the database, which this module otherwise never touches.
        from backend.services.key_material import stored_key

        return stored_key(app, purpose)
    keys = app.extensions.setdefault(_CACHE + ":derived", {})
    if purpose not in keys:
        keys[purpose] = hkdf_key(load_master_key(app), purpose)
    return keys[purpose]


def use_master_key(app, key: bytes) -> None:
    """From now on this process works under `key` (after `veil keys rotate-master` switched to it)."""
    forget_master_key(app)
    app.extensions[_CACHE] = key


def forget_master_key(app) -> None:
    """Drop every cached key of this process: the next use reads configuration and the database again."""
    for name in (_CACHE, _CACHE + ":derived", _CACHE + ":fingerprint"):
        app.extensions.pop(name, None)
    from backend.services.key_material import forget_stored_keys

    forget_stored_keys(app)


# ---- key files ---------------------------------------------------------------------------------------------

def previous_key_path(app) -> Path:
    return Path(app.instance_path) / PREVIOUS_FILE_NAME


def read_previous_key(app) -> bytes | None:
    """The key in master.key.previous, if there is one."""
    path = previous_key_path(app)
    return read_key_file(path) if path.exists() else None


def write_key_file(path: Path, key: bytes) -> None:
    """Replace `path` with `key` (mode 0600) so that a crash leaves the old file or the new one, never a
    torn one: written beside it, flushed to disk, renamed over it, and the rename flushed too."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(key).decode() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
