"""Rules folders (shared_rules format) and the compiled payload both engines load.

A rules folder holds `sensitive/<category>.txt`, `allow.txt` and an optional `settings.toml`. Compiling it
adds the detector word lists and character tables from shared_rules/detectors/, traditional→simplified
characters (OpenCC's table), pinyin spellings of Chinese words and phone-number metadata (from the
`phonenumbers` library), so the JavaScript engine needs nothing but the payload.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
import unicodedata
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from backend.engine.consoles import SHARED_CONSOLES, ConsoleError, load_consoles
from backend.engine.normalise import Normaliser, Tables

SHARED_RULES = Path(__file__).resolve().parents[2] / "shared_rules"
DETECTORS = SHARED_RULES / "detectors"
PAYLOAD_FORMAT = 1
ACTIONS = ("block", "warn", "log")
CONTACT_DETECTORS = ("phone", "email", "handle", "link", "bank_card", "crypto_wallet")
IDENTIFIER_DETECTORS = ("phone", "email", "id_card", "bank_card", "handle")
MAX_WORD_LENGTH = 200
DEFAULT_COUNTRIES = ["CN", "HK", "TW", "MO", "SG", "MY", "TH", "VN", "ID", "PH", "IN", "BR", "US", "CA", "GB",
                     "DE", "FR", "ES", "IT", "NL", "PT", "PL", "RU", "TR", "AE", "SA", "JP", "KR", "AU", "MX"]


class RulesError(ValueError):
    """A rules folder that cannot be used, with the file and line at fault."""


def read_list(path: Path) -> list[tuple[int, str]]:
    """(line number, entry) for a list file: UTF-8 (a BOM is fine), `#` comments, blank lines ignored."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RulesError(f"{path}: cannot read ({exc.strerror})") from exc
    return parse_list(raw, str(path))


