"""The vault: customer identifiers in stored text become tokens; the originals are encrypted.

`protect` is the one way customer-written text reaches the database. The Python engine's masker (the
same `mask` that `veil mask` runs, with the tenant's rules) finds phone numbers, e-mail addresses, ID and
bank-card numbers, handles, links and wallets; each becomes a token "\\ue000<id>\\ue001" naming a
`CustomerIdentifier` row that holds the original under AES-256-GCM. Reading goes through `display`,
which puts the masker's masked form (138****5678) where each token is; `reveal` gives an original back to
a caller that has checked a restore grant.

Keys: each tenant has data keys (random, 256 bits) stored wrapped by the "data-key-wrap" key, which is
derived from the master key (each row names the master key by its fingerprint, so `veil keys
rotate-master` can re-wrap them); a blind index (HMAC-SHA256 under the tenant's share of the
"identifier-index" key, a stored key: backend/services/key_material.py) of the normalised value finds a
customer by phone or e-mail without decrypting anything, and makes one customer's number one row however
it was written.

Private-use characters U+E000/U+E001 in what people write are replaced by U+FFFD before anything else,
so no one can write a token of their own.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from backend.engine import Engine, compile_rules, load_rules_folder
from backend.engine import detectors as det
from backend.engine.rules import SHARED_RULES
from backend.errors import not_found
from backend.extensions import db
from backend.models import CustomerIdentifier, DataKey, Tenant
from backend.models.base import insert_if_absent, transaction_memo, utcnow
from backend.security.master_key import MasterKeyError, derive_key, master_fingerprint
from backend.services.key_material import check_database_master, wrong_master_message

TOKEN_START, TOKEN_END = "\ue000", "\ue001"
TOKEN = re.compile("\ue000([0-9]{1,10})\ue001")
NONCE_BYTES = 12
# What `display` shows for a token whose identifier is gone (erased).
GONE = "***"
# Keys of a behaviour event's `details` that hold text someone wrote (the rest is Veil's own vocabulary:
# console, account, rule, message_id…). Nested `details` objects from the extension are protected whole.
TEXT_DETAILS = ("text", "previous_text", "reason")

# Unwrapped data keys by their wrapped bytes (not by id: a restored or emptied database reuses ids).
_data_keys: dict[bytes, bytes] = {}
_data_keys_lock = threading.Lock()


# ---- finding identifiers -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Span:
    """An identifier in a text: [start, end) in code points, its kind, and the masker's form of it."""

    start: int
    end: int
    kind: str
    hint: str


@lru_cache(maxsize=1)
def default_engine() -> Engine:
    """The shipped rules: used for a tenant who switched masking off, whose data must still be protected."""
    return compile_engine()


def compile_engine() -> Engine:
    return Engine(compile_rules(load_rules_folder(SHARED_RULES / "default")))


def engine_for(tenant_id: int) -> Engine:
    memo = transaction_memo()
    if ("engine", tenant_id) not in memo:
        from backend.services.rule_sets import engine_for_tenant

        engine = engine_for_tenant(db.session.get(Tenant, tenant_id)).engine
        # mask.incoming only decides what agents see in the console; storage is protected regardless.
        memo["engine", tenant_id] = engine if engine.settings["mask"]["incoming"] else default_engine()
    return memo["engine", tenant_id]


def find_spans(engine: Engine, text: str) -> list[Span]:
    """The identifiers the masker finds, each with its masked form (the same length as the original)."""
    result = engine.mask(text)
    spans = []
    for found in result.spans:
        start, end, kind = found["start"], found["end"], found["type"]
        masked = result.text[start:end]
        if kind == "handle" and "*" in masked:
            # A handle's span starts at its keyword ("微信 wxid_…"): the keyword is not the customer's.
            start += masked.index("*")
            masked = result.text[start:end]
        spans.append(Span(start, end, kind, masked))
    return spans


def defuse(text: str) -> str:
    """Nobody writes a token: the delimiters in incoming text become U+FFFD (one for one, offsets kept)."""
    if TOKEN_START in text or TOKEN_END in text:
        return text.replace(TOKEN_START, "\ufffd").replace(TOKEN_END, "\ufffd")
    return text


# ---- normalising and the blind index -------------------------------------------------------------------

EMAIL_AT = re.compile(r" ?(?:\(at\)|\[at\]|\{at\}|<at>| at |艾特|圈a) ?")
EMAIL_DOT = re.compile(r" ?(?:\(dot\)|\[dot\]|\{dot\}| dot |点) ?")


