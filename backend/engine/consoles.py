"""Console profiles (shared_rules/consoles/, format in its README.md): loading and validation.

Profiles are read by the extension's JavaScript, so the checks here are the ones Python can make without a
browser: the shape of the data, Chrome match-pattern syntax, regular expressions and plausible CSS. Whether
a selector really parses is checked against a DOM in tests/js/content_profile.test.js.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

SHARED_CONSOLES = Path(__file__).resolve().parents[2] / "shared_rules" / "consoles"
ID = re.compile(r"[a-z0-9_]+")
MAX_SELECTOR_LENGTH = 500
MATCH_SCHEMES = ("*", "http", "https", "file")  # as Chrome documents them
# Host: "*", "*." and a host, or a host; an optional port (a number or "*").
MATCH_HOST = re.compile(r"(\*|(\*\.)?[^*/:]+)(:(\d+|\*))?")
FIELD_KEYS = {"selector", "attribute", "pattern", "from", "exclude"}
FIELD_SOURCES = ("url", "title")
MARKER_KEYS = {"selector", "text", "pattern"}
COMBINATORS = (">", "+", "~")

# Each section: key -> (kind, required). Kinds are checked by the functions in CHECKS below.
SECTIONS = {
    "": {"id": ("id", True), "name": ("text", True), "platform": ("id", True), "matches": ("matches", True),
         "mask": ("mask", False), "conversation": ("conversation", False), "account": ("field", False),
         "messages": ("messages", True), "composer": ("composer", True)},
    "mask": {"regions": ("selectors", False), "skip": ("selectors", False), "names": ("selectors", False),
             "separate": ("selectors", False)},
    "conversation": {"title": ("field", False), "key": ("field", False), "customer": ("field", False)},
    "messages": {"row": ("selector", True), "id": ("field", False), "text": ("field", True),
                 "outgoing": ("outgoing", False), "time": ("field", False), "sender": ("field", False),
                 "deleted": ("deleted", False), "edited": ("marker", False)},
    "composer": {"input": ("selector", True), "send": ("selector", False), "enter_sends": ("flag", False)},
}


class ConsoleError(ValueError):
    """A console profile that cannot be used; the message names the file and every fault found."""


def load_consoles(folder: str | Path = SHARED_CONSOLES) -> list[dict]:
    """Every `<id>.json` in the folder, validated, sorted by id; ConsoleError lists all faults of all files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConsoleError(f"{folder}: not a folder")
    profiles, faults = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            profile = read_console(path)
        except ConsoleError as exc:
            faults.append(str(exc))
            continue
        errors = validate_console(profile, file_id=path.stem)
        faults.extend(f"{path}: {error}" for error in errors)
        if not errors:
            profiles.append(profile)
    if faults:
        raise ConsoleError("\n".join(faults))
    return profiles


def read_console(path: Path) -> dict:
    """The JSON of one profile file. A BOM is refused because JSON.parse in the extension refuses it, and
    CRLF line ends so that every checkout holds, and serves, the same bytes."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConsoleError(f"{path}: cannot read ({exc.strerror})") from exc
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ConsoleError(f"{path}: starts with a byte-order mark; save it as UTF-8 without BOM")
    if b"\r" in raw:
        raise ConsoleError(f"{path}: has Windows (CRLF) or CR line ends; save it with \\n line ends")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConsoleError(f"{path}: not UTF-8 (byte {exc.start})") from exc
    try:
        profile = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ConsoleError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except ValueError as exc:
        raise ConsoleError(f"{path}: {exc}") from exc
    if not isinstance(profile, dict):
        raise ConsoleError(f"{path}: must hold a JSON object")
    return profile


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def validate_console(profile: dict, *, file_id: str | None = None) -> list[str]:
    """Every fault in one profile as "path: problem" (empty when valid); `file_id` is the file name's stem."""
    errors: list[str] = []
    if not isinstance(profile, dict):
        return ["profile: must be an object"]
    _check_section(profile, "", errors)
    if file_id is not None and profile.get("id") != file_id:
        errors.append(f"id: must equal the file name ({file_id!r}), not {profile.get('id')!r}")
    messages = profile.get("messages")
    if isinstance(messages, dict) and isinstance(messages.get("deleted"), dict):
        if messages["deleted"].get("removed") is True and not messages.get("id"):
            errors.append("messages.deleted.removed: needs messages.id to tell which message left the list")
    return errors


