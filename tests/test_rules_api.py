"""Rule sets: versioned per tenant, served compiled with an ETag, edited on the panel, imported and exported."""

from __future__ import annotations

import io
import re
import zipfile

from backend.extensions import db
from backend.models import AuditLogEntry
from tests.conftest import device_token, sign_in


def bearer(org, role="owner"):
    return {"Authorization": f"Bearer {org.tokens[role]}"}


def test_rules_start_from_the_defaults_and_are_served_with_an_etag(client, orgs):
    own, _other = orgs
    response = client.get("/api/v1/rules", headers=bearer(own, "agent"))
    assert response.status_code == 200
    payload = response.get_json()
    assert response.headers["ETag"] == f'"{payload["hash"]}"'
    assert response.headers["X-Veil-Rules-Version"] == "1"
    assert any(word == "私下交易" for _skeleton, _category, word in payload["words"])
    again = client.get("/api/v1/rules", headers={**bearer(own, "agent"), "If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_an_extension_fetches_rules_with_its_device_token(app, client, orgs):
    own, _other = orgs
    token = device_token(app, own.device_id)
    response = client.get("/api/v1/rules", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.get_json()["format"] == 1
    # a device token opens nothing else
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    assert client.get("/api/v1/rules/source", headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_saving_makes_a_new_version_the_engines_use(app, client, orgs):
    own, other = orgs
    first = client.get("/api/v1/rules", headers=bearer(own)).headers["ETag"]
    body = {"categories": {"private_deal": ["私下交易", "走私单"], "abuse": ["idiot"]}, "allow": [],
            "settings": {"actions": {"abuse": "warn"}}, "note": "tighter"}
    response = client.put("/api/v1/rules", json=body, headers=bearer(own))
    assert response.status_code == 200 and response.get_json()["rule_set"]["version"] == 2
    served = client.get("/api/v1/rules", headers={**bearer(own), "If-None-Match": first})
    assert served.status_code == 200 and served.headers["X-Veil-Rules-Version"] == "2"
    assert served.get_json()["settings"]["actions"] == {"abuse": "warn", "private_deal": "block"}
    # saving the same content again changes nothing
    assert client.put("/api/v1/rules", json=body, headers=bearer(own)).get_json()["rule_set"]["version"] == 2
    # the other tenant is untouched
    assert client.get("/api/v1/rules", headers=bearer(other)).headers["X-Veil-Rules-Version"] == "1"
    history = client.get("/api/v1/rules/history", headers=bearer(own)).get_json()["versions"]
    assert [v["version"] for v in history] == [2, 1] and history[0]["note"] == "tighter"
    with app.app_context():
        entry = db.session.query(AuditLogEntry).filter_by(action="rules.save").one()
        changes = entry.details["changes"]
        assert changes["private_deal"]["added"] == 1 and changes["private_deal"]["removed"] > 0
        assert "compliance" in changes and changes["settings"] == "changed"


def test_bad_rules_are_refused_with_a_reason(client, orgs):
    own, _other = orgs
    cases = [
        ({"categories": {"Bad Name": ["x"]}}, "invalid_category"),
        ({"categories": {"x": "not a list"}}, "invalid_rules"),
        ({"categories": {"x": ["a"]}, "settings": {"actions": {"x": "explode"}}}, "invalid_action"),
        ({"categories": {"x": ["a"]}, "settings": {"contacts": {"countries": ["ZZ"]}}}, "invalid_rules"),
        ({"categories": {"x": ["a" * 300]}}, "invalid_rules"),
    ]
    for body, code in cases:
        response = client.put("/api/v1/rules", json=body, headers=bearer(own))
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] == code


def test_export_and_import_round_trip(client, orgs):
    own, _other = orgs
    exported = client.get("/api/v1/rules/export", headers=bearer(own))
    assert exported.status_code == 200 and exported.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(exported.data))
    assert "sensitive/private_deal.txt" in archive.namelist() and "settings.toml" in archive.namelist()
    # edit the archive as a person would: a BOM and Windows line ends are fine
    edited = io.BytesIO()
    with zipfile.ZipFile(edited, "w") as out:
        for name in archive.namelist():
            data = archive.read(name)
            if name == "sensitive/abuse.txt":
                data = "\ufeff# abuse\r\nidiot\r\n蠢货\r\n".encode()
            out.writestr(name, data)
        out.writestr("../../etc/evil.txt", "ignored")
    response = client.post("/api/v1/rules/import", headers=bearer(own),
                           data={"file": (io.BytesIO(edited.getvalue()), "rules.zip")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    source = client.get("/api/v1/rules/source", headers=bearer(own)).get_json()["rules"]
    assert source["categories"]["abuse"] == ["idiot", "蠢货"]
    assert source["settings"]["actions"]["abuse"] == "warn", "settings survive the round trip"
    bad = client.post("/api/v1/rules/import", headers=bearer(own),
                      data={"file": (io.BytesIO(b"not a zip"), "rules.zip")}, content_type="multipart/form-data")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_archive"


def test_panel_rules_page_edits_words_and_actions(client, orgs):
    own, _other = orgs
    csrf = sign_in(client, own.users["admin"])
    page = client.get("/rules").get_data(as_text=True)
    assert "private_deal" in page and "私下交易" in page
    form = {name: value for name, value in re.findall(r'<textarea name="([^"]+)"[^>]*>([^<]*)</textarea>', page)}
    form.update({"csrf_token": csrf, "action__abuse": "log", "contacts_enabled": "on", "contacts_action": "warn",
                 "mask_style": "full", "note": "abuse is only logged now"})
    form["words__abuse"] += "\n<script>alert(1)</script>"
    for name in re.findall(r'<select name="(action__[^"]+)"', page):
        form.setdefault(name, "block")
    response = client.post("/rules", data=form)
    assert response.status_code == 302
    page = client.get("/rules").get_data(as_text=True)
    assert "v2" in page and "abuse is only logged now" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page, "words are escaped"
    payload = client.get("/api/v1/rules", headers=bearer(own)).get_json()
    assert payload["settings"]["actions"]["abuse"] == "log"
    assert payload["settings"]["contacts"]["action"] == "warn" and payload["settings"]["mask"]["style"] == "full"
