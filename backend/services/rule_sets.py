"""A tenant's rules: versioned in the database, compiled into the payload both engines load.

Every save writes a new immutable `RuleSetVersion`; extensions and the backend's re-check use the latest.
The first read for a tenant seeds version 1 from shared_rules/default.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import func, select

from backend.engine import Engine, RulesError, compile_rules, load_rules_folder
from backend.engine.consoles import validate_console
from backend.engine.rules import ACTIONS, MAX_WORD_LENGTH, SHARED_RULES, parse_list
from backend.errors import ApiError
from backend.extensions import db
from backend.models import RuleSetVersion, Tenant, User
from backend.models.base import transaction_memo
from backend.services.audit import record_audit
from backend.services.signals import rule_set_saved

MAX_WORDS = 200_000
CATEGORY_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")


def default_rules() -> dict:
    return load_rules_folder(SHARED_RULES / "default")


def content_hash(content: dict) -> str:
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def latest_version(tenant_id: int) -> RuleSetVersion | None:
    return db.session.scalar(
        select(RuleSetVersion).where(RuleSetVersion.tenant_id == tenant_id).order_by(RuleSetVersion.version.desc())
        .limit(1)
    )


def current_rule_set(tenant: Tenant) -> RuleSetVersion:
    """The tenant's latest version, seeding version 1 from the shipped defaults on first use. Looked up once
    per transaction: ingest asks for every message it checks or protects."""
    memo = transaction_memo()
    if ("rule_set", tenant.id) not in memo:
        memo["rule_set", tenant.id] = _latest_or_seeded(tenant)
    return memo["rule_set", tenant.id]


def _latest_or_seeded(tenant: Tenant) -> RuleSetVersion:
    row = latest_version(tenant.id)
    if row is None:
        content = default_rules()
        row = RuleSetVersion(tenant_id=tenant.id, version=1, content=content, sha256=content_hash(content),
                             note="Veil default rules")
        db.session.add(row)
        db.session.flush()
    return row


def validate_content(content: dict) -> dict:
    """Clean and check rules given by a person; the compiler has the last word (settings, sizes)."""
    if not isinstance(content, dict):
        raise ApiError(400, "invalid_rules", _("Rules must be an object."))
    categories = content.get("categories", {})
    allow = content.get("allow", [])
    settings = content.get("settings", {})
    if not isinstance(categories, dict) or not isinstance(allow, list) or not isinstance(settings, dict):
        raise ApiError(400, "invalid_rules", _("Rules need categories (an object), allow (a list) and settings."))
    clean: dict[str, list[str]] = {}
    total = 0
    for name, words in categories.items():
        if not name or not set(name) <= CATEGORY_CHARS or len(name) > 48:
            raise ApiError(400, "invalid_category",
                           _("Category names use lower-case letters, digits, - and _ (got %(name)s).", name=name))
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ApiError(400, "invalid_rules", _("The words of %(name)s must be a list of strings.", name=name))
        clean[name] = sorted({w.strip() for w in words if w.strip() and not w.strip().startswith("#")})
        too_long = [w for w in clean[name] if len(w) > MAX_WORD_LENGTH]
        if too_long:
            raise ApiError(400, "invalid_rules", _("A word in %(name)s is longer than %(n)d characters.",
                                                   name=name, n=MAX_WORD_LENGTH))
        total += len(clean[name])
    if total > MAX_WORDS:
        raise ApiError(400, "too_many_words", _("At most %(n)d words in all.", n=MAX_WORDS))
    if not all(isinstance(a, str) for a in allow):
        raise ApiError(400, "invalid_rules", _("The allow list must be a list of strings."))
    cleaned = {"categories": clean, "allow": sorted({a.strip() for a in allow if a.strip()}), "settings": settings}
    if "consoles" in content:
        cleaned["consoles"] = validate_consoles(content["consoles"])
    for action in (settings.get("actions") or {}).values():
        if action not in ACTIONS:
            raise ApiError(400, "invalid_action", _("An action must be block, warn or log."))
    try:
        compile_rules(cleaned)
    except RulesError as err:
        raise ApiError(400, "invalid_rules", str(err)) from err
    return cleaned


def validate_consoles(consoles: object) -> list[dict]:
    """Console profiles as an admin gives them: each must pass the same checks as the shipped ones."""
    if not isinstance(consoles, list) or not all(isinstance(c, dict) for c in consoles):
        raise ApiError(400, "invalid_consoles", _("Console profiles must be a list of objects."))
    seen = set()
    for profile in consoles:
        errors = validate_console(profile)
        if errors:
            raise ApiError(400, "invalid_console",
                           _("Console profile %(id)s: %(error)s", id=str(profile.get("id", "?"))[:48],
                             error="; ".join(errors[:5])))
        if profile["id"] in seen:
            raise ApiError(400, "invalid_console", _("Two console profiles are called %(id)s.", id=profile["id"]))
        seen.add(profile["id"])
    return sorted(consoles, key=lambda c: c["id"])


def save_rule_set(actor: User, content: dict, note: str = "") -> RuleSetVersion:
    current = current_rule_set(actor.tenant)
    if isinstance(content, dict) and "consoles" not in content and "consoles" in current.content:
        content = {**content, "consoles": current.content["consoles"]}  # a save of words keeps the profiles
    cleaned = validate_content(content)
    digest = content_hash(cleaned)
    if digest == current.sha256:
        return current  # nothing changed: no new version
    next_version = (db.session.scalar(select(func.max(RuleSetVersion.version))
                                      .where(RuleSetVersion.tenant_id == actor.tenant_id)) or 0) + 1
    row = RuleSetVersion(tenant_id=actor.tenant_id, version=next_version, content=cleaned, sha256=digest,
                         note=note.strip()[:400], created_by_id=actor.id)
    db.session.add(row)
    db.session.flush()
    transaction_memo().clear()  # what this transaction looked up came from the version before
    record_audit("rules.save", actor=actor, target_type="rule_set", target_id=next_version,
                 details={"note": row.note, "changes": summarise_change(current.content, cleaned)})
    payload, _text = compiled_payload(row)
    rule_set_saved.send(row, tenant_id=row.tenant_id, version_hash=payload["hash"])
    return row


def summarise_change(before: dict, after: dict) -> dict:
    """Words added and removed per category, for the history table and the audit trail."""
    summary = {}
    names = set(before.get("categories", {})) | set(after.get("categories", {}))
    for name in sorted(names):
        old, new = set(before["categories"].get(name, [])), set(after["categories"].get(name, []))
        if old != new:
            summary[name] = {"added": len(new - old), "removed": len(old - new)}
    old_allow, new_allow = set(before.get("allow", [])), set(after.get("allow", []))
    if old_allow != new_allow:
        summary["allow"] = {"added": len(new_allow - old_allow), "removed": len(old_allow - new_allow)}
    if before.get("settings") != after.get("settings"):
        summary["settings"] = "changed"
    return summary


def history(tenant_id: int, limit: int = 50) -> list[RuleSetVersion]:
    return list(db.session.scalars(select(RuleSetVersion).where(RuleSetVersion.tenant_id == tenant_id)
                                   .order_by(RuleSetVersion.version.desc()).limit(limit)))


_COMPILED: dict[str, tuple[dict, str]] = {}
_COMPILED_MAX = 64


def compiled_payload(row: RuleSetVersion) -> tuple[dict, str]:
    """(payload, its JSON), compiled once per version and process.

    Keyed by the version's content hash, so serving the rules to every polling extension costs a dict
    lookup, not a serialisation of the whole word list.
    """
    cached = _COMPILED.get(row.sha256)
    if cached is None:
        payload = compile_rules(row.content)
        cached = (payload, json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))  # oldest first: dicts keep insertion order
        _COMPILED[row.sha256] = cached
    return cached


@dataclass
class TenantEngine:
    """A tenant's engine for one payload. `check` keeps a per-conversation window, so calls take the lock."""

    engine: Engine
    lock: threading.Lock = field(default_factory=threading.Lock)


