"""Backups: `veil backup` writes a consistent, encrypted copy of the whole database while the server runs;
`veil restore` brings one back into an empty database, of the same kind or the other (SQLite, PostgreSQL).

Consistency. SQLite: the sqlite3 backup API copies the live database in one step into a temporary file in
the instance folder (a snapshot no writer can change), and the rows are read from that copy. PostgreSQL:
every table is read inside one REPEATABLE READ, READ ONLY transaction, so all of them show one moment.

Contents. Whatever the database kind, the backup holds every table's rows as JSON Lines, tables in
dependency order (parents first), so a restore is the same INSERTs on either kind. The plaintext is
zlib-compressed, then:

    file   = MAGIC (8 bytes) | format version (1) | header length (4, big-endian) | header (JSON, UTF-8)
             | chunk ...
    chunk  = ciphertext length (4, big-endian) | AES-256-GCM(key, nonce, plaintext part, aad = everything
             before the first chunk)
    nonce  = chunk number (11 bytes, big-endian) | 1 for the last chunk, else 0

so a changed header fails every chunk, a reordered or dropped chunk fails on its nonce, and a file cut short
lacks the chunk marked last. The header (readable without the key) says how the key is made, when the backup
was taken, from which database kind and schema revision. The key is per file: HKDF(derive_key(app,
"backup"), random salt) with the instance's master key, or scrypt(passphrase, random salt) with a passphrase,
for a backup to be restored on a machine that does not share the master key.

Plaintext lines: {"table", "columns", "rows"} before each table's rows, one JSON array per row, and
{"end": {table: rows}} last. Values: datetimes as ISO 8601, bytes as base64, JSON columns as [value] (null
for SQL NULL, so SQL NULL and a JSON null stay apart).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy.types import TypeDecorator

from backend.extensions import db
from backend.models import KeyMaterial
from backend.models.base import utcnow
from backend.security.master_key import MasterKeyError
from backend.services.audit import record_audit
from backend.services.key_material import adopt_restored, forget_stored_keys

MAGIC = b"VEILBKP\x00"
FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20
MAX_HEADER_BYTES = 64 * 1024
# scrypt at n=2**17, r=8 takes 128 MiB and a fraction of a second: cheap once, costly per guess.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
MIN_PASSPHRASE_CHARS = 12
ROWS_PER_INSERT = 1000
ALEMBIC_TABLE = "alembic_version"

Progress = Callable[[int, int], None]  # (rows done, rows in all)


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class BackupSummary:
    path: str
    tables: dict[str, int]
    db_kind: str
    schema_revision: str
    kdf: str
    sha256: str

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


# ---- the encrypted container ---------------------------------------------------------------------------

def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _key_check(key: bytes) -> str:
    """Lets a restore tell a wrong passphrase (or master key) from a damaged file before reading on."""
    return hmac.new(key, b"veil backup key check", hashlib.sha256).hexdigest()[:32]


def _file_key(app, header: dict, passphrase: bytes | None) -> bytes:
    salt = base64.b64decode(header["salt"])
    if header["kdf"] == "scrypt":
        if passphrase is None:
            raise BackupError("this backup is encrypted with a passphrase: give it with --passphrase-file")
        params = header["scrypt"]
        return Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(passphrase)
    if header["kdf"] == "master-key":
        from backend.security.master_key import derive_key

        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                    info=b"veil backup file v1").derive(derive_key(app, "backup"))
    raise BackupError(f"unknown key derivation {header['kdf']!r} in the backup's header")


class EncryptedWriter:
    """Buffers plaintext and writes it as authenticated chunks; `close` writes the last one."""

    def __init__(self, fh, key: bytes, aad: bytes):
        self.fh, self.aead, self.aad = fh, AESGCM(key), aad
        self.buffer = bytearray()
        self.counter = 0

    def _chunk(self, data: bytes, last: bool) -> None:
        sealed = self.aead.encrypt(_nonce(self.counter, last), data, self.aad)
        self.fh.write(struct.pack(">I", len(sealed)) + sealed)
        self.counter += 1

    def write(self, data: bytes) -> None:
        self.buffer += data
        # Keep at least one byte back: only `close` knows which chunk is the last.
        while len(self.buffer) > CHUNK_BYTES:
            self._chunk(bytes(self.buffer[:CHUNK_BYTES]), last=False)
            del self.buffer[:CHUNK_BYTES]

    def close(self) -> None:
        self._chunk(bytes(self.buffer), last=True)
        self.buffer.clear()


def _read_exact(fh, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise BackupError("the backup is truncated: it ends before its last part")
    return data


def decrypted_chunks(fh, key: bytes, aad: bytes) -> Iterator[bytes]:
    """The plaintext of each chunk, in order, each authenticated; raises BackupError on any change."""
    aead = AESGCM(key)
    counter = 0
    while True:
        length_bytes = fh.read(4)
        if len(length_bytes) < 4:
            raise BackupError("the backup is truncated: it ends before its last part")
        (length,) = struct.unpack(">I", length_bytes)
        if length < 16 or length > CHUNK_BYTES + 16:
            raise BackupError(f"the backup is damaged or was changed (part {counter + 1} has a bad length)")
        sealed = _read_exact(fh, length)
        at_end = fh.read(1) == b""
        if not at_end:
            fh.seek(-1, os.SEEK_CUR)
        try:
            plain = aead.decrypt(_nonce(counter, at_end), sealed, aad)
        except InvalidTag:
            plain = None
        if plain is None:
            # Tell a cut-short file (a middle part where the last should be) and trailing data from tampering.
            try:
                aead.decrypt(_nonce(counter, not at_end), sealed, aad)
            except InvalidTag:
                raise BackupError(f"the backup is damaged or was changed (part {counter + 1} does not "
                                  "authenticate)") from None
            if at_end:
                raise BackupError("the backup is truncated: it ends before its last part")
            raise BackupError("the backup is damaged or was changed (data after its last part)")
        yield plain
        counter += 1
        if at_end:
            return


def write_prefix(fh, header: dict) -> bytes:
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    prefix = MAGIC + bytes([FORMAT_VERSION]) + struct.pack(">I", len(body)) + body
    fh.write(prefix)
    return prefix


def read_header(fh) -> tuple[dict, bytes]:
    """The header and the bytes it was read from (the chunks' associated data)."""
    start = fh.read(len(MAGIC) + 5)
    if len(start) < len(MAGIC) + 5 or not start.startswith(MAGIC):
        raise BackupError("this is not a Veil backup file")
    if start[len(MAGIC)] != FORMAT_VERSION:
        raise BackupError(f"backup format {start[len(MAGIC)]} is not known to this Veil (it reads {FORMAT_VERSION})")
    (length,) = struct.unpack(">I", start[len(MAGIC) + 1:])
    if length > MAX_HEADER_BYTES:
        raise BackupError("the backup's header is damaged")
    body = _read_exact(fh, length)
    try:
        header = json.loads(body)
        for name in ("kdf", "salt", "key_check", "db_kind", "schema_revision", "created_at"):
            header[name]  # noqa: B018  (presence check)
    except (ValueError, KeyError, TypeError):
        raise BackupError("the backup's header is damaged") from None
    return header, start + body


# ---- rows as JSON --------------------------------------------------------------------------------------

def _kind(column: sa.Column) -> str:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    for name, cls in (("datetime", sa.DateTime), ("date", sa.Date), ("bytes", sa.LargeBinary), ("json", sa.JSON)):
        if isinstance(kind, cls):
            return name
    return "plain"


def _encode(kind: str, value):
    if value is None:
        return None
    if kind == "datetime" or kind == "date":
        return value.isoformat()
    if kind == "bytes":
        return base64.b64encode(value).decode()
    return value


def _decode(kind: str, value):
    if value is None:
        return None  # for JSON too: rows go in through `_insert_table`, where None is SQL NULL
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "json":
        return sa.JSON.NULL if value[0] is None else value[0]
    return value


def _insert_table(table: sa.Table) -> sa.TableClause:
    """`table` for INSERTs: JSON columns that take None as SQL NULL (and JSON.NULL as a JSON null), so
    every row is bound the same way in one executemany."""
    columns = [sa.column(c.name, sa.JSON(none_as_null=True) if _kind(c) == "json" else c.type) for c in table.columns]
    return sa.table(table.name, *columns)


def model_tables() -> list[sa.Table]:
    """Every table the models describe, parents before children."""
    return list(db.metadata.sorted_tables)


def _order(table: sa.Table):
    return list(table.primary_key.columns) or list(table.columns)


def code_head(app) -> str:
    config = AlembicConfig()
    config.set_main_option("script_location", app.extensions["migrate"].directory)
    return ScriptDirectory.from_config(config).get_current_head()


# ---- backup --------------------------------------------------------------------------------------------

def _snapshot_rows(conn, progress: Progress | None, emit: Callable[[bytes], None]) -> tuple[str, dict[str, int]]:
    """Writes every table of the snapshot `conn` reads from; returns its schema revision and row counts."""
    revision = conn.execute(sa.text(f"SELECT version_num FROM {ALEMBIC_TABLE}")).scalar()
    tables = model_tables()
    counts = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables}
    total = sum(counts.values())
    done = 0
    if progress:
        progress(0, total)

    def line(value) -> None:
        # ASCII escapes: a lone surrogate in chat text still round-trips.
        emit(json.dumps(value, separators=(",", ":")).encode() + b"\n")

    line({"table": ALEMBIC_TABLE, "columns": ["version_num"], "rows": 1})
    line([revision])
    for table in tables:
        columns = list(table.columns)
        kinds = [_kind(c) for c in columns]
        # JSON columns also say whether they are SQL NULL, which the JSON type reads as None like 'null'.
        is_null = [c.is_(None).label(f"_null_{c.name}") for c, k in zip(columns, kinds, strict=True) if k == "json"]
        line({"table": table.name, "columns": [c.name for c in columns], "rows": counts[table.name]})
        result = conn.execution_options(stream_results=True, yield_per=ROWS_PER_INSERT).execute(
            sa.select(*columns, *is_null).order_by(*_order(table)))
        written = 0
        for row in result:
            nulls = iter(row[len(columns):])
            values = []
            for kind, value in zip(kinds, row[:len(columns)], strict=True):
                if kind == "json":
                    values.append(None if next(nulls) else [value])
                else:
                    values.append(_encode(kind, value))
            line(values)
            written += 1
            done += 1
            if progress and done % ROWS_PER_INSERT == 0:
                progress(done, total)
        if written != counts[table.name]:
            raise BackupError(f"table {table.name} changed while it was read: the snapshot is not consistent")
    line({"end": {ALEMBIC_TABLE: 1, **counts}})
    if progress:
        progress(total, total)
    return revision, counts