def _check_section(section: object, name: str, errors: list[str]) -> None:
    prefix = f"{name}." if name else ""
    if not isinstance(section, dict):
        errors.append(f"{name}: must be an object")
        return
    spec = SECTIONS[name]
    for key in sorted(section.keys() - spec.keys()):
        errors.append(f"{prefix}{key}: unknown key (known: {', '.join(spec)})")
    for key, (kind, required) in spec.items():
        value = section.get(key)
        if value is None:
            if required:
                errors.append(f"{prefix}{key}: required")
            continue
        CHECKS[kind](value, f"{prefix}{key}", errors)


def _check_id(value: object, path: str, errors: list[str]) -> None:
    if not isinstance(value, str) or not ID.fullmatch(value):
        errors.append(f"{path}: must be lower case letters, digits and _ ({value!r})")


def _check_text(value: object, path: str, errors: list[str]) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{path}: must be a non-empty string")


def _check_flag(value: object, path: str, errors: list[str]) -> None:
    if not isinstance(value, bool):
        errors.append(f"{path}: must be true or false")


def _check_matches(value: object, path: str, errors: list[str]) -> None:
    if not isinstance(value, list):
        errors.append(f"{path}: must be a list of match patterns")
        return
    for index, pattern in enumerate(value):
        problem = match_pattern_problem(pattern)
        if problem:
            errors.append(f"{path}[{index}]: not a Chrome match pattern ({problem}): {pattern!r}")


def match_pattern_problem(pattern: object) -> str | None:
    """Why `pattern` is not a Chrome match pattern (`<scheme>://<host><path>` or `<all_urls>`), or None."""
    if not isinstance(pattern, str):
        return "not a string"
    if pattern == "<all_urls>":
        return None
    scheme, separator, rest = pattern.partition("://")
    if not separator:
        return "no ://"
    if scheme not in MATCH_SCHEMES:
        return f"scheme must be one of {', '.join(MATCH_SCHEMES)}"
    host, slash, _path = rest.partition("/")
    if not slash:
        return "no path (end with /* to match every page)"
    if scheme == "file":
        return None if host == "" else "a file:// pattern has no host"
    if not MATCH_HOST.fullmatch(host):
        return "host must be *, *.example.com or example.com, with an optional port"
    return None


def _check_selector(value: object, path: str, errors: list[str]) -> None:
    problem = selector_problem(value)
    if problem:
        errors.append(f"{path}: {problem}")


def selector_problem(selector: object) -> str | None:
    """Why `selector` cannot be a CSS selector list, as far as can be told without a CSS parser, or None."""
    if not isinstance(selector, str) or not selector.strip():
        return "must be a non-empty CSS selector"
    if len(selector) > MAX_SELECTOR_LENGTH:
        return f"selector longer than {MAX_SELECTOR_LENGTH} characters"
    if "{" in selector or "}" in selector:
        return "a selector has no { or } (a rule or declaration block?)"
    closing = {"(": ")", "[": "]"}
    stack: list[str] = []
    quote = None
    parts, start = [], 0
    characters = iter(enumerate(selector))
    for index, char in characters:
        if char == "\\":
            next(characters, None)  # an escaped character is never syntax
        elif quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in closing:
            stack.append(closing[char])
        elif char in ")]":
            if not stack or stack.pop() != char:
                return f"unbalanced {char!r} at {index}"
        elif char == "," and not stack:
            parts.append(selector[start:index])
            start = index + 1
    if quote:
        return f"unclosed {quote} quote"
    if stack:
        return f"unclosed bracket: missing {stack[-1]!r}"
    parts.append(selector[start:])
    for part in parts:
        part = part.strip()
        if not part:
            return "an empty selector in the list (a stray comma?)"
        if part.startswith(COMBINATORS) or part.endswith(COMBINATORS):
            return f"a combinator with nothing on one side: {part!r}"
    return None


def _check_selectors(value: object, path: str, errors: list[str]) -> None:
    if not isinstance(value, list):
        errors.append(f"{path}: must be a list of selectors")
        return
    for index, selector in enumerate(value):
        _check_selector(selector, f"{path}[{index}]", errors)


