"""Console profiles: every shipped one is valid and has a test page; a broken one says what is wrong, where."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from backend.engine.consoles import SHARED_CONSOLES, ConsoleError, load_consoles, read_console, validate_console

SHIPPED = sorted(SHARED_CONSOLES.glob("*.json"))
PAGES = Path(__file__).resolve().parents[1] / "e2e" / "pages"
DELETE = object()


def minimal() -> dict:
    return {
        "id": "demo", "name": "Demo desk", "platform": "web", "matches": ["https://chat.example.com/*"],
        "messages": {"row": ".row", "text": ".text"},
        "composer": {"input": "textarea"},
    }


def changed(path: tuple[str, ...], value: object) -> dict:
    profile = copy.deepcopy(minimal())
    target = profile
    for key in path[:-1]:
        target = target.setdefault(key, {})
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return profile


def test_minimal_profile_is_valid():
    assert validate_console(minimal(), file_id="demo") == []


def test_shipped_profiles_are_the_five_consoles():
    assert [profile["id"] for profile in load_consoles()] == [
        "generic", "messenger", "telegram_a", "telegram_k", "whatsapp"]


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_profile_is_valid(path):
    assert validate_console(read_console(path), file_id=path.stem) == []


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_profile_has_a_self_contained_test_page(path):
    page = PAGES / f"{path.stem}.html"
    assert page.is_file(), f"no test page {page} for {path.name}"
    html = page.read_text(encoding="utf-8")
    assert "console_sim.js" in html
    # The pages run on a machine with no way out: no CDN, no remote script, style or image.
    remote = [url for url in re.findall(r'(?:src|href)="([^"$]*)"', html) if re.match(r"(https?:)?//", url)]
    assert remote == []


BROKEN = [
    # Required keys and sections.
    ("no messages", ("messages",), DELETE, "messages: required"),
    ("no row", ("messages", "row"), DELETE, "messages.row: required"),
    ("text null", ("messages", "text"), None, "messages.text: required"),
    ("no composer input", ("composer", "input"), DELETE, "composer.input: required"),
    ("no matches", ("matches",), DELETE, "matches: required"),
    ("unknown key", ("colour",), "red", "colour: unknown key"),
    ("unknown section key", ("conversation",), {"name": ".x"}, "conversation.name: unknown key"),
    ("section not an object", ("composer",), "textarea", "composer: must be an object"),
    # Types.
    ("id in capitals", ("id",), "WhatsApp", "id: must be lower case letters, digits and _"),
    ("id with a dash", ("id",), "whats-app", "id: must be lower case letters, digits and _"),
    ("blank name", ("name",), "  ", "name: must be a non-empty string"),
    ("platform a number", ("platform",), 3, "platform: must be lower case letters"),
    ("enter_sends a string", ("composer", "enter_sends"), "yes", "composer.enter_sends: must be true or false"),
    ("regions not a list", ("mask",), {"regions": "#app"}, "mask.regions: must be a list of selectors"),
    # Chrome match patterns.
    ("matches a string", ("matches",), "https://chat.example.com/*", "matches: must be a list"),
    ("match without a path", ("matches",), ["https://chat.example.com"],
     "matches[0]: not a Chrome match pattern (no path"),
    ("match without a scheme", ("matches",), ["chat.example.com/*"], "matches[0]: not a Chrome match pattern (no ://"),
    ("match with a bad scheme", ("matches",), ["chrome://settings/*"], "(scheme must be one of"),
    ("wildcard inside a host", ("matches",), ["https://chat.*.com/*"], "(host must be"),
    ("file pattern with a host", ("matches",), ["file://server/*"], "(a file:// pattern has no host)"),
    ("second match broken", ("matches",), ["https://*.example.com:8443/*", "http//x/*"], "matches[1]:"),
    # Selectors.
    ("empty selector", ("messages", "row"), "", "messages.row: must be a non-empty CSS selector"),
    ("selector a list", ("messages", "row"), [".row"], "messages.row: must be a non-empty CSS selector"),
    ("unclosed bracket", ("messages", "row"), "div[data-id", "messages.row: unclosed bracket: missing ']'"),
    ("stray parenthesis", ("messages", "row"), "div:not(.a))", "messages.row: unbalanced ')'"),
    ("unclosed quote", ("composer", "send"), '[aria-label="Send]', "composer.send: unclosed \" quote"),
    ("a rule block", ("messages", "row"), ".row { color: red }", "messages.row: a selector has no { or }"),
    ("stray comma", ("messages", "row"), ".a, , .b", "messages.row: an empty selector in the list"),
    ("dangling combinator", ("messages", "row"), ".list >", "messages.row: a combinator with nothing"),
    ("too long", ("messages", "row"), "." + "a" * 500, "messages.row: selector longer than 500"),
    ("bad skip selector", ("mask",), {"skip": ["footer ["]}, "mask.skip[0]: unclosed bracket"),
    # Fields.
    ("field of the wrong type", ("messages", "text"), 5, "messages.text: must be a selector, a field object"),
    ("field with an unknown key", ("messages", "text"), {"selector": ".t", "attr": "x"},
     "messages.text.attr: unknown key"),
    ("empty field object", ("messages", "text"), {}, "messages.text: a field needs"),
    ("pattern that does not compile", ("messages", "text"), {"selector": ".t", "pattern": "(unclosed"},
     "messages.text.pattern: does not compile"),
    ("pattern with two groups", ("conversation", "key"), {"selector": "a", "pattern": "(a)(b)"},
     "conversation.key.pattern: has 2 groups"),
    ("from elsewhere", ("conversation", "key"), {"from": "cookie"}, "conversation.key.from: must be one of url, title"),
    ("from with a selector", ("conversation", "key"), {"from": "url", "selector": "a", "pattern": "#(\\d+)"},
     "conversation.key.selector: not used with from"),
    ("exclude with an attribute", ("messages", "text"), {"selector": ".t", "attribute": "title", "exclude": ".x"},
     "messages.text.exclude: applies to the text"),
    ("bad exclude selector", ("messages", "text"), {"selector": ".t", "exclude": ".x["}, "messages.text.exclude:"),
    ("empty field list", ("messages", "text"), [], "messages.text: an empty list of fields"),
    ("nested field list", ("messages", "text"), [[".t"]], "messages.text[0]: must be a selector or a field object"),
    ("bad field in a list", ("messages", "text"), [".t", {"pattern": "(("}], "messages.text[1].pattern: does not"),
    ("account a number", ("account",), 7, "account: must be a selector"),
    # Markers.
    ("marker a string", ("messages", "edited"), "Edited", "messages.edited: must be an object"),
    ("marker with an unknown key", ("messages", "edited"), {"label": "Edited"}, "messages.edited.label: unknown key"),
    ("marker text a string", ("messages", "edited"), {"text": "Edited"}, "messages.edited.text: must be a list"),
    ("marker with a blank text", ("messages", "edited"), {"text": ["Edited", " "]}, "messages.edited.text:"),
    ("marker with nothing", ("messages", "edited"), {"selector": None}, "messages.edited: a marker needs"),
    ("marker pattern broken", ("messages", "deleted"), {"pattern": "[a-"}, "messages.deleted.pattern: does not"),
    ("removed on edited", ("messages", "edited"), {"removed": True}, "messages.edited.removed: unknown key"),
    ("removed on outgoing", ("messages", "outgoing"), {"removed": True}, "messages.outgoing.removed: unknown key"),
    ("removed not a flag", ("messages", "deleted"), {"selector": ".gone", "removed": "yes"},
     "messages.deleted.removed: must be true or false"),
    ("removed without ids", ("messages", "deleted"), {"removed": True},
     "messages.deleted.removed: needs messages.id"),
]


@pytest.mark.parametrize(("path", "value", "expected"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_broken_profile_names_the_fault(path, value, expected):
    errors = validate_console(changed(path, value), file_id="demo")
    assert any(expected in error for error in errors), errors


def test_every_fault_is_reported():
    profile = changed(("messages", "row"), "div[")
    profile["composer"]["send"] = "button)"
    profile["id"] = "other"
    errors = validate_console(profile, file_id="demo")
    assert len(errors) == 3, errors
    assert {error.split(":")[0] for error in errors} == {"messages.row", "composer.send", "id"}


def test_valid_extras_pass():
    profile = minimal()
    profile["matches"] = ["<all_urls>", "*://*.example.com/*", "http://127.0.0.1:8080/desk/*", "file:///*"]
    profile["messages"]["deleted"] = {"removed": True}
    profile["messages"]["id"] = {"attribute": "data-id"}
    profile["messages"]["outgoing"] = {"text": ["You sent"]}
    profile["messages"]["text"] = [{"selector": ".t", "exclude": ".time"}, "p"]
    profile["conversation"] = {"title": "h1", "customer": {"from": "title", "pattern": "^(\\+\\d+)$"}}
    profile["composer"]["send"] = '[aria-label="Send \\"now\\""], button:has(> [data-icon=send])'
    assert validate_console(profile) == []


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


VALID_JSON = json.dumps(minimal(), indent=2).encode() + b"\n"
BROKEN_FILES = [
    ("bom", b"\xef\xbb\xbf" + VALID_JSON, "demo.json: starts with a byte-order mark"),
    ("crlf", VALID_JSON.replace(b"\n", b"\r\n"), "demo.json: has Windows (CRLF) or CR line ends"),
    ("malformed", b'{"id": "demo",}\n', "demo.json:1:15: invalid JSON"),
    ("not utf-8", b'{"id": "d\xffmo"}\n', "demo.json: not UTF-8 (byte 9)"),
    ("duplicate key", b'{"id": "demo", "id": "demo"}\n', "demo.json: duplicate key 'id'"),
    ("not an object", b"[]\n", "demo.json: must hold a JSON object"),
    ("invalid profile", b'{"id": "demo"}\n', "demo.json: messages: required"),
]


@pytest.mark.parametrize(("data", "expected"), [case[1:] for case in BROKEN_FILES], ids=[c[0] for c in BROKEN_FILES])
def test_broken_file_names_the_file(tmp_path, data, expected):
    write(tmp_path, "demo.json", data)
    with pytest.raises(ConsoleError, match=re.escape(str(tmp_path / expected))):
        load_consoles(tmp_path)


def test_id_must_be_the_file_name(tmp_path):
    write(tmp_path, "other.json", VALID_JSON)
    with pytest.raises(ConsoleError, match=re.escape(f"{tmp_path / 'other.json'}: id: must equal the file name")):
        load_consoles(tmp_path)


def test_faults_of_every_file_are_reported_together(tmp_path):
    write(tmp_path, "demo.json", VALID_JSON)
    write(tmp_path, "a.json", b"{")
    write(tmp_path, "b.json", b"\xef\xbb\xbf{}")
    with pytest.raises(ConsoleError) as raised:
        load_consoles(tmp_path)
    lines = str(raised.value).splitlines()
    assert [line.split(":")[0] for line in lines] == [str(tmp_path / "a.json"), str(tmp_path / "b.json")]


def test_a_valid_folder_loads_sorted_by_id(tmp_path):
    write(tmp_path, "demo.json", VALID_JSON)
    write(tmp_path, "alpha.json", VALID_JSON.replace(b'"demo"', b'"alpha"'))
    (tmp_path / "README.md").write_text("not a profile")
    assert [profile["id"] for profile in load_consoles(tmp_path)] == ["alpha", "demo"]


def test_missing_folder(tmp_path):
    with pytest.raises(ConsoleError, match="not a folder"):
        load_consoles(tmp_path / "nowhere")
