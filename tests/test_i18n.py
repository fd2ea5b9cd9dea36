"""The panel speaks Simplified Chinese and English; every string has both."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.conftest import sign_in

BACKEND = Path(__file__).resolve().parents[1] / "backend"


def catalogue():
    with open(BACKEND / "translations" / "zh" / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh)


def test_every_string_in_the_code_has_a_chinese_translation():
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    found = {msg[2] if isinstance(msg[2], str) else msg[2][0]
             for msg in extract_from_dir(str(BACKEND), method_map, keywords={"_": None, "gettext": None,
                                                                              "_l": None, "lazy_gettext": None})}
    assert len(found) > 50, "the extractor found the strings"
    translated = {m.id: m.string for m in catalogue() if m.id}
    missing = sorted(s for s in found if not translated.get(s))
    assert missing == [], "run `make update-translations` and translate these"


def test_chinese_keeps_the_placeholders():
    for message in catalogue():
        if message.id and "%(" in message.id:
            for name in ("%(what)s", "%(name)s", "%(n)d", "%(tenant)s", "%(minutes)d", "%(roles)s", "%(expected)s"):
                assert (name in message.id) == (name in message.string), message.id


def test_language_follows_the_browser_and_the_switch(app, orgs):
    own, _other = orgs
    client = app.test_client()
    sign_in(client, own.users["owner"])
    assert "聊天记录" in client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).get_data(as_text=True)
    english = client.get("/", headers={"Accept-Language": "en-US"}).get_data(as_text=True)
    assert "Records" in english and "聊天记录" not in english
    client.get("/lang/zh?next=/users")
    assert "添加用户" in client.get("/users", headers={"Accept-Language": "en-US"}).get_data(as_text=True)
    client.get("/lang/en")
    assert "Add user" in client.get("/users", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)


def test_api_errors_are_translated_too(client):
    response = client.get("/api/v1/me", headers={"Accept-Language": "zh-CN"})
    assert response.get_json()["error"]["message"] == "请先登录，或提供 API 令牌。"
