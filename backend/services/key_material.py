"""Stored keys: each purpose's key kept in the database (`key_material`), wrapped by the master key.

Why: the blind index and customer refs, the audit chain's MACs, signing-key bindings, sealed webhook
secrets and grant-state MACs are made with keys whose results cannot be made again (a customer ref needs
an identifier that was never stored; re-MACing the audit chain would erase its evidence). Derived from the
master key, those keys would tie the data to it for ever. Stored wrapped (AES-256-GCM under the master
key's `key-material-wrap` key, the purpose as associated data), they stay the same when
`veil keys rotate-master` re-wraps them under a new master key (services/master_rotation.py).

A purpose's row is made the first time a process needs it, holding the value the key had when it was
derived: HKDF(master, purpose). So every blind index, ref, chain and binding made before stays valid.

Loading. The rows are read once per process (then cached) through a short connection of their own, not
the caller's session: `derive_key` runs in requests, Socket.IO handlers, `veil serve`'s background loops
and commands, and must not commit or roll back anyone's work. Two processes making a row at once end with
one (INSERT … ON CONFLICT DO NOTHING, then read back). One exception: on SQLite, when the caller's
transaction already holds the write lock, another connection would wait for that very transaction, so the
missing rows go into it (their value does not depend on who writes them).

The `master-check` row holds only the fingerprint of the master key the database is under: a process with
another key (a restored database, another instance's key file) stops with a MasterKeyError that says so,
instead of failing later on a decryption.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app, has_app_context
from sqlalchemy import inspect, select

from backend.extensions import db
from backend.models import KeyMaterial
from backend.models.base import insert_if_absent, utcnow
from backend.security.master_key import (
    CHECK,
    KEY_WRAP,
    STORED_PURPOSES,
    MasterKeyError,
    fingerprint,
    hkdf_key,
    load_master_key,
    master_fingerprint,
    master_key_path,
    read_previous_key,
)

NONCE_BYTES = 12
_CACHE = "veil_key_material"
_lock = threading.Lock()


# ---- wrapping ------------------------------------------------------------------------------------------

def wrap(master: bytes, purpose: str, key: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(hkdf_key(master, KEY_WRAP)).encrypt(nonce, key, _aad(purpose))


def unwrap(master: bytes, purpose: str, wrapped: bytes) -> bytes:
    try:
        return AESGCM(hkdf_key(master, KEY_WRAP)).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:],
                                                           _aad(purpose))
    except InvalidTag:
        raise MasterKeyError(f"the stored {purpose!r} key does not open with the master key its row names: "
                             "the key_material row was changed") from None


def _aad(purpose: str) -> bytes:
    # Bound to its purpose: a wrapped key copied into another purpose's row does not open.
    return f"veil:key-material:{purpose}".encode()


# ---- reading and making rows ---------------------------------------------------------------------------

def _rows(conn) -> dict[str, KeyMaterial]:
    table = KeyMaterial.__table__
    query = select(table.c.purpose, table.c.wrapped_key, table.c.master_fingerprint)
    if conn.dialect.name == "postgresql":
        # Held to the end of this short transaction: a rotation re-wrapping now waits, and is seen after.
        query = query.with_for_update(read=True)
    return {row.purpose: row for row in conn.execute(query)}


def add_missing(conn, master: bytes, purposes: Iterable[str]) -> None:
    """Rows for the purposes (and the check) that have none yet, under `master`."""
    present = set(_rows(conn))
    now = utcnow()
    for purpose in [CHECK, *purposes]:
        if purpose in present:
            continue
        wrapped = None if purpose == CHECK else wrap(master, purpose, hkdf_key(master, purpose))
        insert_if_absent(KeyMaterial, {"purpose": purpose, "wrapped_key": wrapped,
                                       "master_fingerprint": fingerprint(master), "created_at": now},
                         connection=conn)
        present.add(purpose)


def load(conn, master: bytes, purposes: Iterable[str] = (), *, create: bool = True, app=None) -> dict[str, bytes]:
    """Every stored key, unwrapped; `purposes` without a row are made (or, with create=False, only
    computed). MasterKeyError when the database is under another master key."""
    purposes = list(purposes)
    if create:
        add_missing(conn, master, purposes)
    rows = _rows(conn)  # read back: a racing process may have made a row first
    expected = fingerprint(master)
    for row in rows.values():
        if row.master_fingerprint != expected:
            raise MasterKeyError(wrong_master_message(app, row.master_fingerprint, expected))
    keys = {purpose: unwrap(master, purpose, row.wrapped_key) for purpose, row in rows.items()
            if row.wrapped_key is not None}
    for purpose in purposes:
        keys.setdefault(purpose, hkdf_key(master, purpose))
    return keys


def wrong_master_message(app, found: str, expected: str) -> str:
    where = "VEIL_MASTER_KEY" if app is not None and app.config.get("VEIL_MASTER_KEY") else (
        str(master_key_path(app)) if app is not None else "the master key")
    message = (f"this database's keys are wrapped by another master key (fingerprint {found[:12]}…; {where} has "
               f"{expected[:12]}…): start Veil with the master key this database was made with")
    try:
        previous = read_previous_key(app) if app is not None else None
    except MasterKeyError:
        previous = None
    if previous is not None and fingerprint(previous) == found:
        message += (". It is the key in master.key.previous: a `veil keys rotate-master` has not finished; "
                    "run it again to finish")
    else:
        message += (". If a `veil keys rotate-master` was interrupted, run it again (with VEIL_MASTER_KEY: the "
                    "same --new-key-file, or --previous-key-file with the old key)")
    return message


# ---- the process's keys --------------------------------------------------------------------------------

def _same_app(app) -> bool:
    if not has_app_context():
        return False
    real = app._get_current_object() if hasattr(app, "_get_current_object") else app
    return current_app._get_current_object() is real


def _callers_sqlite_write():
    """The caller's connection when it is SQLite's and its transaction holds the write lock, else None."""
    session = db.session()
    if not session.in_transaction():
        return None
    conn = session.connection()
    if conn.dialect.name != "sqlite" or not conn.connection.driver_connection.in_transaction:
        return None
    return conn


@contextmanager
def _connection(app) -> Iterator:
    with nullcontext() if _same_app(app) else app.app_context():
        caller = _callers_sqlite_write()
        if caller is not None:
            yield caller
            return
        with db.engine.connect() as conn:
            yield conn
            conn.commit()


def stored_key(app, purpose: str) -> bytes:
    """`derive_key` for a stored purpose: the unwrapped key, its row made on first use."""
    cache = app.extensions.get(_CACHE)
    if cache is not None and purpose in cache:
        return cache[purpose]
    with _lock:
        cache = app.extensions.get(_CACHE) or {}
        if purpose not in cache:
            master = load_master_key(app)
            with _connection(app) as conn:
                if not _migrated(conn):
                    # A database not migrated this far (during migrations, or an old schema): no rotation can
                    # have happened, so the key is still the derived one. Not cached: the rows come next.
                    return hkdf_key(master, purpose)
                cache = {**cache, **load(conn, master, {purpose, *STORED_PURPOSES}, app=app)}
            app.extensions[_CACHE] = cache
        return cache[purpose]


def _migrated(conn) -> bool:
    return inspect(conn).has_table(KeyMaterial.__tablename__)


def ensure_key_material(app) -> None:
    """Every known purpose has its row and the database is under this process's master key; raises
    MasterKeyError otherwise. `veil init` and `veil serve` call it before anything else."""
    with _lock:
        master = load_master_key(app)
        with _connection(app) as conn:
            if not _migrated(conn):
                raise MasterKeyError("the database is not migrated to this Veil's schema: run `veil init`")
            app.extensions[_CACHE] = load(conn, master, STORED_PURPOSES, app=app)


def adopt_restored(app, conn) -> None:
    """After `veil restore` loaded a backup through `conn`: this process's keys are the restored rows'
    (nothing is written; a purpose the backup has no row for is made later, as it would have been).
    MasterKeyError when the backup's keys are under another master key."""
    forget_stored_keys(app)
    keys = load(conn, load_master_key(app), STORED_PURPOSES, create=False, app=app)
    app.extensions[_CACHE] = keys


def forget_stored_keys(app) -> None:
    app.extensions.pop(_CACHE, None)


def check_database_master(app) -> None:
    """Called by writers of rows wrapped by the master key (a new data key), in their transaction, after the
    row is written: the database must still be under this process's master key. A server left running
    through `veil keys rotate-master` fails here, loudly, instead of wrapping a key under the old one.

    Read after the write on purpose: on SQLite the write took the lock, so a rotation committed before it
    is seen; on PostgreSQL the shared row lock makes a rotation wait for this transaction, or be seen."""
    query = select(KeyMaterial.master_fingerprint).where(KeyMaterial.purpose == CHECK)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    found = db.session.scalar(query)
    expected = master_fingerprint(app)
    if found is not None and found != expected:
        raise MasterKeyError("the master key was changed (veil keys rotate-master) since this process started: "
                             "restart it with the new key. " + wrong_master_message(app, found, expected))