def _sqlite_snapshot(app) -> Path:
    """A copy of the live SQLite database made with the backup API (one step: a consistent snapshot)."""
    fd, name = tempfile.mkstemp(prefix=".veil-snapshot-", suffix=".db", dir=app.instance_path)
    os.close(fd)
    raw = db.engine.raw_connection()
    try:
        target = sqlite3.connect(name)
        try:
            raw.driver_connection.backup(target)  # pages=-1: all at once, under one read lock
        finally:
            target.close()
    finally:
        raw.close()
    return Path(name)


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def write_backup(app, out: str, *, passphrase: bytes | None = None, progress: Progress | None = None,
                 scrypt_n: int | None = None) -> BackupSummary:
    """Write the backup to `out` (which must not exist yet) and record `backup.created` in the audit trail.

    Call inside an app context. The file appears only when complete (written beside it, then renamed).
    """
    out_path = Path(out)
    if out_path.exists():
        raise BackupError(f"{out} exists already: choose a new file name")
    if passphrase is not None and len(passphrase.decode("utf-8", "replace")) < MIN_PASSPHRASE_CHARS:
        raise BackupError(f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")
    db_kind = db.engine.dialect.name
    head = code_head(app)
    salt = os.urandom(16)
    header = {"kdf": "scrypt" if passphrase is not None else "master-key", "salt": base64.b64encode(salt).decode(),
              "db_kind": db_kind, "schema_revision": head, "created_at": utcnow().isoformat(),
              "compression": "zlib"}
    if passphrase is not None:
        header["scrypt"] = {"n": scrypt_n or SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
    key = _file_key(app, header, passphrase)
    header["key_check"] = _key_check(key)

    partial = out_path.with_name(out_path.name + ".partial")
    snapshot = None
    db.session.remove()  # no transaction of ours may hold locks while the snapshot is taken
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{partial} exists: another backup is being written there, or remove it") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            writer = EncryptedWriter(fh, key, write_prefix(fh, header))
            compressor = zlib.compressobj(6)

            def emit(data: bytes) -> None:
                writer.write(compressor.compress(data))

            if db_kind == "sqlite":
                snapshot = _sqlite_snapshot(app)
                engine = sa.create_engine(f"sqlite:///{snapshot}")
                try:
                    with engine.connect() as conn:
                        revision, counts = _snapshot_rows(conn, progress, emit)
                finally:
                    engine.dispose()
            else:
                with db.engine.connect() as conn:
                    conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
                    with conn.begin():
                        revision, counts = _snapshot_rows(conn, progress, emit)
            if revision != head:
                raise BackupError(f"the database is at schema revision {revision}, this Veil at {head}: "
                                  "run `veil init` first")
            writer.write(compressor.flush())
            writer.close()
            fh.flush()
            os.fsync(fh.fileno())
        if out_path.exists():
            raise BackupError(f"{out} appeared while the backup was written: choose a new file name")
        os.replace(partial, out_path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        if snapshot is not None:
            _remove_sqlite_files(snapshot)
    digest = hashlib.sha256(out_path.read_bytes()).hexdigest()
    summary = BackupSummary(str(out_path), counts, db_kind, revision, header["kdf"], digest)
    record_audit("backup.created", target_type="backup", target_id=out_path.name[:64],
                 details={"file": out_path.name, "sha256": digest, "kdf": header["kdf"], "rows": summary.rows,
                          "schema_revision": revision, "created_at": header["created_at"]})
    db.session.commit()
    return summary


# ---- restore -------------------------------------------------------------------------------------------

@dataclass
class RestoreSummary:
    tables: dict[str, int]
    db_kind: str
    source_kind: str
    created_at: str

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def inspect_backup(app, path: str, passphrase: bytes | None = None) -> tuple[dict, bytes, bytes]:
    """Header, associated data and key of a backup, the key checked; raises BackupError."""
    try:
        fh = open(path, "rb")  # noqa: SIM115  (closed below)
    except OSError as err:
        raise BackupError(f"cannot read {path}: {err.strerror}") from None
    with fh:
        header, aad = read_header(fh)
    key = _file_key(app, header, passphrase)
    if not hmac.compare_digest(_key_check(key), str(header["key_check"])):
        if header["kdf"] == "scrypt":
            raise BackupError("wrong passphrase for this backup")
        raise BackupError("this backup was made with another master key: restore it where VEIL_MASTER_KEY or "
                          "instance/master.key is the one it was made with")
    return header, aad, key


def _plaintext_lines(fh, key: bytes, aad: bytes, progress: Progress | None = None) -> Iterator[object]:
    """The decoded JSON lines; `progress` hears the bytes of the file read so far."""
    size = os.fstat(fh.fileno()).st_size
    decompressor = zlib.decompressobj()
    pending = b""
    try:
        for chunk in decrypted_chunks(fh, key, aad):
            if progress:
                progress(fh.tell(), size)
            pending += decompressor.decompress(chunk)
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                yield json.loads(raw)
        pending += decompressor.flush()
    except (zlib.error, ValueError) as err:
        raise BackupError(f"the backup's contents are damaged ({err})") from None
    if pending.strip() or not decompressor.eof:
        raise BackupError("the backup's contents are damaged (they do not end cleanly)")


def _row_counts(conn) -> dict[str, int]:
    return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in model_tables()}


def _reset_sequences(conn) -> None:
    """PostgreSQL: each id sequence continues after the highest restored id."""
    for table in model_tables():
        id_column = table.columns.get("id")
        if id_column is None or not id_column.primary_key or not id_column.autoincrement:
            continue
        sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table.name}).scalar()
        if sequence:
            conn.execute(sa.text(f'SELECT setval(:s, COALESCE((SELECT max(id) FROM "{table.name}"), 0) + 1, false)'),
                         {"s": sequence})