def _digits(engine: Engine, value: str) -> str:
    plain = engine.normaliser.plain(value).text
    return "".join(token[2] for token in det.digit_tokens(plain))


def national_number(engine: Engine, value: str) -> str:
    """A phone number as its national significant digits: +86 138-0013-8000, 0086 13800138000 and
    13800138000 are one number. (Two countries' numbers with the same national digits are one row too:
    see docs/security.md.)"""
    digits = _digits(engine, value)
    text = unicodedata.normalize("NFKC", value)
    international = text.lstrip().startswith("+") or digits.startswith("00")
    if international:
        digits = digits[2:] if digits.startswith("00") else digits
        lengths = engine.detectors["phone_lengths"]
        for size in (1, 2, 3):
            code, rest = digits[:size], digits[size:]
            if code in lengths and len(rest) in lengths[code]:
                digits = rest
                break
    return digits[1:] if digits.startswith("0") and len(digits) > 6 else digits  # the trunk prefix


def normalise(engine: Engine, kind: str, value: str) -> str:
    """The form the blind index is made of: case, width, separators and spelling do not matter."""
    if kind == "phone":
        return national_number(engine, value)
    if kind in ("bank_card", "id_card"):
        digits = _digits(engine, value)
        return digits + ("x" if kind == "id_card" and value.strip()[-1:] in "xX" and len(digits) == 17 else "")
    text = unicodedata.normalize("NFKC", value).strip().lower()
    if kind == "email":
        text = EMAIL_DOT.sub(".", EMAIL_AT.sub("@", text))
        return "".join(text.split())
    if kind == "link":
        text = re.sub(r"^(?:https?://)?(?:www\.)?", "", text)
    return "".join(text.split())


def tenant_index_key(tenant_id: int) -> bytes:
    """The tenant's share of the identifier-index key: equal numbers of two tenants do not look equal."""
    key = derive_key(current_app, "identifier-index")
    return hmac.new(key, f"tenant:{tenant_id}".encode(), hashlib.sha256).digest()


def blind_index(tenant_id: int, kind: str, normalised: str) -> str:
    return hmac.new(tenant_index_key(tenant_id), f"{kind}:{normalised}".encode(), hashlib.sha256).hexdigest()


# ---- data keys ---------------------------------------------------------------------------------------

def _wrap_aad(tenant_id: int) -> bytes:
    return f"veil:data-key:{tenant_id}".encode()


