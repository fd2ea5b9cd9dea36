"""`veil keys rotate-master`: everything the master key protects in the database moves to a new master key.

What it protects there: the stored keys (`key_material`, services/key_material.py) and the tenants' data
keys (`data_key`, wrapped by its "data-key-wrap" key). Both are re-wrapped under the new key, one
transaction per table (they are few rows), the stored keys first: their `master-check` row says which key
the database is under, so from that commit on a process still holding the old key fails loudly when it
would write a wrapped row (`key_material.check_database_master`) or load a key, rather than wrap
something under a key the database has left. The keys themselves do not change, so identifiers, blind
indexes, customer refs, the audit chain, signing-key bindings, sealed secrets and grant MACs stay valid.

Resumable and idempotent: every row carries the fingerprint of the master key that wrapped it and is opened
with whichever of the keys given has that fingerprint (data keys from before fingerprints: whichever opens
them); rows already under the new key are left alone, so a run stopped half way finishes on the next one.

Where the new key comes from (`plan_rotation`): with instance/master.key, a new key is made (or read from
--new-key-file) and written as master.key, the old one kept as master.key.previous (both 0600, replaced
atomically) before the database is touched; a run that finds rows still under master.key.previous
finishes that rotation. With VEIL_MASTER_KEY, the new key is in --new-key-file (made there when the file
does not exist) and the operator sets VEIL_MASTER_KEY to it afterwards.

Not covered: backup files made with the master key (each file's key is derived from the master key
directly: restoring one needs the key it was made with, see docs/security.md) and anything outside the
database.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from sqlalchemy import func, or_, select

from backend.extensions import db
from backend.models import DataKey, KeyMaterial
from backend.models.base import utcnow
from backend.security.master_key import (
    CHECK,
    STORED_PURPOSES,
    MasterKeyError,
    decode_master_key,
    fingerprint,
    hkdf_key,
    load_master_key,
    master_key_path,
    new_master_key,
    previous_key_path,
    read_key_file,
    read_previous_key,
    use_master_key,
    write_key_file,
)
from backend.services import key_material, vault
from backend.services.audit import record_audit

DATA_KEY_WRAP = "data-key-wrap"


class RotationError(Exception):
    """A rotation that cannot start as asked; the message says what to do."""


@dataclass
class Plan:
    """The key to move to, the keys rows may still be under, and what the operator must do afterwards."""

    new: bytes
    olds: list[bytes]
    resuming: bool
    wrote_files: bool = False
    afterwards: list[str] = field(default_factory=list)


@dataclass
class MasterRotation:
    key_material: int
    data_keys: int
    fingerprint: str

    @property
    def moved(self) -> int:
        return self.key_material + self.data_keys


# ---- what the database is under --------------------------------------------------------------------------

def fingerprints_in_use() -> Counter:
    """How many wrapped rows each master key (by fingerprint; None: not known) wraps, the check included."""
    found: Counter = Counter()
    for model in (KeyMaterial, DataKey):
        for fp, count in db.session.execute(select(model.master_fingerprint, func.count())
                                            .group_by(model.master_fingerprint)):
            found[fp] += count
    return found


def database_fingerprint() -> str | None:
    return db.session.scalar(select(KeyMaterial.master_fingerprint).where(KeyMaterial.purpose == CHECK))


def remaining(target: str) -> int:
    """Rows not yet under the master key with fingerprint `target`."""
    stored = db.session.scalar(select(func.count()).select_from(KeyMaterial)
                               .where(KeyMaterial.master_fingerprint != target)) or 0
    data = db.session.scalar(select(func.count()).select_from(DataKey).where(
        or_(DataKey.master_fingerprint.is_(None), DataKey.master_fingerprint != target))) or 0
    return stored + data


# ---- where the new key comes from ------------------------------------------------------------------------

def read_or_make_key_file(path: Path) -> tuple[bytes, bool]:
    """The key in `path`, or a new one written there (0600) when it does not exist; (key, made)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key_file(path), False
    key_text = new_master_key()
    with os.fdopen(fd, "w") as fh:
        fh.write(key_text + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return decode_master_key(key_text, str(path)), True


def plan_rotation(app, *, new_key_file: str | None = None, previous_key_file: str | None = None) -> Plan:
    """Decide the new key and the old ones, writing the key files first where the key is a file."""
    current = load_master_key(app)
    previous = read_key_file(Path(previous_key_file)) if previous_key_file else read_previous_key(app)
    in_use = fingerprints_in_use()
    unfinished = previous is not None and previous != current and in_use[fingerprint(previous)] > 0
    if app.config.get("VEIL_MASTER_KEY"):
        return _plan_configured(current, previous, in_use, new_key_file)
    if unfinished:
        _refuse_unknown(in_use, [current, previous])
        if new_key_file:
            raise RotationError("an earlier rotation has not finished (rows are still under master.key.previous): "
                                "run `veil keys rotate-master` without --new-key-file first")
        return Plan(current, [previous], resuming=True, afterwards=_file_afterwards(app))
    _refuse_unknown(in_use, [current])
    new = read_or_make_key_file(Path(new_key_file))[0] if new_key_file else os.urandom(32)
    if new == current:
        raise RotationError("the new key is the master key in use: nothing would change")
    # Files first: from here on the new key is safe on disk before anything in the database needs it, and
    # an interrupted run finds the old key in master.key.previous.
    write_key_file(previous_key_path(app), current)
    write_key_file(master_key_path(app), new)
    return Plan(new, [current], resuming=False, wrote_files=True, afterwards=_file_afterwards(app))


def _plan_configured(current: bytes, previous: bytes | None, in_use: Counter, new_key_file: str | None) -> Plan:
    if new_key_file:
        new, made = read_or_make_key_file(Path(new_key_file))
        olds = [k for k in (current, previous) if k is not None and k != new]
        _refuse_unknown(in_use, [new, *olds])
        afterwards = [f"{'the new key was written to ' + new_key_file + '; ' if made else ''}set VEIL_MASTER_KEY "
                      f"to the contents of {new_key_file} and start the server again",
                      "keep the old VEIL_MASTER_KEY value (as a file, for --previous-key-file) for as long as you "
                      "keep backups made with it"]
        return Plan(new, olds, resuming=in_use[fingerprint(new)] > 0, afterwards=afterwards)
    if previous is not None and previous != current and in_use[fingerprint(previous)] > 0:
        _refuse_unknown(in_use, [current, previous])
        return Plan(current, [previous], resuming=True, afterwards=["start the server again"])
    raise RotationError("VEIL_MASTER_KEY is set, so the new key cannot be written for you: give "
                        "--new-key-file FILE (a new key is made there if FILE does not exist), then set "
                        "VEIL_MASTER_KEY to the contents of FILE once the rotation has finished")


def _refuse_unknown(in_use: Counter, keys: list[bytes]) -> None:
    known = {fingerprint(k) for k in keys}
    unknown = sorted(fp for fp, n in in_use.items() if n and fp is not None and fp not in known)
    if unknown:
        raise RotationError(f"{sum(in_use[fp] for fp in unknown)} row(s) are wrapped by a master key that is "
                            f"neither the configured one nor the previous one (fingerprint "
                            f"{', '.join(fp[:12] + '…' for fp in unknown)}): give that key with "
                            "--previous-key-file")


def _file_afterwards(app) -> list[str]:
    return [f"{master_key_path(app)} holds the new key; start the server again",
            f"the old key is in {previous_key_path(app)}: keep a copy apart from the database for as long as you "
            "keep backups made with it, then delete the file"]


# ---- moving --------------------------------------------------------------------------------------------

def rotate_master(app, new: bytes, olds: list[bytes], *,
                  progress: Callable[[int], None] | None = None) -> MasterRotation:
    """Re-wrap every stored key and data key under `new`, opening each with whichever of `olds` (or `new`)
    wrapped it. Commits, one transaction per table, then audits `keys.rotate_master`. This process works
    under `new` afterwards."""
    keys = {fingerprint(k): k for k in [*olds, new]}
    target = fingerprint(new)
    step = progress or (lambda n: None)
    # Before anything moves, every known purpose gets its row under the key the database is under now:
    # a key first needed after the switch would otherwise be derived from the new master, not the old.
    under = database_fingerprint()
    if under is not None and under not in keys:
        raise MasterKeyError(key_material.wrong_master_message(app, under, target))
    base = keys[under] if under is not None else (olds[0] if olds else new)
    db.session.remove()
    with db.engine.connect() as conn:
        key_material.add_missing(conn, base, STORED_PURPOSES)
        conn.commit()
    stored = rewrap_key_material(keys, new, step)
    use_master_key(app, new)
    data = rewrap_data_keys(keys, new, step)
    result = MasterRotation(stored, data, target)
    if result.moved:
        record_audit("keys.rotate_master", target_type="master_key", target_id=target[:16],
                     details={"stored_keys": stored, "data_keys": data, "to": target[:16],
                              "from": sorted(fp[:16] for fp in keys if fp != target)})
        db.session.commit()
    return result


def _rewrap_all(query, rewrap: Callable[[object], None], progress: Callable[[int], None]) -> int:
    """One transaction: `rewrap` every row `query` selects, reading again until none is left. Read again
    after the first writes: on SQLite the lock is ours from then on, so a row a racing process added
    meanwhile is seen (on PostgreSQL FOR UPDATE makes writers wait)."""
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    moved = 0
    try:
        while rows := list(db.session.scalars(query)):
            for row in rows:
                rewrap(row)
                moved += 1
                progress(1)
            db.session.flush()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return moved


def rewrap_key_material(keys: dict[str, bytes], new: bytes, progress: Callable[[int], None]) -> int:
    """One transaction: every stored key not under `new` is re-wrapped, and the check names `new`."""
    target = fingerprint(new)
    now = utcnow()

    def rewrap(row: KeyMaterial) -> None:
        if row.purpose != CHECK:
            old = _key_for(keys, row.master_fingerprint, f"the stored {row.purpose!r} key")
            raw = key_material.unwrap(old, row.purpose, row.wrapped_key)
            row.wrapped_key = key_material.wrap(new, row.purpose, raw)
        row.master_fingerprint, row.rewrapped_at = target, now

    query = select(KeyMaterial).where(KeyMaterial.master_fingerprint != target).order_by(KeyMaterial.id)
    return _rewrap_all(query, rewrap, progress)


def rewrap_data_keys(keys: dict[str, bytes], new: bytes, progress: Callable[[int], None]) -> int:
    """One transaction: every data key not under `new` is re-wrapped (its tenant stays bound to it)."""
    target = fingerprint(new)
    wrap_keys = {fp: hkdf_key(k, DATA_KEY_WRAP) for fp, k in keys.items()}

    def rewrap(row: DataKey) -> None:
        raw = _open_data_key(row, wrap_keys, target)
        row.wrapped_key = vault.wrap_data_key(wrap_keys[target], row.tenant_id, raw)
        row.master_fingerprint = target

    query = select(DataKey).where(or_(DataKey.master_fingerprint.is_(None),
                                      DataKey.master_fingerprint != target)).order_by(DataKey.id)
    return _rewrap_all(query, rewrap, progress)


def _open_data_key(row: DataKey, wrap_keys: dict[str, bytes], target: str) -> bytes:
    if row.master_fingerprint is not None:
        wrap_key = _key_for(wrap_keys, row.master_fingerprint, f"data key {row.id}")
        return vault.unwrap_data_key(wrap_key, row.tenant_id, row.wrapped_key)
    # Wrapped before rows named their key: the target first (a run that was interrupted may have left it).
    for fp in sorted(wrap_keys, key=lambda f: f != target):
        try:
            return vault.unwrap_data_key(wrap_keys[fp], row.tenant_id, row.wrapped_key)
        except InvalidTag:
            continue
    raise MasterKeyError(f"data key {row.id} opens with none of the master keys given: give the key it was "
                         "wrapped with (--previous-key-file)")


def _key_for(keys: dict[str, bytes], fp: str, what: str) -> bytes:
    if fp not in keys:
        raise MasterKeyError(f"{what} is wrapped by a master key that was not given (fingerprint {fp[:12]}…): "
                             "give it with --previous-key-file")
    return keys[fp]