def restore_backup(app, path: str, *, passphrase: bytes | None = None, force: bool = False,
                   progress: Progress | None = None) -> RestoreSummary:
    """Restore the backup at `path` into this app's database, which must be empty (any rows: refused
    unless `force`, which deletes them first). One transaction: a damaged file restores nothing.

    The database is migrated to this Veil's schema first; the backup must be of that same revision. Its
    stored keys must open with this instance's master key (services/key_material.py); stored keys the
    target made on its own are replaced, not counted as rows. Call inside an app context, with the server
    stopped.
    """
    from flask_migrate import upgrade

    header, aad, key = inspect_backup(app, path, passphrase)
    head = code_head(app)
    if header["schema_revision"] != head:
        raise BackupError(f"this backup is of schema revision {header['schema_revision']} and this Veil is at "
                          f"{head}: restore it with the Veil version that made it, then upgrade")
    db.session.remove()
    upgrade(directory=app.extensions["migrate"].directory)
    tables = {t.name: t for t in model_tables()}
    inserts = {name: _insert_table(t) for name, t in tables.items()}
    conn = db.session.connection()
    # Stored keys a process made on its own (`veil init`, a first start) are no data: the backup's replace them.
    present = {name: n for name, n in _row_counts(conn).items() if n and name != KeyMaterial.__tablename__}
    if present and not force:
        db.session.rollback()
        listed = ", ".join(f"{name} ({n})" for name, n in sorted(present.items())[:5])
        raise BackupError(f"the database is not empty: {listed}. Restore into an empty database, or pass "
                          "--force to replace everything in it")
    restored: dict[str, int] = {}
    try:
        conn.execute(KeyMaterial.__table__.delete())
        if present:
            for table in reversed(model_tables()):
                conn.execute(table.delete())  # plain DELETE: SQLite's search-index triggers follow
        with open(path, "rb") as fh:
            fh.seek(len(aad))
            _load(conn, _plaintext_lines(fh, key, aad, progress), tables, inserts, head, restored)
        restored.pop(ALEMBIC_TABLE, None)
        if db.engine.dialect.name == "postgresql":
            _reset_sequences(conn)
        try:
            # The restored rows are wrapped by the master key of the database backed up: it must be this one.
            adopt_restored(app, conn)
        except MasterKeyError:
            raise BackupError("the keys in this backup are wrapped by another master key than this instance's, so "
                              "nothing was restored: restore it where the master key of the database it came from "
                              "is configured (then `veil keys rotate-master --new-key-file FILE` moves it to another "
                              "master key)") from None
        summary = RestoreSummary(restored, db.engine.dialect.name, header["db_kind"], header["created_at"])
        record_audit("backup.restored", target_type="backup", target_id=Path(path).name[:64],
                     details={"file": Path(path).name, "created_at": header["created_at"],
                              "source_kind": header["db_kind"], "rows": summary.rows, "replaced": bool(present)})
        db.session.commit()
    except BaseException:
        db.session.rollback()
        forget_stored_keys(app)
        raise
    return summary