def parse_list(raw: bytes, source: str) -> list[tuple[int, str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{source}: not UTF-8 (byte {exc.start})") from exc
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):  # \r\n and \n alike
        line = line.strip()
        if line and not line.startswith("#"):
            if len(line) > MAX_WORD_LENGTH:
                raise RulesError(f"{source}:{number}: longer than {MAX_WORD_LENGTH} characters")
            entries.append((number, line))
    return entries


def load_rules_folder(folder: str | Path) -> dict:
    """The rules as data: {"categories": {name: [words]}, "allow": [...], "settings": {...}, "consoles": [...]}.

    Console profiles come from the folder's own consoles/ when it has one, else the shipped ones
    (shared_rules/consoles), so every rule set carries the profiles the extension needs.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RulesError(f"{folder}: not a folder")
    sensitive = folder / "sensitive"
    categories: dict[str, list[str]] = {}
    if sensitive.is_dir():
        for path in sorted(sensitive.glob("*.txt")):
            categories[path.stem] = [word for _n, word in read_list(path)]
    allow = [word for _n, word in read_list(folder / "allow.txt")] if (folder / "allow.txt").exists() else []
    settings: dict = {}
    settings_path = folder / "settings.toml"
    if settings_path.exists():
        try:
            settings = tomllib.loads(settings_path.read_bytes().decode("utf-8-sig"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RulesError(f"{settings_path}: {exc}") from exc
    if not categories and not allow and not settings:
        raise RulesError(f"{folder}: no sensitive/*.txt, allow.txt or settings.toml: not a rules folder")
    try:
        consoles = load_consoles(folder / "consoles" if (folder / "consoles").is_dir() else SHARED_CONSOLES)
    except ConsoleError as exc:
        raise RulesError(str(exc)) from exc
    return {"categories": categories, "allow": allow, "settings": settings, "consoles": consoles}


def _pairs(name: str) -> dict[str, str]:
    pairs = {}
    for number, line in read_list(DETECTORS / name):
        parts = line.split()
        if len(parts) != 2:
            raise RulesError(f"{DETECTORS / name}:{number}: expected two columns")
        pairs[parts[0]] = parts[1]
    return pairs


def _words(name: str) -> list[str]:
    return [word.lower() for _n, word in read_list(DETECTORS / name)]


@lru_cache(maxsize=1)
def traditional_to_simplified() -> dict[str, str]:
    """Single characters only: OpenCC's TSCharacters table, first choice of each."""
    table = {}
    text = resources.files("opencc").joinpath("dictionary/TSCharacters.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        if "\t" in line:
            source, targets = line.split("\t", 1)
            target = targets.split()[0]
            if len(source) == 1 and len(target) == 1 and source != target:
                table[source] = target
    return table


@lru_cache(maxsize=1)
def phone_lengths() -> dict[str, list[int]]:
    """Calling code → possible lengths of the national number, from libphonenumber's metadata."""
    import phonenumbers
    from phonenumbers import PhoneMetadata

    lengths: dict[str, set[int]] = {}
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            meta = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
            if meta is None or meta.general_desc is None:
                continue
            lengths.setdefault(str(code), set()).update(meta.general_desc.possible_length or ())
    return {code: sorted(values) for code, values in sorted(lengths.items())}


def unassigned_ranges() -> list[tuple[int, int]]:
    """(first, last) of each run of code points this Python's unicodedata leaves unassigned (category Cn)."""
    ranges: list[list[int]] = []
    for cp in range(0x110000):
        if unicodedata.category(chr(cp)) == "Cn":
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    return [(a, b) for a, b in ranges]


def encode_ranges(ranges: list[tuple[int, int]]) -> str:
    """One "gap+length" pair (hex) per range; each gap counts from the last code point of the range
    before (extension/engine/unassigned.js decodes it)."""
    parts, last = [], 0
    for start, end in ranges:
        parts.append(f"{start - last:x}+{end - start:x}")
        last = end
    return ",".join(parts)


@cache
def unicode_table() -> tuple[str, str]:
    """(Unicode version, encoded unassigned ranges) of this Python. The JavaScript engine reads the
    characters Python does not know as Python does; the table travels in the payload because this Python
    may be upgraded after an extension is built. Scanning every code point takes about 0.3 s: once."""
    return unicodedata.unidata_version, encode_ranges(unassigned_ranges())


def national_lengths(countries: list[str]) -> list[int]:
    """How many digits a number written without "+" may have in the expected countries: the national
    number, with its trunk prefix ("0…"), or with the calling code in front ("86138…")."""
    import phonenumbers
    from phonenumbers import PhoneMetadata

    lengths: set[int] = set()
    for region in countries:
        meta = PhoneMetadata.metadata_for_region(region)
        if meta is None:
            raise RulesError(f"settings.toml: unknown country code {region!r}")
        code = len(str(phonenumbers.country_code_for_region(region)))
        for size in meta.general_desc.possible_length or ():
            lengths.update({size, size + code})
            if meta.national_prefix:
                lengths.add(size + len(meta.national_prefix))
    return sorted(lengths)


def _settings(raw: dict, categories: list[str]) -> dict:
    actions = {name: "block" for name in categories}
    for name, action in (raw.get("actions") or {}).items():
        if action not in ACTIONS:
            raise RulesError(f"settings.toml: action for {name!r} must be one of {', '.join(ACTIONS)}")
        actions[name] = action
    contacts = raw.get("contacts") or {}
    detectors = contacts.get("detectors", list(CONTACT_DETECTORS))
    unknown = sorted(set(detectors) - set(CONTACT_DETECTORS))
    if unknown:
        raise RulesError(f"settings.toml: unknown contact detectors {unknown}")
    contact_action = contacts.get("action", "block")
    if contact_action not in ACTIONS:
        raise RulesError(f"settings.toml: contacts.action must be one of {', '.join(ACTIONS)}")
    mask = raw.get("mask") or {}
    style = mask.get("style", "last4")
    if style not in ("last4", "full"):
        raise RulesError("settings.toml: mask.style must be last4 or full")
    window = raw.get("window") or {}
    return {
        "actions": actions,
        "contacts": {"enabled": bool(contacts.get("enabled", True)), "action": contact_action,
                     "detectors": list(detectors),
                     "countries": [c.upper() for c in contacts.get("countries", DEFAULT_COUNTRIES)]},
        "mask": {"incoming": bool(mask.get("incoming", True)), "style": style},
        "window": {"messages": int(window.get("messages", 3)), "seconds": int(window.get("seconds", 300))},
    }


def compile_rules(rules: dict) -> dict:
    """The payload: everything an engine needs, JSON-serialisable, with a version hash."""
    tables_data = {
        "confusables": _pairs("confusables.txt"),
        "t2s": traditional_to_simplified(),
        "fold": _pairs("word_fold.txt"),
    }
    tables = Tables(**tables_data)
    normaliser = Normaliser(tables)
    settings = _settings(rules.get("settings") or {}, list(rules["categories"]))
    words = []
    for category, entries in sorted(rules["categories"].items()):
        for word in entries:
            for variant in word_variants(word, normaliser):
                words.append([variant, category, word])
    allow = sorted({skel for word in rules["allow"] for skel in word_variants(word, normaliser)})
    version, unassigned = unicode_table()
    payload = {
        "format": PAYLOAD_FORMAT,
        "settings": settings,
        "tables": tables_data,
        "unicode": {"version": version, "unassigned": unassigned},
        "words": words,
        "allow": allow,
        "allow_raw": list(rules["allow"]),
        # the console profiles (extension/content); rules that name none get the shipped ones
        "consoles": list(rules["consoles"]) if "consoles" in rules else load_consoles(),
        "detectors": {
            "handle_keywords": [[k.split()[0], len(k.split()) > 1] for k in _words("handle_keywords.txt")],
            "stop_handles": _words("stop_handles.txt"),
            "contact_context": _words("contact_context.txt"),
            "reference_context": _words("reference_context.txt"),
            "phone_lengths": phone_lengths(),
            "national_lengths": national_lengths(settings["contacts"]["countries"]),
        },
    }
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    payload["hash"] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return payload


def word_variants(word: str, normaliser: Normaliser) -> list[str]:
    """The word's skeleton, plus its pinyin spelling when it is Chinese (people type "sixia jiaoyi")."""
    variants = []
    skeleton = normaliser.fold_word(word)
    if skeleton:
        variants.append(skeleton)
    if skeleton and all("\u4e00" <= ch <= "\u9fff" for ch in skeleton) and len(skeleton) >= 2:
        from pypinyin import Style, lazy_pinyin

        spelled = normaliser.fold_word("".join(lazy_pinyin(skeleton, style=Style.NORMAL)))
        if spelled and spelled not in variants:
            variants.append(spelled)
    return variants


def payload_json(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