def wrap_data_key(wrap_key: bytes, tenant_id: int, raw: bytes) -> bytes:
    """12-byte nonce + AES-GCM(wrap key, data key), bound to the tenant."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(wrap_key).encrypt(nonce, raw, _wrap_aad(tenant_id))


def unwrap_data_key(wrap_key: bytes, tenant_id: int, wrapped: bytes) -> bytes:
    return AESGCM(wrap_key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(tenant_id))


def new_data_key(tenant_id: int) -> DataKey:
    """A fresh random data key for the tenant, stored wrapped; it becomes the active one."""
    raw = AESGCM.generate_key(bit_length=256)
    row = DataKey(tenant_id=tenant_id, wrapped_key=wrap_data_key(derive_key(current_app, "data-key-wrap"),
                                                                 tenant_id, raw),
                  master_fingerprint=master_fingerprint(current_app), created_at=utcnow())
    db.session.add(row)
    db.session.flush()
    check_database_master(current_app)  # a server left running through rotate-master stops here
    with _data_keys_lock:
        _data_keys[row.wrapped_key] = raw
    return row


def active_data_key(tenant_id: int) -> DataKey:
    """The tenant's newest data key not retired, made on first use (looked up once per transaction: a
    rotation that starts meanwhile sweeps up what was written under the key it retires)."""
    memo = transaction_memo()
    if ("data_key", tenant_id) not in memo:
        row = db.session.scalar(select(DataKey).where(DataKey.tenant_id == tenant_id, DataKey.retired_at.is_(None))
                                .order_by(DataKey.id.desc()).limit(1))
        memo["data_key", tenant_id] = row if row is not None else new_data_key(tenant_id)
    return memo["data_key", tenant_id]


def data_key(row: DataKey) -> bytes:
    """The unwrapped key; a wrapped key moved to another tenant or altered fails to unwrap."""
    with _data_keys_lock:
        cached = _data_keys.get(row.wrapped_key)
    if cached is not None:
        return cached
    if row.master_fingerprint is not None and row.master_fingerprint != master_fingerprint(current_app):
        raise MasterKeyError(f"data key {row.id} is wrapped by another master key: "
                             + wrong_master_message(current_app, row.master_fingerprint,
                                                    master_fingerprint(current_app)))
    raw = unwrap_data_key(derive_key(current_app, "data-key-wrap"), row.tenant_id, row.wrapped_key)
    with _data_keys_lock:
        _data_keys[row.wrapped_key] = raw
    return raw


def _identifier_aad(row_tenant: int, kind: str, index: str) -> bytes:
    # Bound to the row's place: a ciphertext copied into another row (or tenant) does not decrypt.
    return f"veil:identifier:{row_tenant}:{kind}:{index}".encode()


def encrypt_identifier(key_row: DataKey, kind: str, index: str, value: str) -> tuple[bytes, bytes]:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(data_key(key_row)).encrypt(nonce, value.encode("utf-8"),
                                               _identifier_aad(key_row.tenant_id, kind, index))
    return nonce, sealed


def decrypt_identifier(row: CustomerIdentifier) -> str:
    key_row = db.session.get(DataKey, row.data_key_id)
    plain = AESGCM(data_key(key_row)).decrypt(row.nonce, row.ciphertext,
                                              _identifier_aad(row.tenant_id, row.kind, row.blind_index))
    return plain.decode("utf-8")


# ---- storing -------------------------------------------------------------------------------------------

def store_identifier(tenant_id: int, kind: str, normalised: str, original: str, hint: str) -> CustomerIdentifier:
    """The tenant's row for this identifier: the existing one (the same customer written any way), or a
    new one. Two writers at once end up with one row (the insert does nothing when the index is taken)."""
    index = blind_index(tenant_id, kind, normalised)
    found = db.session.scalar(select(CustomerIdentifier).where(
        CustomerIdentifier.tenant_id == tenant_id, CustomerIdentifier.kind == kind,
        CustomerIdentifier.blind_index == index))
    if found is not None:
        return found
    key_row = active_data_key(tenant_id)
    nonce, sealed = encrypt_identifier(key_row, kind, index, original)
    insert_if_absent(CustomerIdentifier, {
        "tenant_id": tenant_id, "kind": kind, "blind_index": index, "nonce": nonce, "ciphertext": sealed,
        "data_key_id": key_row.id, "masked_hint": hint, "created_at": utcnow()})
    return db.session.scalars(select(CustomerIdentifier).where(
        CustomerIdentifier.tenant_id == tenant_id, CustomerIdentifier.kind == kind,
        CustomerIdentifier.blind_index == index)).one()


@dataclass
class Protected:
    """A protected text and, for each identifier replaced, (original start, original end, shown length)."""

    text: str
    replaced: list[tuple[int, int, int]]

    def shown_offset(self, position: int, *, end: bool = False) -> int:
        """Where a code-point offset of the original text falls in `display(text)` (hints of an identifier
        written another way before may differ in length)."""
        shift = 0
        for start, stop, shown in self.replaced:
            if position >= stop:
                shift += shown - (stop - start)
            elif position > start:
                return start + shift + (shown if end else 0)
            else:
                break
        return position + shift


def protect_text(tenant_id: int, text: str) -> Protected:
    text = defuse(text)
    if not text:
        return Protected(text, [])
    engine = engine_for(tenant_id)
    spans = find_spans(engine, text)
    parts, replaced, position = [], [], 0
    for span in spans:
        original = text[span.start:span.end]
        row = store_identifier(tenant_id, span.kind, normalise(engine, span.kind, original), original, span.hint)
        parts.append(text[position:span.start])
        parts.append(f"{TOKEN_START}{row.id}{TOKEN_END}")
        replaced.append((span.start, span.end, len(row.masked_hint)))
        position = span.end
    parts.append(text[position:])
    return Protected("".join(parts), replaced)


def protect(tenant_id: int, text: str) -> str:
    """`text` with every customer identifier replaced by a token; the originals stored encrypted."""
    return protect_text(tenant_id, text).text


def protect_checked(tenant_id: int, text: str, check: dict | None) -> tuple[str, dict | None]:
    """`protect`, and the server's check of the clear text made fit to store beside it: each finding's
    offsets point into `display(protected)`, and its `text` is what is shown there (the masked hint for
    an identifier; a sensitive word stays as it is)."""
    protected = protect_text(tenant_id, text)
    return protected.text, fit_check(protected, check)


def fit_check(protected: Protected, check: dict | None) -> dict | None:
    """A check of the text before protecting, made to point into `display(protected.text)`."""
    if check is None:
        return None
    shown = display(protected.text)
    findings = []
    for finding in check.get("findings") or []:
        start = protected.shown_offset(finding["start"])
        end = max(start, protected.shown_offset(finding["end"], end=True))
        findings.append({**finding, "start": start, "end": end, "text": shown[start:end]})
    return {**check, "findings": findings}


def protect_details(tenant_id: int, details: dict) -> dict:
    """A behaviour event's details with the text people wrote protected (nested objects: every string)."""
    return map_written_details(details, lambda value: protect(tenant_id, value))