def _load(conn, lines: Iterator[object], tables: dict[str, sa.Table], inserts: dict[str, sa.TableClause], head: str,
          restored: dict[str, int]) -> None:
    """Inserts the rows of the plaintext stream; every count is checked against what the stream said."""
    name: str | None = None  # the table whose rows come now
    expected = 0
    columns: list[str] = []
    kinds: list[str] = []
    batch: list[dict] = []

    def finish_table() -> None:
        if batch:
            conn.execute(inserts[name].insert(), batch)
            batch.clear()
        if name is not None and restored[name] != expected:
            raise BackupError(f"the backup's contents are damaged (table {name} is incomplete)")

    for item in lines:
        if isinstance(item, dict):
            finish_table()
            if "end" in item:
                if item["end"] != restored:
                    raise BackupError("the backup's contents are damaged (row counts do not match)")
                return
            name, expected, columns = item.get("table"), item.get("rows"), item.get("columns")
            if name in restored or (name != ALEMBIC_TABLE and name not in tables):
                raise BackupError(f"the backup holds a table this Veil does not know: {name!r}")
            known = ["version_num"] if name == ALEMBIC_TABLE else list(tables[name].columns.keys())
            if not isinstance(columns, list) or sorted(columns) != sorted(known):
                raise BackupError(f"the backup's columns of {name} do not match this Veil's")
            kinds = [] if name == ALEMBIC_TABLE else [_kind(tables[name].columns[c]) for c in columns]
            restored[name] = 0
            continue
        if name is None or not isinstance(item, list) or len(item) != len(columns):
            raise BackupError("the backup's contents are damaged (unexpected line)")
        restored[name] += 1
        if name == ALEMBIC_TABLE:
            # The database was migrated to this revision before loading; the row is there already.
            if item != [head]:
                raise BackupError("the backup's schema revision does not match its header")
            continue
        batch.append({c: _decode(k, v) for c, k, v in zip(columns, kinds, item, strict=True)})
        if len(batch) >= ROWS_PER_INSERT:
            conn.execute(inserts[name].insert(), batch)
            batch.clear()
    raise BackupError("the backup's contents are damaged (no end marker)")