_ENGINES: dict[int, TenantEngine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for_tenant(tenant: Tenant) -> TenantEngine:
    """The engine for the tenant's current rules: one per tenant and process, rebuilt when the rules change.

    One per tenant, not per payload, because the split-number window remembers that tenant's conversations.
    """
    payload, _text = compiled_payload(current_rule_set(tenant))
    with _ENGINES_LOCK:
        cached = _ENGINES.get(tenant.id)
        if cached is None or cached.engine.version != payload["hash"]:
            cached = _ENGINES[tenant.id] = TenantEngine(Engine(payload))
        return cached


# ---- the rules folder format, for import and export ----------------------------------------------

def export_zip(row: RuleSetVersion) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, words in sorted(row.content["categories"].items()):
            archive.writestr(f"sensitive/{name}.txt", f"# {name}\n" + "".join(w + "\n" for w in words))
        archive.writestr("allow.txt", "".join(w + "\n" for w in row.content["allow"]))
        archive.writestr("settings.toml", to_toml(row.content.get("settings") or {}))
        for profile in row.content.get("consoles", []):
            archive.writestr(f"consoles/{profile['id']}.json",
                             json.dumps(profile, ensure_ascii=False, indent=2) + "\n")
    return buffer.getvalue()


def to_toml(settings: dict) -> str:
    """Settings are one level of tables holding strings, numbers, booleans and lists of strings."""
    lines = []
    for table, values in settings.items():
        if not isinstance(values, dict):
            continue
        lines.append(f"[{table}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
        lines.append("")
    return "\n".join(lines)


MAX_IMPORT_BYTES = 20 * 1024 * 1024


def import_zip(data: bytes) -> dict:
    """A rules folder packed as .zip (as `export_zip` makes it) back into rules content."""
    import tempfile
    from pathlib import Path

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ApiError(400, "invalid_archive", _("That file is not a .zip of a rules folder.")) from exc
    if sum(m.file_size for m in members) > MAX_IMPORT_BYTES:
        raise ApiError(400, "archive_too_large", _("The rules archive is too large."))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for member in members:
            name = member.filename
            if member.is_dir():
                continue
            # only the files of the format, never a path that climbs out
            if name == "allow.txt" or name == "settings.toml" or (
                name.startswith("sensitive/") and name.endswith(".txt") and name.count("/") == 1
            ) or (name.startswith("consoles/") and name.endswith(".json") and name.count("/") == 1):
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
        try:
            rules = load_rules_folder(root)
        except RulesError as err:
            raise ApiError(400, "invalid_rules", str(err).replace(folder, "")) from err
        if not (root / "consoles").is_dir():
            del rules["consoles"]  # an archive of words only keeps the tenant's console profiles
        return rules


def words_from_text(text: str, source: str) -> list[str]:
    """One word per line, as in the text files (comments and blank lines dropped)."""
    try:
        return [w for _n, w in parse_list(text.encode("utf-8"), source)]
    except RulesError as err:
        raise ApiError(400, "invalid_rules", str(err)) from err