def _check_pattern(value: object, path: str, errors: list[str]) -> None:
    if not isinstance(value, str) or not value:
        errors.append(f"{path}: must be a non-empty regular expression")
        return
    try:
        compiled = re.compile(value)
    except re.error as exc:
        errors.append(f"{path}: does not compile: {exc}")
        return
    if compiled.groups > 1:
        errors.append(f"{path}: has {compiled.groups} groups; the value is one group, use (?:...) for the others")


def _check_field(value: object, path: str, errors: list[str], *, in_list: bool = False) -> None:
    if isinstance(value, str):
        _check_selector(value, path, errors)
    elif isinstance(value, list) and not in_list:
        if not value:
            errors.append(f"{path}: an empty list of fields")
        for index, item in enumerate(value):
            _check_field(item, f"{path}[{index}]", errors, in_list=True)
    elif isinstance(value, dict):
        _check_field_object(value, path, errors)
    else:
        allowed = "a selector or a field object" if in_list else "a selector, a field object or a list of them"
        errors.append(f"{path}: must be {allowed}")


def _check_field_object(field: dict, path: str, errors: list[str]) -> None:
    for key in sorted(field.keys() - FIELD_KEYS):
        errors.append(f"{path}.{key}: unknown key (known: {', '.join(sorted(FIELD_KEYS))})")
    if not field.keys() & FIELD_KEYS:
        errors.append(f"{path}: a field needs a selector, an attribute, a pattern or from")
    source = field.get("from")
    if source is not None:
        if source not in FIELD_SOURCES:
            errors.append(f"{path}.from: must be one of {', '.join(FIELD_SOURCES)}")
        for key in ("selector", "attribute", "exclude"):
            if field.get(key) is not None:
                errors.append(f"{path}.{key}: not used with from (the value comes from the {source})")
    if field.get("selector") is not None:
        _check_selector(field["selector"], f"{path}.selector", errors)
    if field.get("attribute") is not None:
        _check_text(field["attribute"], f"{path}.attribute", errors)
        if field.get("exclude") is not None:
            errors.append(f"{path}.exclude: applies to the text, not to an attribute")
    if field.get("exclude") is not None:
        _check_selector(field["exclude"], f"{path}.exclude", errors)
    if field.get("pattern") is not None:
        _check_pattern(field["pattern"], f"{path}.pattern", errors)


def _check_marker(value: object, path: str, errors: list[str], *, removable: bool = False) -> None:
    known = MARKER_KEYS | {"removed"} if removable else MARKER_KEYS
    if not isinstance(value, dict):
        errors.append(f"{path}: must be an object with {', '.join(sorted(known))}")
        return
    for key in sorted(value.keys() - known):
        errors.append(f"{path}.{key}: unknown key (known: {', '.join(sorted(known))})")
    if not any(value.get(key) not in (None, False) for key in known):
        errors.append(f"{path}: a marker needs a selector, a text, a pattern" + (" or removed" if removable else ""))
    if value.get("selector") is not None:
        _check_selector(value["selector"], f"{path}.selector", errors)
    texts = value.get("text")
    if texts is not None and (not isinstance(texts, list) or not texts
                              or not all(isinstance(text, str) and text.strip() for text in texts)):
        errors.append(f"{path}.text: must be a list of non-empty strings")
    if value.get("pattern") is not None:
        _check_pattern(value["pattern"], f"{path}.pattern", errors)
    if value.get("removed") is not None:
        _check_flag(value["removed"], f"{path}.removed", errors)


def _check_outgoing(value: object, path: str, errors: list[str]) -> None:
    if isinstance(value, str):
        _check_selector(value, path, errors)
    else:
        _check_marker(value, path, errors)


def _check_deleted(value: object, path: str, errors: list[str]) -> None:
    _check_marker(value, path, errors, removable=True)


CHECKS = {
    "id": _check_id, "text": _check_text, "flag": _check_flag, "matches": _check_matches,
    "selector": _check_selector, "selectors": _check_selectors, "field": _check_field,
    "marker": _check_marker, "outgoing": _check_outgoing, "deleted": _check_deleted,
    # A section's path is its name in SECTIONS: sections sit at the top level only.
    **dict.fromkeys(("mask", "conversation", "messages", "composer"), _check_section),
}