def map_written_details(details: dict, change: Callable[[str], str]) -> dict:
    """`details` with `change` applied to every string people wrote (TEXT_DETAILS and nested `details`)."""

    def walk(value):
        if isinstance(value, str):
            return change(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return {key: (walk(value) if key in TEXT_DETAILS or key == "details" else value)
            for key, value in details.items()}


# ---- reading -------------------------------------------------------------------------------------------

def identifiers_in(text: str | None) -> list[int]:
    """The identifier ids a stored text refers to, in order of appearance."""
    if not text or TOKEN_START not in text:
        return []
    return [int(m.group(1)) for m in TOKEN.finditer(text)]


def _hints(ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(db.session.execute(select(CustomerIdentifier.id, CustomerIdentifier.masked_hint)
                                   .where(CustomerIdentifier.id.in_(set(ids)))).all())


def _replace(text: str, value: Callable[[int], str]) -> str:
    return TOKEN.sub(lambda m: value(int(m.group(1))), text)


def display(text: str | None) -> str | None:
    """Stored text as everyone sees it: each token shows the identifier's masked hint."""
    ids = identifiers_in(text)
    if not ids:
        return text
    hints = _hints(ids)
    return _replace(text, lambda i: hints.get(i, GONE))


def display_details(details: dict | None) -> dict | None:
    """`display` over a behaviour event's details (every string, however deep)."""

    def walk(value):
        if isinstance(value, str):
            return display(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(details) if isinstance(details, dict) else details


def reveal(tenant_id: int, identifier_id: int) -> str:
    """The original identifier. Callers must have checked a restore grant (and record its use)."""
    row = db.session.get(CustomerIdentifier, identifier_id)
    if row is None or row.tenant_id != tenant_id:
        raise not_found(_("identifier"))
    return decrypt_identifier(row)


def reveal_text(tenant_id: int, text: str | None) -> str | None:
    """Stored text with every identifier in clear: only for text going back to the console it is sent
    from (a supervisor's reply the agent's extension types and sends), never for showing."""
    ids = identifiers_in(text)
    if not ids:
        return text
    rows = {r.id: r for r in db.session.scalars(select(CustomerIdentifier).where(
        CustomerIdentifier.id.in_(set(ids)), CustomerIdentifier.tenant_id == tenant_id))}
    return _replace(text, lambda i: decrypt_identifier(rows[i]) if i in rows else GONE)


def looks_like_identifier(tenant_id: int, value: str) -> bool:
    """Whether `value` is (apart from spaces) one or more identifiers the masker finds, such as a phone
    number or an e-mail address typed into a search box."""
    value = defuse(value.strip())
    spans = find_spans(engine_for(tenant_id), value) if value else []
    covered = sum(s.end - s.start for s in spans)
    return bool(spans) and covered >= len("".join(value.split())) * 0.6


def find_identifiers(tenant_id: int, value: str) -> list[int]:
    """Ids of the tenant's identifiers that `value` names (a phone number or e-mail address written any
    way), found by blind index: nothing is decrypted."""
    engine = engine_for(tenant_id)
    value = defuse(value.strip())
    wanted = {(s.kind, blind_index(tenant_id, s.kind, normalise(engine, s.kind, value[s.start:s.end])))
              for s in (find_spans(engine, value) if value else [])}
    if not wanted:
        return []
    ids = []
    for kind, index in sorted(wanted):
        ids += db.session.scalars(select(CustomerIdentifier.id).where(
            CustomerIdentifier.tenant_id == tenant_id, CustomerIdentifier.kind == kind,
            CustomerIdentifier.blind_index == index)).all()
    return sorted(ids)


def token(identifier_id: int) -> str:
    """The token stored text holds for an identifier (what a records search looks for)."""
    return f"{TOKEN_START}{identifier_id}{TOKEN_END}"
